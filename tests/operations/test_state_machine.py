"""A Hypothesis state machine over the real services: idea lifecycles, study launches, cancels and resumes,
the worker side of attempts (claim, start, heartbeat, finish, lease expiry), and compute grants, requests,
reviews and usage charges. After every step the database must still hold:

- landed and rejected ideas never move again; a parked idea only goes back to triaged; every recorded
  transition is one the lifecycle table allows, and the transitions of an idea form one chain ending in
  its current status;
- an attempt in a final state never changes state; a succeeded run never changes status (failed, cancelled
  and preempted runs may be resumed: that is the run's way back); a run's status mirrors its latest attempt;
- at most one live attempt per run (and the database refuses a second one when asked directly);
- no allocation, hold, request grant or review amount is negative, and no grant's children sum past it;
- the usage ledger and the allocation change log are append-only, and no attempt is charged twice for
  the same time.

Each example runs in a savepoint that is rolled back afterwards, so examples start from the same world and
nothing commits: no start message leaves for a worker. The concurrent half (threads racing to claim one
attempt and to resume one run) needs committed rows and lives in a separate, transactional test.
"""
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connections, transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from compute import services as compute_services
from compute.cycles import Calendar
from compute.errors import ComputeConflict
from compute.models import Allocation, AllocationChange, Cycle, LaunchHold, Pool, Request, Review, UsageEntry
from experiments import budget
from experiments.execution import attempts
from experiments import services as experiment_services
from experiments.composition import ConflictError
from experiments.errors import RunStateConflict
from experiments.models import FINAL_STATES, LIVE_STATES, Attempt, Run, RunStatus, Study
from ideas import services as idea_services
from ideas.errors import IllegalTransition
from ideas.lifecycle import Status, is_allowed
from ideas.models import Idea, Transition

HOSTS = ("gpu-a", "gpu-b")
INDEX = st.integers(0, 30)  # which of the matching rows a rule acts on (see ``pick``)
EXPECTED = (ValidationError, PermissionDenied, ComputeConflict, ConflictError, RunStateConflict, IllegalTransition)


@dataclass
class World:
    """What every example starts from, made through the services."""

    pic: User
    reviewer: User
    member: User
    ideas: list[Idea]
    pool: Pool
    current: Cycle
    upcoming: Cycle


def make_world() -> World:
    reviewers = Group.objects.get_or_create(name="reviewers")[0]
    staff = User.objects.create_user("stella", is_staff=True)  # no passwords: hashing is slow
    pic, member = User.objects.create_user("pia"), User.objects.create_user("max")
    reviewer = User.objects.create_user("rita")
    reviewer.groups.add(reviewers)
    area = idea_services.area_create(slug="moe", name="MoE", pic=pic, by=staff)
    ideas = [
        idea_services.idea_create(submitter=member, area=area, title=f"Idea {n}", summary="Why it may help.",
                                  recipe_patch=patch)
        for n, patch in enumerate([{"moe.top_k": 1}, {"moe.aux_loss_coef": 0.02}, {"moe.top_k": 1}])
    ]
    pool = Pool.objects.create(name="h100", gpu_type="H100 80GB", gpu_count=8)
    calendar, now = Calendar.from_settings(), timezone.now()
    current = compute_services.cycle_ensure(window=calendar.window_containing(now), now=now)
    upcoming = compute_services.cycle_ensure(
        window=calendar.window_after(calendar.window_after(calendar.window_containing(now))), now=now)
    compute_services.allocation_set(cycle=current, pool=pool, area=area, gpu_hours=Decimal("100"), actor=reviewer)
    experiment_services.baseline_save(name="tiny-fast", recipe="tiny-ci",
                                      overrides={"train.batch_size": 2, "train.seq_len": 32})
    # Every kind of state from the first step on, so short examples already try to leave it: a succeeded run
    # (one step from a resume), a queued one, a landed idea and a parked one.
    study = experiment_services.study_launch(user=pic, kind="ablation", baseline="tiny-fast",
                                             ideas=[ideas[0].key], seeds=[0, 1], max_steps=10)
    done = attempts.attempt_claim(study.runs.order_by("pk").first().attempts.get().pk, host=HOSTS[0], slot_ids=None)
    attempts.attempt_started(done.attempt.pk, pid=None, pgid=None)
    attempts.attempt_finish(done.attempt.pk, host=HOSTS[0], state=RunStatus.SUCCEEDED, reason="finished")
    for to_status in (Status.TRIAGED, Status.IN_ABLATION, Status.IN_INTEGRATION, Status.LANDED):
        idea_services.idea_transition(idea=ideas[1], to_status=to_status, by=pic,
                                      decision=idea_services.DecisionInput(summary="It helped."))
    idea_services.idea_transition(idea=ideas[2], to_status=Status.PARKED, by=pic)
    return World(pic=pic, reviewer=reviewer, member=member, ideas=ideas, pool=pool, current=current,
                 upcoming=upcoming)


