"""The learning tier's run plan: every trainable stage of both families, in chain order, as the rules launch them.

Each stage is trained by the same command line its Snakemake rule runs (``python -m setok.train.<trainer> --stage
... --config <resolved config> --init <previous model.pt> --out <folder>``), on the CI fixtures with the step counts
of ``config/learn.yaml``. The two families are independent chains, so they run side by side.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from setok.stages import STAGES as STAGE_TABLE
from setok.stages import start_of, takes_stage_flag, trains

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


def _family_stages(family: str) -> list[Stage]:
    """The stages a variant of tokenizer kind ``family`` trains, in order, read from the stage table (setok.stages)."""
    names = [n for n in STAGE_TABLE if trains(n, tokenizer_kind=family)]
    return [
        Stage(f"{family}.{n}", family, STAGE_TABLE[n].trainer, n if takes_stage_flag(n) else None,
              STAGE_TABLE[n].folder,
              init=None if (i := start_of(n, tokenizer_kind=family)) is None else f"{family}.{i}",
              tokenizer=STAGE_TABLE[n].reads_tokenizer, train_key=STAGE_TABLE[n].config_key)
        for n in names
    ]


STAGES: tuple[Stage, ...] = tuple(s for family in FAMILY_VARIANT for s in _family_stages(family))
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
