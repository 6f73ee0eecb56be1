"""Atomic, resumable DeepSpeed checkpoints: ``<root>/step00000123/`` + a ``latest`` file naming the newest.

A checkpoint is written under a temporary tag and renamed into place, then ``latest`` is replaced atomically, so a
job killed at any moment leaves either the previous checkpoint or the new one, never a half-written one.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from setok.io import write_text


class CheckpointManager:
    """Save and restore a DeepSpeed engine with client state (step, ...), keeping the ``keep`` newest."""

    def __init__(self, root: str | Path, *, keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = keep

    @staticmethod
    def tag(step: int) -> str:
        return f"step{step:08d}"

    def latest(self) -> str | None:
        f = self.root / "latest"
        if not f.is_file():
            return None
        tag = f.read_text().strip()
        return tag if (self.root / tag).is_dir() else None

    def save(self, engine: Any, step: int, client_state: dict[str, Any]) -> None:
        import torch.distributed as dist

        tag, tmp = self.tag(step), f".tmp-{self.tag(step)}"
        rank0 = not dist.is_initialized() or dist.get_rank() == 0
        if rank0:
            shutil.rmtree(self.root / tmp, ignore_errors=True)
        engine.save_checkpoint(str(self.root), tag=tmp, client_state=client_state, save_latest=False)
        if dist.is_initialized():
            dist.barrier()
        if rank0:
            if client_state.get("config_sha"):  # read before loading: a checkpoint of another config is not resumed
                write_text(self.root / tmp / "config_sha", str(client_state["config_sha"]) + "\n")
            shutil.rmtree(self.root / tag, ignore_errors=True)
            (self.root / tmp).rename(self.root / tag)
            write_text(self.root / "latest", tag + "\n")
            self._prune()
        if dist.is_initialized():
            dist.barrier()

    def config_sha(self) -> str | None:
        """The config hash the newest checkpoint was written under (None: no checkpoint, or none recorded)."""
        tag = self.latest()
        f = None if tag is None else self.root / tag / "config_sha"
        return f.read_text().strip() if f is not None and f.is_file() else None

    def set_aside(self) -> Path:
        """Move every checkpoint to ``<root>.stale-<n>`` (kept, not deleted) so that training starts afresh."""
        n = 0
        while (target := self.root.with_name(f"{self.root.name}.stale-{n}")).exists():
            n += 1
        self.root.rename(target)
        return target

    def load(self, engine: Any) -> dict[str, Any] | None:
        """Restore the newest checkpoint into ``engine``; returns its client state, or None when there is none."""
        tag = self.latest()
        if tag is None:
            return None
        _, client_state = engine.load_checkpoint(str(self.root), tag=tag)
        return client_state

    def _prune(self) -> None:
        tags = sorted(p for p in self.root.glob("step*") if p.is_dir())
        for old in tags[: max(0, len(tags) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)
