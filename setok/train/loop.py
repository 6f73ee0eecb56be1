"""What every trainer does after a micro-batch: count optimizer steps, log, checkpoint, stop early when asked."""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from setok.config import TrainConfig
from setok.train.checkpoint import CheckpointManager

log = logging.getLogger("setok.train")


def resume(engine: Any, out: Path) -> int:
    """Restore the newest checkpoint under ``out/checkpoints`` into ``engine``; returns the step to start at."""
    ckpt = CheckpointManager(out / "checkpoints")
    start = int((ckpt.load(engine) or {"step": 0})["step"])
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
    """

    def __init__(
        self, *, engine: Any, cfg: TrainConfig, out: Path, start: int, accumulation: int, rank: int, desc: str,
        stop_after: int | None = None,
    ) -> None:
        self.engine, self.cfg, self.accumulation, self.stop_after = engine, cfg, accumulation, stop_after
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
                   **logs}
            self.log_file.write(json.dumps(row) + "\n")
            self.log_file.flush()
        if self.step % c.checkpoint_every == 0 or self.step == c.steps:
            self.ckpt.save(self.engine, self.step, {"step": self.step})
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
