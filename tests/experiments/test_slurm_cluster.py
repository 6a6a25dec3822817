"""The slurm backend against a real single-node Slurm cluster (sbatch, scontrol, sacct, scancel; the
`slurm_cluster` fixture), with submitit's SlurmExecutor and the real tiny trainer in every job.

Each test starts its own Celery worker on the `slurm` queue, because the cluster's settings differ per test
(time limits). Jobs ask for no GPU; GPU-hours are charged for the allocated CPUs (``charge_tres=cpu``).
"""
import json
import os
import re
import signal
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from compute import services as compute_services
from compute.cycles import Calendar
from compute.models import Pool, UsageEntry
from experiments import services
from experiments.budget import attempt_charge_key
from experiments.execution import launcher, orphans
from experiments.models import Metric, Run, RunStatus
from tests.experiments.conftest import FAST_OVERRIDES
from tests.experiments.helpers import runs_when_done, wait_until

pytestmark = pytest.mark.timeout(420)

STEPS = 30  # the long tests' runs: a few seconds to tens of seconds of tiny-ci training
SLURM_WORKER_ENV = {
    "FLIGHTDECK_SLURM_EXECUTOR": "slurm",
    "FLIGHTDECK_SLURM_GPUS_PER_NODE": "0",
    "FLIGHTDECK_SLURM_CHARGE_TRES": "cpu",
    "FLIGHTDECK_MONITOR_SECONDS": "1",
    "FLIGHTDECK_CHARGE_SECONDS": "5",
    "FLIGHTDECK_WANDB_MODE": "offline",
}


@pytest.fixture
def slurm_worker(slurm_cluster, celery_processes, settings):
    """`slurm_worker(**env)` starts a worker on the `slurm` queue that submits to the test cluster."""
    settings.FLIGHTDECK_SLURM = {**settings.FLIGHTDECK_SLURM, "executor": "slurm", "gpus_per_node": 0,
                                 "charge_tres": "cpu"}
    services.baseline_save(name="tiny-slurm", recipe="tiny-ci", overrides=FAST_OVERRIDES, backend="slurm")

    def start(**env: str):
        return celery_processes.worker(queues=("default", "slurm"), env={**SLURM_WORKER_ENV, **env})

    return start


def launch(pic, make_idea, *, max_steps: int, only_idea_run: bool = False) -> Run:
    """An ablation on `tiny-slurm`; with ``only_idea_run`` its baseline run is cancelled before it starts, so
    the long tests watch one job. Returns the idea's run."""
    study = services.study_launch(user=pic, kind="ablation", baseline="tiny-slurm",
                                  ideas=[make_idea("Lower LR", {"optim.lr": 0.002}).key], seeds=[0],
                                  max_steps=max_steps)
    baseline_run, idea_run = study.runs.order_by("id")
    if only_idea_run:
        services.run_cancel(run=baseline_run, user=pic)
    return idea_run


def attempt_at_step(run: Run, step: int):
    """The run's running attempt once its trainer logged ``step`` (read from metrics.jsonl, which is ahead of
    the ingested metrics by up to a monitor interval: a tiny trainer takes well under a second per step)."""
    attempt = run.attempts.filter(state=RunStatus.RUNNING).exclude(external_id="").first()
    metrics = run.run_dir / "metrics.jsonl"
    if attempt and metrics.exists() and any(found >= step for found in logged_steps(run)):
        return attempt
    return None


def suspend_trainer(attempt) -> None:
    """SIGSTOP the attempt's trainer, so that however fast this machine trains, it is still mid-run when the
    cluster stops it. Slurm's kill sequence (and the job's signal forwarding) sends SIGCONT before SIGTERM."""
    trainers = [process for process in orphans.trainer_processes() if process.attempt_id == attempt.pk]
    assert trainers, f"no trainer process found for attempt {attempt.pk}"
    for process in trainers:
        try:
            os.kill(process.pid, signal.SIGSTOP)
        except ProcessLookupError:
            pass


def logged_steps(run: Run) -> list[int]:
    lines = (run.run_dir / "metrics.jsonl").read_text().splitlines()
    # A line being written may be incomplete; only whole records count.
    return [record["step"] for record in map(_record, lines) if record and "train_loss" in record]


def _record(line: str) -> dict | None:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def trainer_log(run: Run, attempt) -> str:
    """What the trainer and its job wrote: the attempt's log and the trainer's own train.log."""
    own = run.run_dir / "train.log"
    return attempt.log_path.read_text() + (own.read_text() if own.exists() else "")


def finished(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED) else None


