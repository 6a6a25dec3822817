"""Celery tasks: ids in, one call out. Start messages are acknowledged early (``acks_late=False``): the
attempt row, its lease and heartbeat are the truth, so a run longer than the broker's visibility timeout
is never redelivered and started twice; a lost message is re-sent by the reconciler instead."""
from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down

from experiments.execution import orphans, reconciler, supervisor


@shared_task(acks_late=False, ignore_result=True)
def execute_attempt(attempt_id: int) -> None:
    """Claim and run one attempt on this worker. Sent by ``experiments.execution.dispatch`` to queue ``gpu`` (local
    runs) or ``slurm`` (Slurm jobs, watched from here)."""
    supervisor.execute_attempt(attempt_id)


@shared_task(ignore_result=True)
def reconcile() -> None:
    reconciler.reconcile()


@worker_ready.connect
def _kill_orphans_on_start(**_: object) -> None:
    # A worker that starts after a crash on this host removes trainers the crashed one left behind.
    reconciler.kill_orphans()


@worker_shutting_down.connect
def _preempt_own_trainers(**_: object) -> None:
    # A warm shutdown waits for running tasks, which here means whole training runs. Ask this worker's
    # trainers to checkpoint and stop instead: their supervisors record them preempted, the tasks end, and
    # the runs resume on another worker.
    orphans.terminate_own_trainers()
