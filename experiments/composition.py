"""Composing idea patches into study arms. Pure functions: no database, no modelzoo.

Patches compose key by key in the order the ideas are listed. Two ideas setting one key to different
values is a *conflict*; it must be resolved before launch, either by dropping one of the ideas or by
choosing the value explicitly (``resolutions``). A resolution applies to every arm containing an idea
that sets its key, so the chosen value is what "this key" means throughout the study.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ApplicationError
from core.text import describe, first_problem

ABLATION = "ablation"
INTEGRATION = "integration"

# The study owns these: every arm trains with the same seeds and the same step budget.
STUDY_CONTROLLED_KEYS = ("train.seed", "train.max_steps")


@dataclass(frozen=True)
class IdeaPatch:
    """An idea's key (``IDEA-0042``) and its recipe patch (dotted key -> value)."""

    key: str
    patch: Mapping[str, Any]


@dataclass(frozen=True)
class Conflict:
    """Ideas that set ``key`` to different values, as ``(idea key, value)`` pairs in listing order."""

    key: str
    values: tuple[tuple[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": [{"idea": idea, "value": value} for idea, value in self.values]}

    def __str__(self) -> str:
        sides = ", ".join(f"{idea} sets {value!r}" for idea, value in self.values)
        return f"{self.key}: {sides}"


class ConflictError(ApplicationError):
    """Raised when a composition meets conflicts that no resolution settles (the API answers 409 listing them)."""

    def __init__(self, conflicts: Sequence[Conflict]):
        self.conflicts = list(conflicts)
        super().__init__("conflicting patches: " + "; ".join(str(conflict) for conflict in self.conflicts),
                         conflicts=[conflict.to_dict() for conflict in self.conflicts])


@dataclass(frozen=True)
class ArmSpec:
    """One arm to create: its name, kind, the ideas it applies and the composed patch."""

    name: str
    kind: str
    idea_keys: tuple[str, ...]
    patch: dict[str, Any] = field(default_factory=dict)


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that keeps booleans apart from numbers (``True == 1`` in Python, not in a config)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def find_conflicts(ideas: Sequence[IdeaPatch]) -> list[Conflict]:
    """Every key that two or more ideas set to different values, in order of first appearance."""
    setters: dict[str, list[tuple[str, Any]]] = {}
    for idea in ideas:
        for key, value in idea.patch.items():
            setters.setdefault(key, []).append((idea.key, value))
    conflicts = []
    for key, values in setters.items():
        first = values[0][1]
        if any(not same_value(first, value) for _, value in values[1:]):
            conflicts.append(Conflict(key=key, values=tuple(values)))
    return conflicts


def compose(ideas: Sequence[IdeaPatch], resolutions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The patch of ``ideas`` applied together; raises :class:`ConflictError` for unresolved conflicts."""
    resolutions = resolutions or {}
    unresolved = [conflict for conflict in find_conflicts(ideas) if conflict.key not in resolutions]
    if unresolved:
        raise ConflictError(unresolved)
    composed: dict[str, Any] = {}
    for idea in ideas:
        composed.update(idea.patch)
    for key, value in resolutions.items():
        if key in composed:
            composed[key] = value
    return composed


def resolution_errors(ideas: Sequence[IdeaPatch], resolutions: Mapping[str, Any]) -> list[str]:
    """Resolutions for keys that are not in conflict are refused, so a stale choice never silently
    overrides a patch."""
    conflicting = {conflict.key for conflict in find_conflicts(ideas)}
    unstorable = first_problem(dict(resolutions))
    if unstorable is not None:
        return [f"resolutions: {describe(unstorable[0])}: {unstorable[1]}"]
    return [
        f"resolutions: {key!r} is not a conflicting key (conflicts: {', '.join(sorted(conflicting)) or 'none'})"
        for key in resolutions
        if key not in conflicting
    ]


def controlled_key_errors(ideas: Sequence[IdeaPatch]) -> list[str]:
    """An idea may not change the seed or the step budget: the study sets them for every arm."""
    return [
        f"{idea.key} sets {key}, which the study controls (use the study's seeds and max_steps)"
        for idea in ideas
        for key in idea.patch
        if key in STUDY_CONTROLLED_KEYS
    ]


def derive_arms(
    kind: str,
    ideas: Sequence[IdeaPatch],
    *,
    leave_one_out: bool = False,
    resolutions: Mapping[str, Any] | None = None,
) -> list[ArmSpec]:
    """The arms of a study, baseline first.

    ablation:    ``baseline``, then ``+X`` for each idea X on its own (conflicts between ideas do not matter);
    integration: ``baseline``, ``all`` and, with ``leave_one_out``, ``all-X`` for each idea X.
    """
    if kind not in (ABLATION, INTEGRATION):
        raise ValueError(f"kind must be {ABLATION!r} or {INTEGRATION!r}, got {kind!r}")
    arms = [ArmSpec(name="baseline", kind="baseline", idea_keys=())]
    if kind == ABLATION:
        return arms + [
            ArmSpec(name=f"+{idea.key}", kind="single", idea_keys=(idea.key,), patch=dict(idea.patch))
            for idea in ideas
        ]
    keys = tuple(idea.key for idea in ideas)
    arms.append(ArmSpec(name="all", kind="all", idea_keys=keys, patch=compose(ideas, resolutions)))
    if leave_one_out:
        for left_out in ideas:
            rest = [idea for idea in ideas if idea.key != left_out.key]
            arms.append(
                ArmSpec(
                    name=f"all-{left_out.key}",
                    kind="leave_one_out",
                    idea_keys=tuple(idea.key for idea in rest),
                    patch=compose(rest, resolutions),
                )
            )
    return arms