def accounted(cluster, job_id: str) -> tuple[str, Decimal]:
    """(final state, CPU-hours of every incarnation) read from sacct here, independently of the backend."""
    lines = cluster.command("sacct", "-n", "-P", "-X", "-D", "-j", job_id, "-o", "State,ElapsedRaw,AllocCPUS")
    rows = [line.split("|") for line in lines.splitlines() if line]
    hours = sum((Decimal(int(elapsed) * int(cpus)) / 3600 for _, elapsed, cpus in rows), Decimal(0))
    return rows[-1][0].split()[0], hours


@pytest.fixture
def cpu_grant(settings, pic, area) -> None:
    """A compute pool and an area grant for this cycle, so attempts are charged to the ledger."""
    pool = Pool.objects.create(name=settings.FLIGHTDECK_DEFAULT_POOL, gpu_type="CPU", gpu_count=2)
    cycle = compute_services.cycle_ensure(window=Calendar.from_settings().window_containing(timezone.now()))
    admin = User.objects.create_user(username="ana")
    admin.groups.add(Group.objects.get_or_create(name="reviewers")[0])
    compute_services.allocation_set(cycle=cycle, pool=pool, area=area, gpu_hours=5, actor=admin)
    return cycle


def test_a_study_runs_as_sbatch_jobs_and_is_charged_what_sacct_accounted(slurm_cluster, slurm_worker, pic,
                                                                       make_idea, cpu_grant):
    slurm_worker()
    study = launch(pic, make_idea, max_steps=3).study

    runs = wait_until(lambda: runs_when_done(study), timeout=300, what="the slurm jobs to finish")

    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 2
    for run in runs:
        [attempt] = run.attempts.all()
        assert attempt.backend == "slurm" and attempt.external_id.isdigit() and attempt.slot is None
        state, cpu_hours = accounted(slurm_cluster, attempt.external_id)
        assert state == "COMPLETED"
        assert list(Metric.objects.filter(run=run, name="train_loss").values_list("step", flat=True)) == [1, 2, 3]
        assert list(run.wandb_dir.glob(f"offline-run-*-{run.public_id}")), "no offline wandb run with our id"
        # The ledger holds exactly what sacct accounted: elapsed × allocated CPUs, to the rounding of its entries.
        charged = sum(UsageEntry.objects.filter(attempt_key=attempt_charge_key(attempt.pk))
                      .values_list("gpu_hours", flat=True), Decimal(0))
        assert cpu_hours > 0 and abs(charged - cpu_hours) < Decimal("0.0005"), (charged, cpu_hours)
        assert abs(run.gpu_hours - float(cpu_hours)) < 0.01  # the run row's own figure, from the worker's clock

    report = StringIO()
    call_command("slurm_usage_drift", stdout=report)
    assert "2 Slurm attempt(s)" in report.getvalue() and "0 attempt(s) drifting" in report.getvalue()

    # A lost final charge (here: removed by hand) is reported as drift for that attempt only.
    lost = runs[0].attempts.get()
    UsageEntry.objects.filter(attempt_key=attempt_charge_key(lost.pk)).delete()
    report = StringIO()
    with pytest.raises(SystemExit):
        call_command("slurm_usage_drift", "--check", stdout=report)
    [drift_line] = [line for line in report.getvalue().splitlines() if line.endswith("DRIFT")]
    assert drift_line.split()[:3] == [str(lost.pk), runs[0].public_id, lost.external_id]
    assert "1 attempt(s) drifting" in report.getvalue()


def test_cancel_scancels_the_job_after_a_checkpoint_and_the_run_resumes_in_a_new_job(slurm_cluster, slurm_worker,
                                                                                     pic, make_idea):
    slurm_worker()
    run = launch(pic, make_idea, max_steps=STEPS, only_idea_run=True)
    attempt = wait_until(lambda: attempt_at_step(run, 2), timeout=200, what="the trainer's second step")
    suspend_trainer(attempt)

    services.run_cancel(run=run, user=pic)

    wait_until(lambda: finished(run), timeout=120, what="the cancel to end the run")
    attempt.refresh_from_db()
    assert run.status == attempt.state == RunStatus.CANCELLED
    assert accounted(slurm_cluster, attempt.external_id)[0] == "CANCELLED"
    assert "received SIGTERM" in trainer_log(run, attempt)
    stopped_at = json.loads((run.run_dir / "status.json").read_text())["step"]
    assert launcher.latest_checkpoint_step(run.run_dir) == stopped_at >= 2, "no checkpoint where it stopped"

    resumed = services.run_resume(run=run, user=pic)

    wait_until(lambda: finished(run), timeout=200, what="the resumed run to finish")
    resumed.refresh_from_db()
    assert run.status == resumed.state == RunStatus.SUCCEEDED
    assert resumed.external_id != attempt.external_id and resumed.resumed_from_step == stopped_at
    assert logged_steps(run) == list(range(1, STEPS + 1)), "a step was trained twice or skipped"