def expected_refusal(call: Callable[[], Any]) -> Any:
    """Run a service call; the domain's refusals are fine (the invariants decide), anything else fails."""
    try:
        return call()
    except EXPECTED:
        return None


def pick(rows: QuerySet, index: int) -> int | None:
    """The id of one of ``rows`` (by position, wrapping round, so shrinking moves towards the oldest), or None."""
    ids = list(rows.order_by("pk").values_list("pk", flat=True))
    return ids[index % len(ids)] if ids else None


class Lifecycles(RuleBasedStateMachine):
    world: World  # set by the test before running

    def __init__(self) -> None:
        super().__init__()
        # One savepoint per example, rolled back in teardown: every example starts from the same world.
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self.closed_ideas: dict[int, str] = {}
        self.final_attempts: dict[int, str] = {}
        self.succeeded_runs: set[int] = set()
        self.usage: dict[int, tuple] = {}
        self.changes: dict[int, tuple] = {}

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)

    # -------------------------------------------------------------------------------------- ideas

    @rule(idea=st.integers(0, 2), to=st.sampled_from(Status.values), decided=st.booleans(), by_pic=st.booleans())
    def move_idea(self, idea: int, to: str, decided: bool, by_pic: bool) -> None:
        decision = idea_services.DecisionInput(summary="The ablation says so.") if decided else None
        expected_refusal(lambda: idea_services.idea_transition(
            idea=self.world.ideas[idea], to_status=to, by=self.world.pic if by_pic else self.world.member,
            decision=decision))

    # --------------------------------------------------------------------------- studies and runs

    @rule(kind=st.sampled_from(["ablation", "integration"]), first=st.integers(0, 2), seeds=st.integers(1, 2))
    def launch_study(self, kind: str, first: int, seeds: int) -> None:
        keys = [idea.key for idea in self.world.ideas]
        chosen = [keys[first]] if kind == "ablation" else [keys[first], keys[(first + 1) % 3]]
        expected_refusal(lambda: experiment_services.study_launch(
            user=self.world.pic, kind=kind, baseline="tiny-fast", ideas=chosen, seeds=list(range(seeds)),
            max_steps=10))

    @rule(index=INDEX)
    def cancel_run(self, index: int) -> None:
        if (run_id := pick(Run.objects.all(), index)) is not None:
            expected_refusal(lambda: experiment_services.run_cancel(run=run_id, user=self.world.pic))

    @rule(index=INDEX)
    def resume_run(self, index: int) -> None:
        if (run_id := pick(Run.objects.all(), index)) is not None:
            expected_refusal(lambda: experiment_services.run_resume(run=run_id, user=self.world.pic))

    @rule(index=INDEX)
    def cancel_study(self, index: int) -> None:
        if (study_id := pick(Study.objects.all(), index)) is not None:
            experiment_services.study_cancel(study=Study.objects.get(pk=study_id), user=self.world.pic)

    # ------------------------------------------------------------------ the worker side of attempts

    @rule(index=INDEX, host=st.sampled_from(HOSTS), with_slot=st.booleans())
    def claim(self, index: int, host: str, with_slot: bool) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state=RunStatus.QUEUED), index)) is None:
            return
        claim = attempts.attempt_claim(attempt_id, host=host, slot_ids=[0] if with_slot else None)
        if claim.outcome is attempts.ClaimOutcome.CLAIMED:
            # A duplicate message reaching another host must not start the attempt a second time.
            other = HOSTS[1 - HOSTS.index(host)]
            duplicate = attempts.attempt_claim(attempt_id, host=other, slot_ids=None)
            assert duplicate.outcome is attempts.ClaimOutcome.NOT_CLAIMABLE

    @rule(index=INDEX)
    def spawned(self, index: int) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state=RunStatus.STARTING), index)) is not None:
            assert attempts.attempt_started(attempt_id, pid=None, pgid=None)

    @rule(index=INDEX, own_host=st.booleans())
    def heartbeat(self, index: int, own_host: bool) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state__in=attempts.ACTIVE_STATES), index)) is None:
            return
        host = Attempt.objects.get(pk=attempt_id).host if own_host else "elsewhere"
        assert attempts.attempt_heartbeat(attempt_id, host=host).alive == own_host

    @rule(index=INDEX, state=st.sampled_from(FINAL_STATES), own_host=st.booleans())
    def finish(self, index: int, state: str, own_host: bool) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state__in=attempts.ACTIVE_STATES), index)) is None:
            return
        host = Attempt.objects.get(pk=attempt_id).host if own_host else "elsewhere"
        finished = attempts.attempt_finish(attempt_id, host=host, state=state, reason="trainer exited")
        assert (finished is not None) == own_host, "only the host running an attempt may finish it"

    @rule(index=INDEX)
    def lease_expires(self, index: int) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state__in=attempts.ACTIVE_STATES), index)) is not None:
            assert attempts.attempt_expire(attempt_id, now=timezone.now() + timedelta(hours=1)) is not None

    @rule(index=INDEX)
    def charge_again(self, index: int) -> None:
        # The supervisor's periodic charge racing the final one: charging the same time twice must not bill twice.
        if (attempt_id := pick(Attempt.objects.exclude(started_at=None), index)) is not None:
            budget.attempt_charge(attempt_id)

    @rule(index=INDEX)
    def second_live_attempt_is_refused(self, index: int) -> None:
        if (attempt_id := pick(Attempt.objects.filter(state__in=LIVE_STATES), index)) is None:
            return
        live = Attempt.objects.get(pk=attempt_id)
        with pytest.raises(IntegrityError), transaction.atomic():
            Attempt.objects.create(run_id=live.run_id, number=live.number + 100, backend=live.backend)

    # ------------------------------------------------------------------------------------- compute

    @rule(upcoming=st.booleans(), idea=st.none() | st.integers(0, 2),
          hours=st.decimals(min_value=-5, max_value=400, places=2))
    def set_grant(self, upcoming: bool, idea: int | None, hours: Decimal) -> None:
        target = self.world.ideas[idea] if idea is not None else None
        actor = self.world.pic if target else self.world.reviewer
        expected_refusal(lambda: compute_services.allocation_set(
            cycle=self.world.upcoming if upcoming else self.world.current, pool=self.world.pool,
            area=self.world.ideas[0].area, idea=target, gpu_hours=hours, actor=actor))

    @rule(idea=st.none() | st.integers(0, 2), hours=st.decimals(min_value=1, max_value=3000, places=2))
    def submit_request(self, idea: int | None, hours: Decimal) -> None:
        expected_refusal(lambda: compute_services.request_submit(
            requester=self.world.member, cycle=self.world.upcoming, pool=self.world.pool,
            area=self.world.ideas[0].area, idea=self.world.ideas[idea] if idea is not None else None,
            gpu_hours=hours, justification="The pilot worked.", stage="pilot"))

    @rule(index=INDEX, decision=st.sampled_from(["approve", "trim", "refuse"]),
          hours=st.decimals(min_value=-5, max_value=3000, places=2))
    def review_request(self, index: int, decision: str, hours: Decimal) -> None:
        if (request_id := pick(Request.objects.all(), index)) is None:
            return
        expected_refusal(lambda: compute_services.request_review(
            request=Request.objects.get(pk=request_id), reviewer=self.world.reviewer, decision=decision,
            gpu_hours=hours, comment="Budget."))

    # ---------------------------------------------------------------------------------- invariants

    @invariant()
    def terminal_ideas_stay_terminal(self) -> None:
        for idea_id, status in Idea.objects.values_list("pk", "status"):
            if idea_id in self.closed_ideas:
                assert status == self.closed_ideas[idea_id], f"idea {idea_id} left {self.closed_ideas[idea_id]}"
            if status in (Status.LANDED, Status.REJECTED):
                self.closed_ideas[idea_id] = status
        statuses = dict(Idea.objects.values_list("pk", "status"))
        chains: dict[int, str] = {}
        for idea_id, from_status, to_status in Transition.objects.order_by("pk").values_list(
                "idea_id", "from_status", "to_status"):
            assert is_allowed(from_status, to_status), f"idea {idea_id}: {from_status} → {to_status} was recorded"
            assert chains.get(idea_id, from_status) == from_status, f"idea {idea_id}: transitions do not chain"
            chains[idea_id] = to_status
        for idea_id, last in chains.items():
            assert statuses[idea_id] == last

    @invariant()
    def final_attempts_and_succeeded_runs_stay_final(self) -> None:
        for attempt_id, state in Attempt.objects.values_list("pk", "state"):
            if attempt_id in self.final_attempts:
                assert state == self.final_attempts[attempt_id], f"attempt {attempt_id} left {self.final_attempts[attempt_id]}"
            elif state in FINAL_STATES:
                self.final_attempts[attempt_id] = state
        for run_id, status in Run.objects.values_list("pk", "status"):
            assert run_id not in self.succeeded_runs or status == RunStatus.SUCCEEDED, f"run {run_id} left succeeded"
            if status == RunStatus.SUCCEEDED:
                self.succeeded_runs.add(run_id)

    @invariant()
    def at_most_one_live_attempt_per_run_and_the_run_mirrors_its_latest(self) -> None:
        crowded = Run.objects.annotate(live=Count("attempts", filter=Q(attempts__state__in=LIVE_STATES))).filter(live__gt=1)
        assert not crowded.exists(), f"runs with several live attempts: {list(crowded.values_list('pk', flat=True))}"
        for run in Run.objects.prefetch_related("attempts"):
            latest = max(run.attempts.all(), key=lambda attempt: attempt.number)
            assert run.status == latest.state, f"run {run.pk} is {run.status}, its attempt {latest.number} {latest.state}"

    @invariant()
    def no_amount_is_negative_and_children_fit_their_parent(self) -> None:
        assert not Allocation.objects.filter(gpu_hours__lt=0).exists()
        assert not LaunchHold.objects.filter(outstanding_hours__lt=0).exists()
        assert not Request.objects.filter(granted_hours__lt=0).exists()
        assert not Review.objects.filter(Q(granted_hours__lt=0) | Q(grant_after__lt=0)).exists()
        assert not Request.objects.filter(granted_hours__gt=F("gpu_hours")).exists(), "a grant above the request"
        for parent in Allocation.objects.annotate(children_total=Sum("children__gpu_hours")).exclude(children_total=None):
            assert parent.children_total <= parent.gpu_hours, (
                f"{parent}: children hold {parent.children_total} GPU-h of its {parent.gpu_hours}")

    @invariant()
    def ledgers_are_append_only_and_never_charge_twice(self) -> None:
        usage = {row[0]: row[1:] for row in UsageEntry.objects.values_list(
            "pk", "attempt_key", "segment_start", "segment_end", "gpu_hours", "allocation_id")}
        changes = {row[0]: row[1:] for row in AllocationChange.objects.values_list("pk", "allocation_id", "before", "after")}
        for seen, now in ((self.usage, usage), (self.changes, changes)):
            for pk, row in seen.items():
                assert now.get(pk) == row, f"ledger row {pk} changed or vanished: {row} → {now.get(pk)}"
        self.usage, self.changes = usage, changes
        segments: dict[str, list] = {}
        for key, start, end, *_ in usage.values():
            segments.setdefault(key, []).append((start, end))
        for key, spans in segments.items():
            spans.sort()
            assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:])), f"{key} charged twice"


