""":func:`build_task`: the one place that reads a :class:`setok.config.BenchmarkConfig` into a task.

Config fields used per benchmark (paths relative to the working directory, ``options`` as the scorer's flags):

==============  =====================================  ==============================  ==============================
benchmark       annotations / questions                images                          inputs, options
==============  =====================================  ==============================  ==============================
flickr30k       Karpathy ``dataset_flickr30k.json``     ``flickr30k-images/``           options.split (default test)
vqav2, okvqa    annotations + questions JSON            COCO ``val2014/``               --
vizwiz          ``val.json``                            ``val/``                        --
gqa             questions ``testdev_balanced_...``      ``images/``                     --
pope            folder of ``coco_pope_<split>.json``    COCO ``val2014/``               --
mme             ``Your_Results/`` templates             ``MME_Benchmark_release_...``   options.subtasks
mmvet           ``mm-vet.json``                         ``images/``                     --
coco_fid        reference image folder (or .npz)        --                              captions_val2014.json
magicbrush      ``targets/`` folder                     ``images/`` (session folders)   edit_sessions.json
evr             ``targets/`` folder                     ``images/``                     test.json
ma5k            ``targets/`` folder                     ``images/``                     annotations/test_sess_1.json
refcoco+, -g    release folder (refs + instances)       COCO ``train2014/``             options.split, split_by
reasonseg       split folder (``val/``)                 (the split folder)              --
seed            ``SEED-Bench.json``                     ``SEED-Bench-image/``           options.data_type: image
mmbench         ``MMBench_DEV_EN.tsv`` (base64 images)  --                              --
mmmu            JSON list export (no image columns)     ``MMMU/`` parquet snapshot      --
mjhq_fid        ``meta_data.json`` (+ reference imgs)   --                              meta_data.json (prompts)
genai_bench     ``genai_image.json`` (+ skills beside)  --                              options.grader, grader_file
==============  =====================================  ==============================  ==============================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from evaluation.tasks.base import BenchmarkTask, require
from evaluation.tasks.caption import CaptionTask
from evaluation.tasks.editing import MagicBrushTask, PairListTask, evr_instruction, ma5k_instruction
from evaluation.tasks.generation import CocoGenerationTask
from evaluation.tasks.mme import MmeTask
from evaluation.tasks.mmvet import MmvetTask
from evaluation.tasks.multiple_choice import MmbenchTask, MmmuTask, SeedTask
from evaluation.tasks.pope import PopeTask
from evaluation.tasks.segmentation import ReasonSegTask, ReferTask
from evaluation.tasks.text_to_image import GenAIBenchTask, MjhqTask
from evaluation.tasks.vqa import GqaTask, VizWizTask, VqaTask
from setok.config import BenchmarkConfig
from setok.io import DataError

Builder = Callable[[str, BenchmarkConfig], BenchmarkTask]


def _get(name: str, cfg: BenchmarkConfig, field: str, *, folder: bool = False) -> Path:
    """The configured path ``cfg.<field>``, which must exist."""
    return require(getattr(cfg, field), f"benchmarks.{name}.{field}", folder=folder)


def _caption(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return CaptionTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                       split=cfg.options.get("split", "test"), limit=cfg.limit)


def _vqa(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return VqaTask(name, questions=_get(name, cfg, "questions"),
                   annotations=None if cfg.annotations is None else _get(name, cfg, "annotations"),
                   images=_get(name, cfg, "images", folder=True), limit=cfg.limit)


def _vizwiz(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return VizWizTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                      limit=cfg.limit)


def _gqa(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return GqaTask(name, questions=_get(name, cfg, "questions"), images=_get(name, cfg, "images", folder=True),
                   limit=cfg.limit)


def _pope(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return PopeTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                    limit=cfg.limit)


def _mme(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return MmeTask(name, templates=_get(name, cfg, "annotations", folder=True),
                   images=_get(name, cfg, "images", folder=True), subtasks=cfg.options.get("subtasks"),
                   limit=cfg.limit)


def _mmvet(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return MmvetTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                     limit=cfg.limit)


def _coco_fid(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return CocoGenerationTask(name, captions=_get(name, cfg, "inputs"), references=_get(name, cfg, "annotations"),
                              limit=cfg.limit)


def _editing(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    paths = {"targets": _get(name, cfg, "annotations", folder=True), "inputs": _get(name, cfg, "inputs"),
             "images": _get(name, cfg, "images", folder=True), "limit": cfg.limit}
    if name == "magicbrush":
        return MagicBrushTask(name, **paths)
    if name == "evr":
        return PairListTask(name, input_key="img0", output_key="img1", instruction=evr_instruction, **paths)
    return PairListTask(name, input_key="input", output_key="output", instruction=ma5k_instruction, **paths)


def _refer(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    kind = ReasonSegTask if name == "reasonseg" else ReferTask
    images = None if cfg.images is None and name == "reasonseg" else _get(name, cfg, "images", folder=True)
    return kind(name, annotations=_get(name, cfg, "annotations", folder=True), images=images,
                split=cfg.options.get("split"), split_by=cfg.options.get("split_by"), limit=cfg.limit)


def _seed(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    if cfg.options.get("data_type") != "image":  # only image questions are asked: the scorer must skip the videos
        raise DataError(f"benchmarks.{name}.options.data_type: must be 'image' (the scorer's --data-type; only "
                        f"SEED-Bench-1 image questions are asked), got {cfg.options.get('data_type')!r}")
    return SeedTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                    limit=cfg.limit)


def _mmbench(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return MmbenchTask(name, annotations=_get(name, cfg, "annotations"), limit=cfg.limit)


def _mmmu(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return MmmuTask(name, annotations=_get(name, cfg, "annotations"), images=_get(name, cfg, "images", folder=True),
                    limit=cfg.limit)


def _mjhq(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    meta = _get(name, cfg, "annotations")
    prompts = meta if cfg.inputs is None else _get(name, cfg, "inputs")
    return MjhqTask(name, prompts=prompts, meta=meta, limit=cfg.limit)


def _genai_bench(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    return GenAIBenchTask(name, annotations=_get(name, cfg, "annotations"), limit=cfg.limit)


BUILDERS: dict[str, Builder] = {
    "flickr30k": _caption, "vqav2": _vqa, "okvqa": _vqa, "vizwiz": _vizwiz, "gqa": _gqa, "pope": _pope,
    "mme": _mme, "mmvet": _mmvet, "coco_fid": _coco_fid, "magicbrush": _editing, "evr": _editing, "ma5k": _editing,
    "refcoco+": _refer, "refcocog": _refer, "reasonseg": _refer,
    "seed": _seed, "mmbench": _mmbench, "mmmu": _mmmu, "mjhq_fid": _mjhq, "genai_bench": _genai_bench,
}


def build_task(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    """The inference task of benchmark ``name`` from its config entry (``config.benchmarks[name]``).

    Args:
        name: Benchmark name (one of :data:`BUILDERS`).
        cfg: Its :class:`~setok.config.BenchmarkConfig` (official files, images, inputs, limit, options).

    Returns:
        A :class:`~evaluation.tasks.base.Task` (every one also has ``references(out)``, see
        :class:`~evaluation.tasks.base.BenchmarkTask`).

    Raises:
        DataError: Unknown name (the known ones listed), or a needed path unset or missing (named).
    """
    if name not in BUILDERS:
        raise DataError(f"unknown benchmark {name!r} for inference; known: {', '.join(sorted(BUILDERS))}")
    return BUILDERS[name](name, cfg)
