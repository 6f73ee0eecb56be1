"""The training stages, in order: what each trains from, where it writes, and the cluster it needs.

One table for the trainers (their ``--stage`` choices and config sections), the config checks and the workflow's
training rules. Light on purpose (no torch): ``workflow/rules`` and the config loader import it.

    tokenizer                                  SeTok (Sec. 2.1)                      -> results/<v>/tokenizer
    semantic_codebook -> pixel_codebook -> pixel_finetune -> pixel_decoder
                                               SemHiTok (its Sec. 4.1 stage table)   -> results/<v>/tokenizer
    stage1 -> mask_decoder -> stage2           SeTokIM / the unified MLLM (Sec. 2.2) -> results/<v>/stage2
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """One training job's allocation: ``gpu`` in total over ``nodes`` nodes, ``mem_mb`` and ``cpus_per_task`` per
    node, ``runtime`` in minutes (sbatch -t)."""

    nodes: int
    gpu: int
    mem_mb: int
    runtime: int
    cpus_per_task: int = 72  # 8 ranks x (num_workers 8 + 1)
    threads: int = 2  # the rule's threads (the launcher's own process)


@dataclass(frozen=True)
class Stage:
    """One training stage.

    Args:
        name: the stage (``--stage``; the log is ``logs/<variant>/train_<name>.log``).
        family: the tokenizer kind whose variants run it (``setok``, ``semhitok``), or ``mllm`` for every variant.
        trainer: the module that trains it (``python -m <trainer>``).
        init: the stage whose ``model.pt`` it starts from (None: from scratch).
        folder: its output folder under ``results/<variant>`` (``model.pt``, checkpoints, logs).
        reads_tokenizer: whether it reads the trained tokenizer (``--tokenizer``).
        path_dependent: whether its micro-batches can run different modules on different ranks (SeTokIM / the
            unified MLLM: text-only micro-batches skip the image heads; SeTok: a micro-batch without labelled images
            skips the contrastive branch). ZeRO-2 then lays its gradient buckets out differently per rank and reduces
            a wrong gradient (tests/train/test_two_ranks.py), ZeRO-3 waits for a gather the idle rank never enters;
            such a stage needs ZeRO-0/1 (the config checks say so).
        cluster: the job's allocation under profiles/slurm (the paper's 64 x H100, App. D.3).
        local: the job's allocation without a profile (the rule's own resources; the CI plan).
    """

    name: str
    family: str
    trainer: str
    init: str | None
    folder: str
    reads_tokenizer: bool
    path_dependent: bool
    cluster: Resources
    local: Resources

    @property
    def config_key(self) -> str:
        """Its config section: ``train_<name>``."""
        return f"train_{self.name}"


# Sizes: config/paper.yaml's batch sizes are written for 64 GPUs ("All training is conducted on 64 x H100",
# App. D.3). Stage I and Stage II: 8 nodes x 8 GPUs (29.7 h and 0.4 h planned, docs/scaling.md; a longer run resumes
# on retry). The tokenizer (11 h on 8 GPUs), the SemHiTok stages ("256 = 32 x 8 GPUs") and the mask-decoder phase
# (0.2 h of bf16 compute on 8 GPUs, no LLM held; 256 = 4 x 8 x 8 accumulation) on one 8-GPU node.
ONE_NODE = Resources(nodes=1, gpu=8, mem_mb=256000, runtime=2880)
EIGHT_NODES = Resources(nodes=8, gpu=64, mem_mb=512000, runtime=2880)

_TOKENIZER = dict(trainer="setok.train.semhitok", reads_tokenizer=False, path_dependent=False, cluster=ONE_NODE,
                  local=ONE_NODE)
_MLLM = dict(family="mllm", trainer="setok.train.mllm", reads_tokenizer=True)

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("tokenizer", "setok", "setok.train.tokenizer", None, "tokenizer", reads_tokenizer=False,
          path_dependent=True, cluster=ONE_NODE, local=ONE_NODE),
    Stage("semantic_codebook", "semhitok", init=None, folder="semantic_codebook", **_TOKENIZER),
    Stage("pixel_codebook", "semhitok", init="semantic_codebook", folder="pixel_codebook", **_TOKENIZER),
    Stage("pixel_finetune", "semhitok", init="pixel_codebook", folder="pixel_finetune", **_TOKENIZER),
    Stage("pixel_decoder", "semhitok", init="pixel_finetune", folder="tokenizer", **_TOKENIZER),
    Stage("stage1", init=None, folder="stage1", path_dependent=True, **_MLLM,
          cluster=EIGHT_NODES, local=Resources(nodes=1, gpu=8, mem_mb=512000, runtime=4320)),
    Stage("mask_decoder", init="stage1", folder="stage1/mask_decoder", path_dependent=False, **_MLLM,
          cluster=Resources(nodes=1, gpu=8, mem_mb=256000, runtime=240),
          local=Resources(nodes=1, gpu=8, mem_mb=256000, runtime=240)),
    Stage("stage2", init="mask_decoder", folder="stage2", path_dependent=True, **_MLLM,
          cluster=Resources(nodes=8, gpu=64, mem_mb=512000, runtime=480),
          local=Resources(nodes=1, gpu=8, mem_mb=512000, runtime=2880)),
)}

SEMHITOK_STAGES = tuple(s for s, v in STAGES.items() if v.family == "semhitok")  # in training order
MLLM_STAGES = tuple(s for s, v in STAGES.items() if v.family == "mllm")
PATH_DEPENDENT_STAGES = tuple(v.config_key for v in STAGES.values() if v.path_dependent)


def tokenizer_stages(kind: str) -> tuple[str, ...]:
    """The stages that train a tokenizer of ``kind`` (``setok``, ``semhitok``), in order."""
    return tuple(s for s, v in STAGES.items() if v.family == kind)


def trains(name: str, *, tokenizer_kind: str, connector_baseline: bool = False) -> bool:
    """Whether a variant trains stage ``name``: its tokenizer kind's stages and the MLLM stages, except the
    mask-decoder phase for connector baselines (they read images only) and SemHiTok's unified MLLM (no mask decoder)."""
    family = STAGES[name].family
    if family != "mllm":
        return family == tokenizer_kind
    return not (name == "mask_decoder" and (connector_baseline or tokenizer_kind == "semhitok"))


def start_of(name: str, *, tokenizer_kind: str, connector_baseline: bool = False) -> str | None:
    """The stage whose ``model.pt`` stage ``name`` starts from for such a variant: its ``init``, passing over stages
    the variant does not train (SemHiTok's Stage II starts from Stage I)."""
    init = STAGES[name].init
    while init is not None and not trains(init, tokenizer_kind=tokenizer_kind, connector_baseline=connector_baseline):
        init = STAGES[init].init
    return init


def takes_stage_flag(name: str) -> bool:
    """Whether the trainer of ``name`` trains several stages and so needs ``--stage``."""
    return sum(s.trainer == STAGES[name].trainer for s in STAGES.values()) > 1
