"""The learning tier's run plan: every trainable stage of both families, in chain order, as the rules launch them.

Each stage is trained by the same command line its Snakemake rule runs (``python -m setok.train.<trainer> --stage
... --config <resolved config> --init <previous model.pt> --out <folder>``), on the CI fixtures with the step counts
of ``config/learn.yaml``. The two families are independent chains, so they run side by side.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

# The variant that stands for each family (the smoke run's: SeTok's default recipe, SemHiTok's unified MLLM).
FAMILY_VARIANT = {"setok": "hard_cluster", "semhitok": "semhitok"}


@dataclass(frozen=True)
class Stage:
    """One trainable stage of the learning tier.

    Attributes:
        name: the stage's name in the report (``setok.tokenizer``, ``semhitok.pixel_codebook``, ...).
        family: ``setok`` or ``semhitok``.
        module: the trainer module (``setok.train.tokenizer`` / ``semhitok`` / ``mllm``).
        stage: the trainer's ``--stage`` (None for the SeTok tokenizer, whose trainer has one stage).
        folder: output folder under the family's run folder (where the rules write it under ``results/<v>/``).
        init: the stage whose ``model.pt`` it starts from (``--init``), if any.
        tokenizer: whether it reads the family's trained tokenizer (``--tokenizer``).
        train_key: the config section of its schedule (``train_<x>``).
    """

    name: str
    family: str
    module: str
    stage: str | None
    folder: str
    init: str | None = None
    tokenizer: bool = False
    train_key: str = ""

    @property
    def variant(self) -> str:
        return FAMILY_VARIANT[self.family]


def _semhitok(stage: str, folder: str, init: str | None) -> Stage:
    return Stage(f"semhitok.{stage}", "semhitok", "setok.train.semhitok", stage, folder, init,
                 train_key=f"train_{stage}")


def _mllm(family: str, stage: str, folder: str, init: str | None) -> Stage:
    return Stage(f"{family}.{stage}", family, "setok.train.mllm", stage, folder, init, tokenizer=True,
                 train_key=f"train_{stage}")


STAGES: tuple[Stage, ...] = (
    Stage("setok.tokenizer", "setok", "setok.train.tokenizer", None, "tokenizer", train_key="train_tokenizer"),
    _mllm("setok", "stage1", "stage1", None),
    _mllm("setok", "mask_decoder", "stage1/mask_decoder", "setok.stage1"),
    _mllm("setok", "stage2", "stage2", "setok.mask_decoder"),
    _semhitok("semantic_codebook", "semantic_codebook", None),
    _semhitok("pixel_codebook", "pixel_codebook", "semhitok.semantic_codebook"),
    _semhitok("pixel_finetune", "pixel_finetune", "semhitok.pixel_codebook"),
    _semhitok("pixel_decoder", "tokenizer", "semhitok.pixel_finetune"),
    _mllm("semhitok", "stage1", "stage1", None),
    _mllm("semhitok", "stage2", "stage2", "semhitok.stage1"),
)
BY_NAME = {s.name: s for s in STAGES}


def run_folder(root: Path, family: str) -> Path:
    """``<root>/<variant>``: the family's run folder (its resolved ``config.yaml`` and one folder per stage)."""
    return root / FAMILY_VARIANT[family]


def model_path(root: Path, stage: Stage) -> Path:
    """The ``model.pt`` a stage writes."""
    return run_folder(root, stage.family) / stage.folder / "model.pt"


def tokenizer_path(root: Path, family: str) -> Path:
    """The family's trained tokenizer (``tokenizer/model.pt``, as the rules name it)."""
    return run_folder(root, family) / "tokenizer" / "model.pt"


def command(root: Path, stage: Stage) -> list[str]:
    """The trainer's command line, as the stage's rule writes it (without the ``setok.launch`` wrapper: the learning
    tier runs one process per stage on the CPU)."""
    folder = run_folder(root, stage.family)
    argv = [sys.executable, "-m", stage.module]
    if stage.stage is not None:
        argv += ["--stage", stage.stage]
    argv += ["--config", str(folder / "config.yaml")]
    if stage.tokenizer:
        argv += ["--tokenizer", str(tokenizer_path(root, stage.family))]
    if stage.init is not None:
        argv += ["--init", str(model_path(root, BY_NAME[stage.init]))]
    return argv + ["--out", str(folder / stage.folder)]


def chain(family: str) -> list[Stage]:
    """The family's stages in training order."""
    return [s for s in STAGES if s.family == family]
