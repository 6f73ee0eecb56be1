"""The ``model.pt`` a training stage writes last (its presence means the stage is done), and its one reader.

Every file is a mapping ``{"family", "stage", "weights", "config", "config_sha", "step", **extras}``:

    family      ``setok`` (SeTok), ``semhitok`` (a SemHiTok stage), ``setokim`` (SeTokIM) or ``semhitokim`` (the
                unified MLLM on SemHiTok codes)
    stage       the training stage that wrote it (setok.stages)
    weights     the trained module's state dict (SemHiTok: without its frozen SigLIP; MLLMs: the LLM side)
    extras      per family: SeTok ``discriminator`` (``loss.objective: vqgan``); SemHiTok ``discriminator``,
                ``enhanced``; MLLMs ``mask_decoder``, ``lora``, ``token_dim``, ``image_dim``, ``tokenizer_model``
"""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any

from setok.io import DataError

FAMILIES = ("setok", "semhitok", "setokim", "semhitokim")
# The MLLM family of each tokenizer kind (``tokenizer.kind``) and back.
MLLM_FAMILY = {"setok": "setokim", "semhitok": "semhitokim"}
_KEYS = ("family", "stage", "weights", "config", "config_sha", "step")


@dataclasses.dataclass
class ModelFile:
    """A read ``model.pt``: ``weights`` maps names to tensors, ``config`` is the resolved config as a mapping."""

    path: Path
    family: str
    stage: str
    weights: dict[str, Any]
    config: dict[str, Any]
    config_sha: str
    step: int
    extras: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        """An extra (``mask_decoder``, ``lora``, ``enhanced`` ...)."""
        return self.extras[key]


def write_model(
    path: str | Path, *, family: str, stage: str, weights: dict[str, Any], config: dict[str, Any], config_sha: str,
    step: int, **extras: Any,
) -> Path:
    """Write a stage's ``model.pt`` atomically (a reader never sees half a file); returns its path."""
    from setok.io import torch_save

    if family not in FAMILIES:
        raise ValueError(f"model family {family!r} (one of {', '.join(FAMILIES)})")
    path = Path(path)
    torch_save({"family": family, "stage": stage, "weights": weights, "config": config, "config_sha": config_sha,
                "step": step, **extras}, path)
    return path


def read_model(
    path: str | Path, *, family: str | tuple[str, ...], stage: str | tuple[str, ...] | None = None,
    mmap: bool = False,
) -> ModelFile:
    """Read ``path`` on the CPU (weights only) and check it holds a model of ``family`` (and ``stage``).

    A missing or unreadable file, or one of another family or stage, is one DataError naming the file, what it holds
    and what was expected. ``mmap`` maps the tensors from the file instead of reading them (pages shared by every
    process on the node; for weights that are only passed on).
    """
    import torch

    path = Path(path)
    families = (family,) if isinstance(family, str) else family
    stages = (stage,) if isinstance(stage, str) else stage
    expected = " or ".join(families)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (train the previous stage first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise DataError(f"{path}: not a model file ({e.__class__.__name__}: {e})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _KEYS):
        held = f"a {type(ckpt).__name__}" if not isinstance(ckpt, dict) else \
            f"a mapping without {', '.join(k for k in _KEYS if k not in ckpt)}"
        raise DataError(f"{path}: holds {held}, expected a {expected} model file")
    if ckpt["family"] not in families:
        raise DataError(f"{path}: a {ckpt['family']} model file, expected {expected}")
    if stages is not None and ckpt["stage"] not in stages:
        raise DataError(f"{path}: a {ckpt['family']} model file of the {ckpt['stage']} stage, expected the "
                        f"{' or '.join(stages)} stage")
    return ModelFile(path=path, **{k: ckpt[k] for k in _KEYS},
                     extras={k: v for k, v in ckpt.items() if k not in _KEYS})
