"""Finish a launched study's runs with made-up metrics, for page, API and benchmark tests that are about
showing results rather than producing them (the end-to-end tests train for real)."""
import math
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from experiments.execution.monitor import final_metrics_refresh
from experiments.models import Arm, Attempt, Metric, Run, RunStatus, Study

# Final validation loss offset per arm kind: treatments below the baseline, leave-one-out arms between.
ARM_OFFSET = {"baseline": 0.0, "single": -0.05, "all": -0.08, "leave_one_out": -0.04}


def finish_study(study: Study, *, steps: int = 50, eval_every: int = 10, status: str = RunStatus.SUCCEEDED,
                 corpora: Sequence[str] = ()) -> None:
    """Mark every run of ``study`` finished and write train/val loss and system metrics for ``steps`` steps.
    Seeds shift the whole curve a little, so arms have a seed spread. With ``corpora``, also a validation
    loss per corpus: treatments gain on the first corpus and lose half as much on the others."""
    arms_of = {}
    for arm in Arm.objects.filter(study=study).prefetch_related("runs"):
        for run in arm.runs.all():
            arms_of.setdefault(run.pk, arm)
    rows = []
    for run in Run.objects.filter(study=study):
        offset = ARM_OFFSET[arms_of[run.pk].kind] + 0.01 * (run.seed % 3)
        for step in range(1, steps + 1):
            loss = 3.0 + offset + 2.0 * math.exp(-step / (steps / 5))
            rows += [Metric(run=run, step=step, name="train_loss", value=loss + 0.02 * math.sin(step)),
                     Metric(run=run, step=step, name="tokens_per_s", value=9000.0 + 100 * run.seed),
                     Metric(run=run, step=step, name="peak_mem_mb", value=512.0 + step),
                     Metric(run=run, step=step, name="moe_imbalance", value=1.0 + 1.0 / step),
                     Metric(run=run, step=step, name="fp4_error", value=0.01 + 0.001 * math.cos(step))]
            if step % eval_every == 0:
                rows.append(Metric(run=run, step=step, name="val_loss", value=loss + 0.05))
                for index, corpus in enumerate(corpora):
                    shift = ARM_OFFSET[arms_of[run.pk].kind] * (1.0 if index == 0 else -0.5)
                    value = loss - ARM_OFFSET[arms_of[run.pk].kind] + shift + 0.05 + 0.3 * index
                    rows.append(Metric(run=run, step=step, name=f"val_loss/{corpus}", value=value))
    now = timezone.now()
    with transaction.atomic():
        Metric.objects.bulk_create(rows, batch_size=5000)
        Attempt.objects.filter(run__study=study).update(state=status, started_at=now, finished_at=now, exit_code=0)
        Run.objects.filter(study=study).update(status=status, step=steps, max_steps=steps, tokens=steps * 64,
                                               tokens_per_s=9000.0, finished_at=now)
        for run_id in Run.objects.filter(study=study).values_list("pk", flat=True):
            final_metrics_refresh(run_id=run_id)
