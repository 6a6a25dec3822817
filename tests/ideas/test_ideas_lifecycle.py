"""The lifecycle table: every allowed move works, every other pair is refused with the allowed targets."""
import itertools

import pytest
from django.core.exceptions import ValidationError

from ideas import services
from ideas.errors import IllegalTransition
from ideas.lifecycle import DECISION_REQUIRED, Status
from ideas.models import Transition

# The lifecycle, written out independently of ideas.lifecycle.TRANSITIONS.
EXPECTED_MOVES = {
    ("submitted", "triaged"), ("triaged", "in_ablation"), ("in_ablation", "in_integration"),
    ("in_integration", "landed"), ("parked", "triaged"),
    *((state, end) for state in ("submitted", "triaged", "in_ablation", "in_integration") for end in ("rejected", "parked")),
}
ALL_PAIRS = list(itertools.product(Status.values, repeat=2))
# A route from `submitted` to each state, using allowed moves only.
ROUTES = {
    "submitted": [],
    "triaged": ["triaged"],
    "in_ablation": ["triaged", "in_ablation"],
    "in_integration": ["triaged", "in_ablation", "in_integration"],
    "landed": ["triaged", "in_ablation", "in_integration", "landed"],
    "rejected": ["rejected"],
    "parked": ["parked"],
}
DECISION = services.DecisionInput(summary="Three seeds, -0.4% loss.", links=["https://wandb.ai/team/runs/1"])


def _bring_to(idea, state, pic):
    for target in ROUTES[state]:
        decision = DECISION if target in DECISION_REQUIRED else None
        services.idea_transition(idea=idea, to_status=target, by=pic, decision=decision)
    idea.refresh_from_db()
    assert idea.status == state


@pytest.mark.parametrize("from_status, to_status", [pair for pair in ALL_PAIRS if pair not in EXPECTED_MOVES])
def test_every_illegal_transition_is_refused(idea, pic, from_status, to_status):
    _bring_to(idea, from_status, pic)
    moves_before = Transition.objects.count()
    with pytest.raises(IllegalTransition) as caught:
        services.idea_transition(idea=idea, to_status=to_status, by=pic, decision=DECISION)
    expected_allowed = sorted(end for start, end in EXPECTED_MOVES if start == from_status)
    assert sorted(caught.value.allowed) == expected_allowed
    idea.refresh_from_db()
    assert idea.status == from_status and Transition.objects.count() == moves_before


@pytest.mark.parametrize("from_status, to_status", sorted(EXPECTED_MOVES))
def test_every_allowed_transition_is_logged(idea, pic, from_status, to_status):
    _bring_to(idea, from_status, pic)
    decision = DECISION if to_status in ("landed", "rejected") else None
    transition = services.idea_transition(idea=idea, to_status=to_status, by=pic, note="why", decision=decision)
    idea.refresh_from_db()
    assert idea.status == to_status
    assert (transition.from_status, transition.to_status, transition.actor, transition.note) == (
        from_status, to_status, pic, "why")
    assert (transition.decision is not None) == (to_status in ("landed", "rejected"))


@pytest.mark.parametrize("to_status", ["rejected", "landed"])
def test_closing_needs_a_decision_record(idea, pic, to_status):
    _bring_to(idea, "in_integration", pic)
    with pytest.raises(ValidationError) as caught:
        services.idea_transition(idea=idea, to_status=to_status, by=pic,
                                 decision=services.DecisionInput(summary="   "))
    assert "decision" in caught.value.message_dict
    idea.refresh_from_db()
    assert idea.status == "in_integration"


def test_decision_links_must_be_http_urls(idea, pic):
    with pytest.raises(ValidationError) as caught:
        services.idea_transition(idea=idea, to_status="rejected", by=pic,
                                 decision=services.DecisionInput(summary="no gain", links=["javascript:alert(1)"]))
    assert "decision.links" in caught.value.message_dict


def test_an_unknown_status_names_the_field(idea, pic):
    with pytest.raises(ValidationError) as caught:
        services.idea_transition(idea=idea, to_status="shipped", by=pic)
    assert "to" in caught.value.message_dict
