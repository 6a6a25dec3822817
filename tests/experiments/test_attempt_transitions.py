"""The attempt state table: the moves it allows, the ones it refuses, and that the one writer asks it."""
import pytest

from experiments import services
from experiments.execution import attempts, transitions
from experiments.execution.transitions import IllegalTransition
from experiments.models import FINAL_STATES, RunStatus as S


@pytest.mark.parametrize(("from_state", "to_state"), [
    (S.QUEUED, S.STARTING), (S.QUEUED, S.CANCELLED), (S.STARTING, S.RUNNING), (S.STARTING, S.FAILED),
    (S.STARTING, S.PREEMPTED), (S.RUNNING, S.SUCCEEDED), (S.RUNNING, S.CANCELLED), (S.RUNNING, S.PREEMPTED),
])
def test_it_allows_the_moves_of_the_diagram(from_state, to_state):
    transitions.check(1, from_state, to_state)


@pytest.mark.parametrize(("from_state", "to_state"), [
    (S.QUEUED, S.RUNNING), (S.QUEUED, S.SUCCEEDED), (S.STARTING, S.SUCCEEDED), (S.RUNNING, S.QUEUED),
    (S.RUNNING, S.STARTING), *[(final, other) for final in FINAL_STATES for other in (S.QUEUED, S.RUNNING, S.CANCELLED)],
])
def test_it_refuses_every_other_move_naming_what_is_allowed(from_state, to_state):
    with pytest.raises(IllegalTransition) as refused:
        transitions.check(7, from_state, to_state)
    assert str(refused.value).startswith(f"attempt 7 cannot go from {from_state} to {to_state}; allowed: ")


def test_final_states_allow_nothing():
    assert all(transitions.TRANSITIONS[state] == () for state in FINAL_STATES)
    assert set(transitions.TRANSITIONS) == set(S.values)


def test_the_writer_refuses_an_illegal_move_and_writes_nothing(pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0], max_steps=2)
    attempt = study.runs.order_by("id").first().attempts.get()
    with pytest.raises(IllegalTransition):
        attempts._move(attempt, S.SUCCEEDED)
    attempt.refresh_from_db()
    assert attempt.state == S.QUEUED and attempt.run.status == S.QUEUED


def test_cancelling_a_queued_attempt_closes_it_like_any_other_end(pic, make_idea, fast_baseline):
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0], max_steps=2)
    run = study.runs.order_by("id").first()
    assert attempts.attempt_cancel(run=run, by=pic) is attempts.CancelOutcome.CANCELLED
    attempt = run.attempts.get()
    run.refresh_from_db()
    assert (attempt.state, run.status) == (S.CANCELLED, S.CANCELLED)
    assert attempt.finished_at == run.finished_at and attempt.cancel_requested_at and attempt.reason == f"cancelled by {pic}" and attempt.cancelled_by == pic
    assert attempts.attempt_cancel(run=run, by=pic) is attempts.CancelOutcome.NOT_LIVE
