"""The training run behind ``python -m modelzoo.train``: data, model, AdamW, the loop, evaluation,
checkpoints, preemption and resume.

Reproducibility contract: with the same config a run resumed from any checkpoint produces bit-identical
losses to one that never stopped. Everything that shapes the next step is restored: model and optimizer
tensors, the step (the LR schedule is a function of it), every RNG (python, numpy, torch, CUDA; per rank),
the sampler position and the partly filled logging interval. Evaluation runs under a forked RNG so it
never shifts the training randomness.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import resource
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from modelzoo import fp4_kernels
from modelzoo.checkpoint import CheckpointWriteError, latest_checkpoint, load_checkpoint, save_checkpoint
from modelzoo.config import ConfigError, Recipe
from modelzoo.data import BlendSampler, CorpusError, build_blend, validation_batches
from modelzoo.distributed import Dist, any_rank, barrier, gather_objects, mean_across_ranks
from modelzoo.model import HybridLM
from modelzoo.rng_state import capture_rng, restore_rng, seed_everything
from modelzoo.run_files import RunFiles
from modelzoo.schedule import build_optimizer, learning_rate
from modelzoo.tracking import Tracker, TrackingOptions, new_run_id, resolve_mode

log = logging.getLogger("modelzoo.train")
STATUS_EVERY_SECONDS = 10.0
_CHECKPOINT_TENSORS = ["model", "optimizer", "rng"]


def use_inductor_cache() -> None:
    """Keep torch.compile's inductor cache under the var directory, so that repeated runs start warm (an explicit
    ``TORCHINDUCTOR_CACHE_DIR`` wins)."""
    var_dir = Path(os.environ.get("FLIGHTDECK_VAR_DIR") or "var")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((var_dir / "inductor-cache").resolve()))


class TrainingFailure(RuntimeError):
    """Training cannot continue (non-finite loss or gradient, no room for a checkpoint); ``step`` is the last
    completed step."""

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(reason)
        self.step = step


class IncompatibleCheckpoint(ValueError):
    """The run directory's checkpoint was written for a different config, or resuming was not asked for."""


@dataclass(frozen=True)
class RunOptions:
    recipe: Recipe
    resume: bool
    tracking: TrackingOptions = TrackingOptions()


class StopRequest:
    """Set by SIGTERM / SIGINT / SIGUSR2; the loop finishes its step, checkpoints and exits as ``preempted``.

    SIGUSR2 is Slurm's warning before a job's time limit (``--signal``): Slurm sends it to every process of the
    job, the trainer included, whose default action would be to die on the spot."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGUSR2", None)):
            if sig is not None:
                signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        log.info("received %s; stopping after the current step", signal.Signals(signum).name)


@dataclass
class IntervalStats:
    """Running sums of per-step values between two log lines (saved in checkpoints, so means survive resume)."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {name: total / self.counts[name] for name, total in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.counts = {}, {}


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _fp4_error(aux: dict[str, Any]) -> Any:
    """The model reports NVFP4 statistics as ``modelzoo.fp4.collect_stats``'s dict ({} when nothing recorded)."""
    stats = aux.get("fp4_error")
    return stats.get("fp4_error") if isinstance(stats, dict) else stats


def find_resume_point(files: RunFiles, resume: bool, config_hash: str) -> tuple[int, Path] | None:
    """The checkpoint to continue from, or None for a fresh start; refuses to silently clobber old checkpoints."""
    latest = latest_checkpoint(files.checkpoints)
    if latest is None:
        return None
    step, directory = latest
    if not resume:
        raise IncompatibleCheckpoint(
            f"--out {files.out} already holds checkpoint step-{step}; pass --resume to continue it or use an empty directory"
        )
    _, state = load_checkpoint(directory, [])
    if state.get("config_hash") != config_hash:
        raise IncompatibleCheckpoint(
            f"checkpoint {directory} was written for config hash {str(state.get('config_hash'))[:12]}, "
            f"but --recipe/--set resolve to {config_hash[:12]}; resume with the original config or use a new --out"
        )
    return latest