def test_a_job_at_its_time_limit_checkpoints_and_the_run_continues_in_a_new_attempt(slurm_cluster, slurm_worker,
                                                                                   pic, make_idea):
    # One-minute jobs with the warning (SIGUSR2) 1 s before the limit; Slurm sends it up to 30 s early (its
    # periodic time-limit check), so it arrives 29-59 s into the job. The trainer is suspended after its second
    # step, so however fast this machine trains, the first job is still at work when the warning comes.
    slurm_worker(FLIGHTDECK_SLURM_TIMEOUT_MIN="1", FLIGHTDECK_SLURM_SIGNAL_DELAY_S="1")
    run = launch(pic, make_idea, max_steps=STEPS, only_idea_run=True)
    first = wait_until(lambda: attempt_at_step(run, 2), timeout=200, what="the trainer's second step")
    suspend_trainer(first)

    wait_until(lambda: finished(run), timeout=300, what="the run to finish across jobs")

    # Each job ran into its time limit until one finished the run; every new job resumed from the checkpoint its
    # predecessor wrote when warned, in a job of its own.
    *warned, last = run.attempts.order_by("number")
    assert run.status == last.state == RunStatus.SUCCEEDED and warned
    assert all(attempt.state == RunStatus.PREEMPTED for attempt in warned)
    # Slurm's warning reaches the trainer directly (SIGUSR2) and through the job's forwarding (SIGTERM).
    assert re.search(r"received SIG(USR2|TERM); stopping", trainer_log(run, first))
    assert run.attempts.get(number=2).resumed_from_step >= 2
    assert len({attempt.external_id for attempt in run.attempts.all()}) == len(warned) + 1
    assert logged_steps(run) == list(range(1, STEPS + 1)), "a step was trained twice or skipped"
    assert list(run.wandb_dir.glob(f"offline-run-*-{run.public_id}")), "the resumed job logged under another id"


def test_a_requeued_job_resumes_from_its_checkpoint_in_a_new_attempt(slurm_cluster, slurm_worker, pic, make_idea):
    slurm_worker()
    run = launch(pic, make_idea, max_steps=STEPS, only_idea_run=True)
    first = wait_until(lambda: attempt_at_step(run, 2), timeout=200, what="the trainer's second step")
    suspend_trainer(first)

    slurm_cluster.command("scontrol", "requeue", first.external_id)

    wait_until(lambda: finished(run), timeout=300, what="the requeued run to finish")
    first.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert first.state == RunStatus.PREEMPTED and "requeued" in first.reason
    second = run.attempts.get(number=2)
    assert second.state == RunStatus.SUCCEEDED and second.resumed_from_step >= 2
    # Slurm's own rerun of the requeued job was cancelled: one trainer per run at any time.
    assert slurm_cluster.job_state(first.external_id) in ("", "CANCELLED")
    assert logged_steps(run) == list(range(1, STEPS + 1)), "a step was trained twice or skipped"


def test_a_lost_node_ends_the_attempt_and_the_run_resumes_when_the_node_is_back(slurm_cluster, slurm_worker, pic,
                                                                               make_idea):
    slurm_worker()
    run = launch(pic, make_idea, max_steps=STEPS, only_idea_run=True)
    first = wait_until(lambda: attempt_at_step(run, 2), timeout=200, what="the trainer's second step")
    suspend_trainer(first)

    slurm_cluster.kill_node()
    try:
        wait_until(lambda: first.__class__.objects.filter(pk=first.pk, state=RunStatus.PREEMPTED).exists(),
                   timeout=120, what="the attempt on the lost node to be given up")
        first.refresh_from_db()
        assert first.external_id in first.reason
        second = wait_until(lambda: run.attempts.filter(number=2).exclude(external_id="").first(), timeout=60,
                            what="a new job for the run")
        assert slurm_cluster.job_state(second.external_id) == "PENDING", "it cannot run while the node is down"
    finally:
        slurm_cluster.start_slurmd()

    wait_until(lambda: finished(run), timeout=300, what="the run to finish on the returned node")
    assert run.status == RunStatus.SUCCEEDED
    second.refresh_from_db()
    assert second.state == RunStatus.SUCCEEDED and second.resumed_from_step is not None
    ingested = Metric.objects.filter(run=run, name="train_loss").values_list("step", flat=True)
    assert list(ingested) == list(range(1, STEPS + 1))
