"""What every trainer does after a micro-batch: count optimizer steps, log, checkpoint, stop early when asked."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from setok.config import TrainConfig
from setok.io import DataError
from setok.train.checkpoint import CheckpointManager

log = logging.getLogger("setok.train")


def resume(engine: Any, out: Path, *, config_sha: str | None = None) -> int:
    """Restore the newest checkpoint under ``out/checkpoints`` into ``engine``; returns the step to start at.

    With ``config_sha``, checkpoints written under another config (Snakemake reruns a job whose config changed) are
    moved aside to ``out/checkpoints.stale-<n>`` and training starts from step 0, instead of failing on mismatched
    shapes or silently continuing another experiment.
    """
    ckpt = CheckpointManager(out / "checkpoints")
    old = ckpt.config_sha()
    if config_sha is not None and old is not None and old != config_sha:
        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_rank() == 0:
            moved = ckpt.set_aside()
            log.warning("checkpoints of config %s (this run: %s) moved to %s; training from step 0", old,
                        config_sha, moved)
        if dist.is_initialized():
            dist.barrier()
        return 0
    try:
        start = int((ckpt.load(engine) or {"step": 0})["step"])
    except RuntimeError as e:  # shapes differ: a checkpoint from before config hashes were recorded
        raise DataError(f"{ckpt.root}/{ckpt.latest()}: written under another config and cannot be resumed "
                        f"({str(e).splitlines()[-1].strip()}); move {ckpt.root} aside to train afresh") from None
    if start:
        log.info("resumed from %s at step %d", ckpt.latest(), start)
    return start


class StepLoop:
    """Turns micro-batches into optimizer steps for one training run.

    Every ``accumulation`` micro-batches make a step; at a step the progress bar moves, ``train_log.jsonl`` gets a
    row every ``log_every`` steps (and at the last), a checkpoint is saved every ``checkpoint_every`` steps (and at
    the last), and ``stop_after`` (``--stop-after``) ends the run early as an interruption would.

    Args:
        engine: the DeepSpeed engine (for the learning rate and checkpoints).
        cfg: the stage's schedule.
        out: the run folder (``train_log.jsonl``, ``checkpoints/``).
        start: the step the run resumes at.
        accumulation: micro-batches per optimizer step on this rank.
        rank: process rank (rank 0 logs).
        desc: progress-bar label.
        stop_after: stop once this step is done (None: run to ``cfg.steps``).
        config_sha: the run's config hash, recorded with every checkpoint (see :func:`resume`).
    """

    def __init__(
        self, *, engine: Any, cfg: TrainConfig, out: Path, start: int, accumulation: int, rank: int, desc: str,
        stop_after: int | None = None, config_sha: str | None = None,
    ) -> None:
        self.engine, self.cfg, self.accumulation, self.stop_after = engine, cfg, accumulation, stop_after
        self.config_sha = config_sha
        self.step, self.micro, self.t0 = start, 0, time.time()
        self.ckpt = CheckpointManager(out / "checkpoints")
        self.log_file = (out / "train_log.jsonl").open("a") if rank == 0 else None
        self.bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=rank != 0, file=sys.stderr)

    def advance(self, logs: dict[str, float], **postfix: str) -> bool:
        """Record one micro-batch (after ``engine.step()``). Returns True when the run must stop early."""
        self.micro += 1
        if self.micro % self.accumulation:
            return False
        self.step += 1
        c = self.cfg
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{logs['loss']:.4f}", **postfix)
        if self.log_file and (self.step % c.log_every == 0 or self.step == c.steps):
            row = {"step": self.step, "lr": self.engine.get_lr()[0], "seconds": round(time.time() - self.t0, 3),
                   **logs, **peak_memory()}
            self.log_file.write(json.dumps(row) + "\n")
            self.log_file.flush()
        if self.step % c.checkpoint_every == 0 or self.step == c.steps:
            self.ckpt.save(self.engine, self.step, {"step": self.step, "config_sha": self.config_sha})
        if self.stop_after is not None and self.stop_after <= self.step < c.steps:
            log.warning("stopping after step %d as asked (--stop-after); resume by running again", self.step)
            self.close()
            return True
        return False

    def close(self) -> None:
        self.bar.close()
        if self.log_file:
            self.log_file.close()
            self.log_file = None


def peak_memory() -> dict[str, float]:
    """``{"max_memory_gb": ...}``: the most GPU memory this process held in tensors since the previous call (then
    reset), in GB; empty off CUDA. Logged with every row so a cluster run shows its headroom per stage."""
    if not torch.cuda.is_available():
        return {}
    peak = torch.cuda.max_memory_allocated() / 1e9
    torch.cuda.reset_peak_memory_stats()
    return {"max_memory_gb": round(peak, 3)}