class Run:
    """One execution of a recipe in a run directory (constructed on every rank; rank 0 writes the files)."""

    def __init__(self, options: RunOptions, ctx: Dist, files: RunFiles, stop: StopRequest) -> None:
        self.options, self.ctx, self.files, self.stop = options, ctx, files, stop
        self.recipe = options.recipe
        self.cfg = options.recipe.train
        self.config_hash = options.recipe.config_hash()
        self.step = 0
        self.stats = IntervalStats()
        self.wandb_id = options.tracking.run_id
        self._last_status = 0.0
        self.compile_pending = options.recipe.train.compile  # regions compile during this process's first step
        self.compile_seconds: float | None = None  # that step's time, until a record reports it

    # ------------------------------------------------------------ set-up

    def prepare(self) -> None:
        resume_from = find_resume_point(self.files, self.options.resume, self.config_hash)
        if self.ctx.is_main:
            self.files.write_config(self.recipe.to_dict(), self.config_hash)
            self.files.write_status("running", resume_from[0] if resume_from else 0, self.cfg.max_steps)
        self._build_data()
        seed_everything(self.cfg.seed)
        self.model = HybridLM(self.recipe.model).to(self.ctx.device)
        if self.recipe.model.fp4.enabled and self.ctx.device.type == "cpu":
            fp4_kernels.ensure_built()  # a first build (~30 s) belongs to set-up, not to the first step's speed
        if self.cfg.compile:
            use_inductor_cache()
            self.model.compile_regions()
        self.optimizer = build_optimizer(self.model, self.recipe.optim)
        if resume_from:
            self._restore(*resume_from)
        if self.ctx.is_main:
            self.files.truncate_metrics(self.step)
            if self.wandb_id is None and resolve_mode(self.options.tracking.mode) != "disabled":
                self.wandb_id = new_run_id()
        parameters = sum(p.numel() for p in self.model.parameters())
        log.info("model: %s parameters, backend %s, device %s, world size %d",
                 f"{parameters:,}", self.model.backend, self.ctx.device, self.ctx.world_size)
        self.trained = self.model
        if self.ctx.enabled:
            # Routed experts that receive no token in a step have no gradient, hence find_unused_parameters.
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.trained = DistributedDataParallel(self.model, device_ids=device_ids, find_unused_parameters=True)

    def _build_data(self) -> None:
        # Rank 0 builds the cache first; the others then find it complete instead of building it again (or
        # meet the same CorpusError). Rank 0 reaches the barrier even when it fails, so nobody waits forever.
        failure: CorpusError | None = None
        if self.ctx.is_main:
            try:
                blend = build_blend(self.recipe.data)
            except CorpusError as error:
                failure = error
        barrier(self.ctx)
        if failure is not None:
            raise failure
        if not self.ctx.is_main:
            blend = build_blend(self.recipe.data)
        for name, corpus in blend.corpora.items():
            log.info("corpus %s: %s tokens (train/val)", name,
                     {split: len(getattr(corpus, split)) for split in ("train", "val")})
        if blend.vocab_size > self.recipe.model.vocab_size:
            raise ConfigError(
                f"vocab_size: {self.recipe.model.vocab_size} is smaller than the tokenizer's {blend.vocab_size}"
            )
        tokenizer_file = next((c.directory / "tokenizer.json" for c in blend.corpora.values()
                               if (c.directory / "tokenizer.json").is_file()), None)
        if tokenizer_file is not None and self.ctx.is_main:
            # Beside the checkpoints, so an export ships the tokenizer the model was trained with.
            self.files.write_tokenizer(tokenizer_file.read_bytes())
        self.blend_weights = blend.weights
        self.sampler = BlendSampler({name: c.train for name, c in blend.corpora.items()}, blend.weights,
                                    self.cfg.seq_len, self.cfg.batch_size, self.cfg.seed, self.ctx.rank,
                                    self.ctx.world_size)
        self.val_batches = {
            name: validation_batches(corpus.val, self.cfg.seq_len, self.cfg.batch_size, self.cfg.eval_batches)
            for name, corpus in blend.corpora.items()
        }

    def _restore(self, step: int, directory: Path) -> None:
        tensors, state = load_checkpoint(directory, _CHECKPOINT_TENSORS)
        self.model.load_state_dict(tensors["model"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.sampler.load_state_dict(state["sampler"])
        self.stats = IntervalStats(**state["interval_stats"])
        self.wandb_id = self.wandb_id or state.get("wandb_id")
        self.step = step
        rng_states = tensors["rng"]
        if len(rng_states) != self.ctx.world_size:
            log.warning("checkpoint has RNG state for %d ranks, this run has %d: continuing without bit-identical "
                        "randomness", len(rng_states), self.ctx.world_size)
        restore_rng(rng_states[min(self.ctx.rank, len(rng_states) - 1)], self.ctx.device)
        log.info("resumed from %s", directory)

    # ------------------------------------------------------------ the loop

    def train(self) -> str:
        """Train to ``max_steps`` or until stopped; returns the final status ("succeeded" or "preempted")."""
        tracker = Tracker(self.options.tracking, self.wandb_id, self.files.out, self.recipe.to_dict()) if self.ctx.is_main else None
        progress = tqdm(total=self.cfg.max_steps, initial=self.step, unit="step",
                        disable=not (self.ctx.is_main and sys.stderr.isatty()))
        exit_code = 1
        try:
            status = self._loop(tracker, progress)
            exit_code = 0
            return status
        finally:
            progress.close()
            if tracker is not None:
                tracker.finish(exit_code)

    def _loop(self, tracker: Tracker | None, progress: tqdm) -> str:
        interval_tokens, interval_seconds = 0, 0.0
        tokens_per_step = self.cfg.batch_size * self.cfg.seq_len
        while self.step < self.cfg.max_steps:
            if any_rank(self.ctx, self.stop.requested):
                self.save_checkpoint()
                self._write_status("preempted", force=True)
                log.info("preempted at step %d", self.step)
                return "preempted"
            started = time.perf_counter()
            lr = self._train_step()
            elapsed = time.perf_counter() - started
            self.step += 1
            if self.compile_pending:
                # Compilation happens inside the first step: report it apart, so tokens/s (and the ETA built on
                # it) show the steady speed.
                self.compile_pending, self.compile_seconds = False, elapsed
                log.info("compiled regions in the first step: %.1fs (cache %s)", elapsed,
                         os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
            else:
                interval_seconds += elapsed
                interval_tokens += tokens_per_step
            progress.update(1)
            evaluate = self.step % self.cfg.eval_every == 0 or self.step == self.cfg.max_steps
            if evaluate or self.step % self.cfg.log_every == 0:
                record = self._record(lr, interval_tokens / interval_seconds if interval_seconds else None)
                if evaluate:
                    record.update(self.evaluate())
                self._publish(record, tracker, progress)
                interval_tokens, interval_seconds = 0, 0.0
            self._write_status("running")
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.max_steps:
                self.save_checkpoint()
        self._write_status("succeeded", force=True)
        return "succeeded"

    def _train_step(self) -> float:
        lr = learning_rate(self.step, self.recipe.optim, self.cfg.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.sampler.next_batch().to(self.ctx.device)
        with self._autocast():
            output = self.trained(batch, labels=batch)
        loss = mean_across_ranks(self.ctx, output.loss.detach())
        if not torch.isfinite(loss):
            raise TrainingFailure(f"non-finite loss ({loss.item()}) at step {self.step + 1}", self.step)
        self.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or math.inf)
        if not torch.isfinite(grad_norm):
            raise TrainingFailure(f"non-finite gradient norm ({grad_norm.item()}) at step {self.step + 1}", self.step)
        self.optimizer.step()
        aux = output.aux
        self.stats.add("train_loss", _as_float(mean_across_ranks(self.ctx, aux["lm_loss"].detach())))
        self.stats.add("grad_norm", _as_float(grad_norm))
        self.stats.add("moe_imbalance", _as_float(aux.get("moe_imbalance")))
        self.stats.add("fp4_error", _as_float(_fp4_error(aux)))
        return lr

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.ctx.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """``val_loss/<corpus>``: mean next-token loss over each corpus's fixed validation batches, and
        ``val_loss``: their mean weighted by the blend (computed on every rank, identically)."""
        self.model.eval()
        devices = [self.ctx.device] if self.ctx.device.type == "cuda" else []
        per_corpus = {}
        with torch.random.fork_rng(devices=devices):
            for name, batches in self.val_batches.items():
                losses = []
                for batch in batches:
                    batch = batch.to(self.ctx.device)
                    with self._autocast():
                        losses.append(float(self.model(batch, labels=batch).aux["lm_loss"]))
                per_corpus[name] = sum(losses) / len(losses)
        self.model.train()
        blended = sum(weight * per_corpus[name] for name, weight in self.blend_weights.items())
        return {"val_loss": blended, **{f"val_loss/{name}": loss for name, loss in per_corpus.items()}}

    def _record(self, lr: float, tokens_per_s: float | None) -> dict[str, Any]:
        means = self.stats.means()
        self.stats.reset()
        compiled = {} if self.compile_seconds is None else {"compile_seconds": self.compile_seconds}
        self.compile_seconds = None
        return compiled | {
            "step": self.step,
            "tokens": self.step * self.cfg.batch_size * self.cfg.seq_len,
            "train_loss": means.get("train_loss"),
            "lr": lr,
            "grad_norm": means.get("grad_norm"),
            "tokens_per_s": tokens_per_s,
            "peak_mem_mb": peak_memory_mb(self.ctx.device),
            "moe_imbalance": means.get("moe_imbalance"),
            "fp4_error": means.get("fp4_error"),
            **{f"tokens/{name}": count for name, count in self.sampler.tokens_seen().items()},
            "time": time.time(),
        }

    def _publish(self, record: dict[str, Any], tracker: Tracker | None, progress: tqdm) -> None:
        if not self.ctx.is_main:
            return
        self.files.append_metrics(record)
        if tracker is not None:
            tracker.log(record, self.step)
        progress.set_postfix(loss=f"{record['train_loss']:.4f}")
        val = f" val_loss {record['val_loss']:.4f}" if "val_loss" in record else ""
        speed = "-" if record["tokens_per_s"] is None else f"{record['tokens_per_s']:.0f}"
        log.info("step %d train_loss %.4f%s lr %.3g grad_norm %.3f tokens/s %s", self.step, record["train_loss"], val,
                 record["lr"], record["grad_norm"], speed)

    def _write_status(self, status: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.ctx.is_main and (force or now - self._last_status >= STATUS_EVERY_SECONDS or self.step % self.cfg.log_every == 0):
            self.files.write_status(status, self.step, self.cfg.max_steps)
            self._last_status = now

    def save_checkpoint(self) -> None:
        rng_states = gather_objects(self.ctx, capture_rng(self.ctx.device))
        if self.ctx.is_main:
            state = {
                "step": self.step,
                "config_hash": self.config_hash,
                "sampler": self.sampler.state_dict(),
                "interval_stats": {"sums": self.stats.sums, "counts": self.stats.counts},
                "wandb_id": self.wandb_id,
                "world_size": self.ctx.world_size,
                "time": time.time(),
            }
            tensors = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "rng": rng_states}
            try:
                path = save_checkpoint(self.files.checkpoints, self.step, tensors, state, self.cfg.keep_checkpoints)
            except CheckpointWriteError as error:
                # A full disk ends the run cleanly: resuming later repeats only the steps since the last
                # complete checkpoint, which the failed write left untouched.
                raise TrainingFailure(error.strerror, self.step) from error
            log.info("checkpoint %s", path)
        barrier(self.ctx)
