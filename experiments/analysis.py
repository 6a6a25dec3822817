"""Study statistics: seed spread per arm, differences to the baseline with 95% confidence intervals,
leave-one-out marginal contributions and a plain-language verdict. Pure Python, no database.

The confidence interval of an arm's difference to the baseline (arm − baseline, final validation loss):

- **paired by seed** when at least two seeds ran in both arms. Every arm trains with the same seeds and
  data order, so seed s of the arm and seed s of the baseline share their initialisation noise; the
  per-seed differences d_s remove it, and the interval is mean(d) ± t(0.975, k−1) · sd(d) / √k over the
  k shared seeds.
- **Welch** otherwise (the arms share fewer than two seeds but each has two or more values):
  mean(a) − mean(b) ± t(0.975, ν) · √(s_a²/n_a + s_b²/n_b) with the Welch–Satterthwaite ν.
- none with fewer than two values on a side: a spread cannot be estimated from one seed.

Percentages are relative to the baseline's mean, so "beats baseline by 1.8%" means the arm's final
validation loss is 1.8% lower. Lower loss is better throughout.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


# --------------------------------------------------------------------------------- Student's t quantile


def _incomplete_beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz's method)."""
    tiny, epsilon = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < epsilon:
            break
    return result


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast only left of the mode; use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) beyond.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _incomplete_beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _incomplete_beta_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| > |t|) for Student's t with ``df`` degrees of freedom (df may be fractional, as Welch's is)."""
    return regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(probability: float, df: float) -> float:
    """The ``probability`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom."""
    if not 0.5 < probability < 1.0:
        raise ValueError(f"probability must be between 0.5 and 1, got {probability}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    tail = 2.0 * (1.0 - probability)
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > tail:  # the tail shrinks as t grows: bracket, then bisect
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2.0


# ------------------------------------------------------------------------------------------ seed spread


@dataclass(frozen=True)
class SeedStats:
    """Spread of one arm's values across seeds; ``std`` is the sample standard deviation (n − 1)."""

    n: int
    mean: float
    std: float | None
    min: float
    max: float


def seed_stats(values: Sequence[float]) -> SeedStats | None:
    """Mean, std, min and max of ``values`` (one per seed); None when there are none."""
    if not values:
        return None
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return SeedStats(n=n, mean=mean, std=std, min=min(values), max=max(values))


# ------------------------------------------------------------------------------------------ differences


@dataclass(frozen=True)
class Difference:
    """``arm − reference`` of a final metric. ``half_width`` is the 95% interval's half width (None when
    it cannot be estimated); ``relative``/``relative_half_width`` are the same in % of the reference mean."""

    estimate: float
    half_width: float | None
    method: str  # "paired", "welch" or "none"
    seeds: int
    reference_mean: float

    @property
    def relative(self) -> float:
        return 100.0 * self.estimate / self.reference_mean if self.reference_mean else math.nan

    @property
    def relative_half_width(self) -> float | None:
        if self.half_width is None or not self.reference_mean:
            return None
        return 100.0 * self.half_width / abs(self.reference_mean)

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.half_width is None:
            return None
        return self.estimate - self.half_width, self.estimate + self.half_width

    @property
    def significant(self) -> bool:
        """True when the 95% interval excludes zero, i.e. the effect is outside seed noise."""
        interval = self.interval
        return interval is not None and (interval[0] > 0 or interval[1] < 0)


def difference(arm: Mapping[int, float], reference: Mapping[int, float]) -> Difference | None:
    """``arm − reference`` of per-seed values ``{seed: value}``, paired by seed when possible (module doc)."""
    if not arm or not reference:
        return None
    reference_mean = math.fsum(reference.values()) / len(reference)
    shared = sorted(set(arm) & set(reference))
    if len(shared) >= 2:
        per_seed = seed_stats([arm[seed] - reference[seed] for seed in shared])
        assert per_seed is not None and per_seed.std is not None
        half = t_quantile(0.5 + CONFIDENCE / 2, per_seed.n - 1) * per_seed.std / math.sqrt(per_seed.n)
        return Difference(per_seed.mean, half, "paired", len(shared), reference_mean)
    a, b = seed_stats(list(arm.values())), seed_stats(list(reference.values()))
    assert a is not None and b is not None
    estimate = a.mean - b.mean
    seeds = min(a.n, b.n)
    if a.std is None or b.std is None:
        return Difference(estimate, None, "none", seeds, reference_mean)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    if va + vb == 0.0:
        return Difference(estimate, 0.0, "welch", seeds, reference_mean)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, df) * math.sqrt(va + vb)
    return Difference(estimate, half, "welch", seeds, reference_mean)


# ------------------------------------------------------------------------------------ verdicts and arms


@dataclass(frozen=True)
class ArmResult:
    """One arm's final metric per seed, its spread and its difference to the baseline arm."""

    name: str
    kind: str
    idea_keys: tuple[str, ...]
    values: dict[int, float]
    stats: SeedStats | None
    vs_baseline: Difference | None
    # The arm this one trained exactly the same runs as ("baseline" for a patch that changed nothing): its
    # difference is zero by construction, not a measurement.
    same_runs_as: str = ""


@dataclass(frozen=True)
class Marginal:
    """What one idea adds on top of the others: (all − idea) − all. Positive: removing it raises the loss,
    so the idea helps."""

    idea_key: str
    difference: Difference
    same_runs: bool = False  # leaving the idea out trained the very runs of "all": it changes nothing here

    @property
    def helps(self) -> bool:
        return self.difference.significant and self.difference.estimate > 0


def _percent(difference: Difference) -> str:
    magnitude = f"{abs(difference.relative):.1f}%"
    if difference.relative_half_width is not None:
        magnitude += f" ± {difference.relative_half_width:.1f}%"
    return magnitude


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


ONE_SEED_CAVEAT = "fewer than 2 seeds: no confidence interval"


def _caveat(difference: Difference) -> str:
    """Said next to every number that has no interval, so it is never read without it."""
    return f" ({ONE_SEED_CAVEAT})" if difference.half_width is None else ""


def verdict_text(subject: str, vs_baseline: Difference | None, metric: str = "val loss") -> str:
    """E.g. "integration beats baseline by 1.8% ± 0.6% val loss over 3 seeds"."""
    if vs_baseline is None:
        return f"{subject}: no {metric} to compare yet"
    amount, seeds = _percent(vs_baseline), _seeds(vs_baseline.seeds)
    if vs_baseline.half_width is not None and not vs_baseline.significant:
        return f"{subject} is indistinguishable from baseline ({amount} {metric} over {seeds})"
    direction = "beats baseline" if vs_baseline.estimate < 0 else "is worse than baseline"
    return f"{subject} {direction} by {amount} {metric} over {seeds}{_caveat(vs_baseline)}"


def warnings_for(vs_baseline: Difference | None, baseline_stats: SeedStats | None) -> list[str]:
    """Why a verdict should not be trusted yet: fewer than two seeds, or an effect inside seed noise."""
    if vs_baseline is None:
        return []
    warnings = []
    if vs_baseline.half_width is None:
        warnings.append("fewer than 2 seeds: no confidence interval; run at least 2 seeds per arm")
    elif not vs_baseline.significant:
        warnings.append("the effect is inside seed noise: the 95% interval of the difference includes zero")
    elif baseline_stats and baseline_stats.std and abs(vs_baseline.estimate) < baseline_stats.std:
        warnings.append("the effect is smaller than the baseline's seed-to-seed standard deviation")
    return warnings


def _same_runs_as(name: str, kind: str, run_sets: Mapping[str, frozenset[int]]) -> str:
    """The arm ``name`` is compared to ("all" for leave-one-out arms, else "baseline") when both trained the
    same runs; runs are shared exactly when their resolved configs are identical."""
    reference = "all" if kind == "leave_one_out" else "baseline"
    runs = run_sets.get(name)
    return reference if runs and run_sets.get(reference) == runs else ""


def arm_results(arms: Sequence[tuple[str, str, Sequence[str], Mapping[int, float]]],
                run_sets: Mapping[str, frozenset[int]] | None = None) -> list[ArmResult]:
    """``(name, kind, idea keys, {seed: final value})`` per arm, the ``baseline`` arm among them, to
    results with spread and difference to the baseline (None for the baseline itself). ``run_sets`` (arm name
    → its run ids) marks arms that trained the very runs of the arm they are compared to."""
    baseline = next((values for name, kind, _, values in arms if kind == "baseline"), {})
    return [
        ArmResult(
            name=name,
            kind=kind,
            idea_keys=tuple(keys),
            values=dict(values),
            stats=seed_stats(list(values.values())),
            vs_baseline=None if kind == "baseline" else difference(values, baseline),
            same_runs_as="" if kind == "baseline" else _same_runs_as(name, kind, run_sets or {}),
        )
        for name, kind, keys, values in arms
    ]


def leave_one_out_marginals(results: Sequence[ArmResult]) -> list[Marginal]:
    """Each left-out idea's marginal contribution, from the ``all`` and ``leave_one_out`` arms."""
    everything = next((arm for arm in results if arm.kind == "all"), None)
    if everything is None or not everything.values:
        return []
    marginals = []
    for arm in results:
        if arm.kind != "leave_one_out":
            continue
        left_out = [key for key in everything.idea_keys if key not in arm.idea_keys]
        change = difference(arm.values, everything.values)
        if len(left_out) == 1 and change is not None:
            marginals.append(Marginal(left_out[0], change, same_runs=arm.same_runs_as == "all"))
    return marginals


def marginal_text(marginal: Marginal, metric: str = "val loss") -> str:
    """E.g. "IDEA-0003 contributes 0.9% ± 0.4% val loss (removing it raises the loss)"."""
    difference = marginal.difference
    if marginal.same_runs:
        return f"{marginal.idea_key} changes nothing here: without it the arm trains the identical config"
    amount = _percent(difference)
    if difference.half_width is not None and not difference.significant:
        return f"{marginal.idea_key}: no clear contribution ({amount} {metric}, inside seed noise)"
    if difference.estimate > 0:
        return f"{marginal.idea_key} contributes {amount} {metric} (removing it raises the loss){_caveat(difference)}"
    return f"{marginal.idea_key} costs {amount} {metric} (removing it lowers the loss){_caveat(difference)}"


def study_verdict(kind: str, results: Sequence[ArmResult], metric: str = "val loss") -> list[str]:
    """One sentence per treatment arm: "integration …" for the all-ideas arm, "+IDEA-0003 …" for ablations."""
    lines = []
    for arm in results:
        subject = "integration" if arm.kind == "all" else arm.name
        if arm.kind != "all" and not (arm.kind == "single" and kind == "ablation"):
            continue
        if arm.same_runs_as == "baseline":
            lines.append(f"{subject} trained the identical config as baseline: there is no effect to measure")
        else:
            lines.append(verdict_text(subject, arm.vs_baseline, metric))
    return lines
