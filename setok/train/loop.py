"""The training loop every stage shares: set-up (process group, folder, seed), engine and resume, the micro-batch
loop (count optimizer steps, log, checkpoint, stop early when asked) and the final ``model.pt``.

    run = start_run(cfg, "stage1", out)              # every rank: process group, config.yaml, the stage's seed
    engine, start = run.engine(module)                # DeepSpeed engine, resumed from out/checkpoints
    loop = run.step_loop(engine, start, accumulation=sampler.accumulation, desc="stage1")
    if not run_steps(engine, loop, loader, step):    # step(batch) -> (loss, logs); False: stopped early
        return None
    return save_model(engine, run, family=..., step=loop.step, weights=lambda: engine.module.state_dict())
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from setok.config import Config, TrainConfig, config_sha, dump, to_dict
from setok.io import DataError, write_text
from setok.model_file import write_model
from setok.stages import STAGES
from setok.train.checkpoint import CheckpointManager
from setok.train.distributed import device, init_distributed
from setok.train.engine import build_engine, gathered

log = logging.getLogger("setok.train")


@dataclasses.dataclass
class Run:
    """One training stage's run on this process: its config, schedule (``train``), output folder and place in the
    process group."""

    cfg: Config
    stage: str
    out: Path
    train: TrainConfig
    rank: int
    world: int
    device: torch.device
    stop_after: int | None = None

    @property
    def config_sha(self) -> str:
        return config_sha(self.cfg)

    def engine(self, module: torch.nn.Module) -> tuple[Any, int]:
        """``module`` in a DeepSpeed engine with the stage's optimizer and schedule, resumed from the newest
        checkpoint of this config; returns ``(engine, the step to start at)``."""
        engine = build_engine(module, self.train, world=self.world)
        return engine, resume(engine, self.out, config_sha=self.config_sha)

    def step_loop(self, engine: Any, start: int, *, accumulation: int, desc: str) -> StepLoop:
        """The :class:`StepLoop` of this run (progress bar ``<desc>[<variant>]``)."""
        return StepLoop(engine=engine, cfg=self.train, out=self.out, start=start, accumulation=accumulation,
                        rank=self.rank, desc=f"{desc}[{self.cfg.name}]", stop_after=self.stop_after,
                        config_sha=self.config_sha)


def start_run(cfg: Config, stage: str, out: Path, *, stop_after: int | None = None) -> Run:
    """What every stage does first, on every rank: join the process group, create ``out`` and write its
    ``config.yaml`` (rank 0), and seed torch with the stage's ``seed`` (so model construction draws the same
    weights on every rank and every rerun)."""
    rank, world = init_distributed()
    dev = device()
    train = getattr(cfg, STAGES[stage].config_key)
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        write_text(out / "config.yaml", dump(cfg))
    torch.manual_seed(train.seed)
    return Run(cfg=cfg, stage=stage, out=out, train=train, rank=rank, world=world, device=dev,
               stop_after=stop_after)


def run_steps(
    engine: Any, loop: StepLoop, batches: Iterable[Any],
    step: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    postfix: Callable[[dict[str, float]], dict[str, str]] | None = None,
) -> bool:
    """Train on every micro-batch of ``batches``: ``step(batch)`` gives ``(loss, logs)``, then the backward pass,
    the optimizer step and :meth:`StepLoop.advance` (``postfix(logs)``: extra progress-bar fields). Returns False
    when the run stopped early (``--stop-after``), True when every step is done."""
    for batch in batches:
        loss, logs = step(batch)
        engine.backward(loss)
        engine.step()
        if loop.advance(logs, **(postfix(logs) if postfix else {})):
            return False
    loop.close()
    return True


def save_model(
    engine: Any, run: Run, *, family: str, step: int, weights: Callable[[], dict[str, torch.Tensor]],
    extras: Callable[[], dict[str, Any]] | None = None,
) -> Path:
    """Write the run's ``out/model.pt`` (rank 0, atomically, last: its presence means the stage is done).

    Every rank calls this: under ZeRO-3 the engine's weights are gathered first (:func:`gathered`), and
    ``weights`` and ``extras`` (state dicts to store beside them) are called inside that gather, on rank 0 only.
    """
    final = run.out / "model.pt"
    with gathered(engine):  # every rank enters (ZeRO-3 gathers the partitioned weights)
        if run.rank == 0:
            write_model(final, family=family, stage=run.stage, weights=weights(), config=to_dict(run.cfg),
                        config_sha=run.config_sha, step=step, **(extras() if extras else {}))
            log.info("wrote %s after %d steps", final, step)
    return final


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