@pytest.mark.timeout(300)
def test_lifecycles_grants_and_attempts_keep_their_invariants(db) -> None:
    Lifecycles.world = make_world()
    run_state_machine_as_test(Lifecycles, settings=settings(
        max_examples=30, stateful_step_count=20, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


# ------------------------------------------------------------------------------------------ concurrency


def race(workers: int, work: Callable[[int], Any]) -> list[Any]:
    """Start ``workers`` threads at once (a barrier), each on its own database connection; their results."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as error:  # noqa: BLE001 - reported to the test as the thread's result
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


@pytest.mark.requires_postgres
def test_concurrent_claims_and_resumes_leave_one_live_attempt(transactional_db) -> None:
    world = make_world()
    study = experiment_services.study_launch(user=world.pic, kind="ablation", baseline="tiny-fast",
                                             ideas=[world.ideas[0].key], seeds=[0], max_steps=10)
    run = study.runs.order_by("pk").first()
    queued = run.attempts.get()

    claims = race(6, lambda index: attempts.attempt_claim(queued.pk, host=f"gpu-{index}", slot_ids=None))
    outcomes = [claim.outcome for claim in claims]
    assert outcomes.count(attempts.ClaimOutcome.CLAIMED) == 1, outcomes
    assert outcomes.count(attempts.ClaimOutcome.NOT_CLAIMABLE) == 5, outcomes

    winner = next(claim.attempt for claim in claims if claim.outcome is attempts.ClaimOutcome.CLAIMED)
    attempts.attempt_finish(winner.pk, host=winner.host, state=RunStatus.FAILED, reason="NaN loss")
    resumed = race(6, lambda index: experiment_services.run_resume(run=run.pk, user=world.pic))
    assert sum(isinstance(result, Attempt) for result in resumed) == 1, resumed
    assert all(isinstance(result, (Attempt, RunStateConflict)) for result in resumed), resumed
    assert run.attempts.filter(state__in=LIVE_STATES).count() == 1
