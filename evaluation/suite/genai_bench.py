"""GenAI-Bench (text-to-image): VQAScore per prompt, averaged overall and per skill (t2v_metrics genai_bench)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.graders import (
    IMAGE_TEXT,
    Grader,
    GradeRequest,
    GraderSettings,
    check_scores,
    grader_provenance,
    group_means_with_ci95,
    register_grader,
    resolve_grader,
)
from evaluation.readers import preview
from evaluation.readers.editing import IMAGE_EXTENSIONS
from evaluation.registry import Benchmark, Metric, PathLike, ScoreResult, register
from setok.io import DataError, read_json

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

SKILLS = (
    "attribute",
    "scene",
    "spatial relation",
    "action relation",
    "part relation",
    "counting",
    "comparison",
    "differentiation",
    "negation",
    "universal",
)
GRADER_ENV = "SETOK_GENAI_BENCH_GRADER"
DEFAULT_SCORER = "clip-flant5-xxl"
HOW_TO = (
    "genai_bench needs a grader (VQAScore with CLIP-FlanT5 in the official flow): pass --grader vqascore "
    f"(needs the t2v_metrics package; --grader-model, default {DEFAULT_SCORER}) or --grader precomputed "
    f"--grader-file SCORES.json, or set ${GRADER_ENV}"
)


class VQAScoreGrader:
    """VQAScore of t2v_metrics (``P("Yes" | image, 'Does this figure show "{text}"? ...')``), GenAI-Bench's scorer."""

    kinds = frozenset({IMAGE_TEXT})
    judges_predictions = True

    def __init__(self, model: str = DEFAULT_SCORER, *, device: str | None = None, batch_size: int = 16) -> None:
        """Load the scorer (downloads its weights on first use).

        Raises:
            DataError: t2v_metrics is not installed or the model cannot be loaded.
        """
        try:
            import t2v_metrics
        except ImportError:
            raise DataError(
                "t2v_metrics: not installed; the vqascore grader needs it (pip install t2v-metrics), "
                "or score precomputed VQAScores with --grader precomputed --grader-file"
            ) from None
        from evaluation.features.embedders import default_device

        try:
            self.scorer = t2v_metrics.VQAScore(model=model, device=default_device(device))
        except Exception as e:  # download / CUDA / config errors from t2v_metrics (offline cache miss: fetch_weights)
            from evaluation.features.embedders import _load_error

            raise _load_error(f"t2v_metrics:{model}", "the VQAScore model", e) from None
        self.name = f"vqascore:{model}"
        self.model = model
        self.batch_size = batch_size

    def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
        """Per request: VQAScore of its image and text (genai_bench/evaluate.py: ``batch_forward``, image mean)."""
        dataset = [{"images": [str(r.image)], "texts": [r.prompt]} for r in requests]
        scores = self.scorer.batch_forward(dataset=dataset, batch_size=self.batch_size)  # (n, images, texts)
        return [float(s) for s in np.asarray(scores.cpu()).reshape(len(requests), -1).mean(axis=1)]


@register_grader("vqascore", kinds=(IMAGE_TEXT,))
def _vqascore(settings: GraderSettings) -> Grader:
    return VQAScoreGrader(settings.model or DEFAULT_SCORER, device=settings.device, batch_size=settings.batch_size)


def metric_name(tag: str) -> str:
    """Metric key of a skill tag: ``"spatial relation"`` -> ``"spatial_relation"``."""
    return tag.strip().replace(" ", "_")


def read_prompts(path: Path) -> dict[str, str]:
    """``genai_image.json`` (``{"00000": {"prompt": ...}, ...}``) as id -> prompt, in file order."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected genai_image.json, a non-empty object of prompt id -> entry")
    bad = [k for k, v in data.items() if not (isinstance(v, dict) and isinstance(v.get("prompt"), str))]
    if bad:
        raise DataError(f"{path}: entries lack a 'prompt' string: {preview(bad)}")
    return {k: v["prompt"] for k, v in data.items()}


def read_skills(path: Path, ids: list[str]) -> dict[str, list[str]]:
    """``genai_skills.json`` (``{"attribute": [0, 5, ...], ..., "basic": [...], "advanced": [...]}``) as tag -> ids.

    Integer indices name prompts as ``f"{index:05d}"`` (genai_bench/evaluate.py's ``show_performance_per_skill``).

    Raises:
        DataError: Malformed file or indices that are not prompts of the references.
    """
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected genai_skills.json, a non-empty object of skill -> prompt indices")
    known = set(ids)
    out: dict[str, list[str]] = {}
    for tag, members in data.items():
        if not isinstance(members, list):
            raise DataError(f"{path}: skill {tag!r} is not a list of prompt indices")
        keys = [f"{m:05d}" if isinstance(m, int) and not isinstance(m, bool) else str(m) for m in members]
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise DataError(
                f"{path}: skill {tag!r} lists {len(unknown)} prompts not in the references: {preview(unknown)}"
            )
        out[tag] = list(dict.fromkeys(keys))
    return out


def read_generated(folder: Path, ids: list[str]) -> dict[str, Path]:
    """One generated image per prompt id, named ``<id>.<ext>`` (the official generate.py writes ``<id>.jpeg``).

    Raises:
        DataError: Not a folder, ids without an image, several images for one id, or images of unknown ids.
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            found.setdefault(p.stem, []).append(p)
    missing = [i for i in ids if i not in found]
    if missing:
        raise DataError(f"{folder}: missing images for {len(missing)} of {len(ids)} prompts: {preview(missing)}")
    extra = [k for k in found if k not in set(ids)]
    if extra:
        raise DataError(f"{folder}: {len(extra)} images have no prompt in the references: {preview(extra)}")
    dup = [k for k, v in found.items() if len(v) > 1]
    if dup:
        raise DataError(f"{folder}: several images for prompts {preview(dup)}")
    return {i: found[i][0] for i in ids}


@register("genai_bench")
class GenAIBench(Benchmark):
    """GenAI-Bench (Li et al., 2024): VQAScore of generated images, overall, basic, advanced and per skill."""

    help = f"""GenAI-Bench text-to-image: VQAScore (0-1) overall, basic, advanced and per skill.

references (--annotations): the official genai_image.json {{"00000": {{"prompt": "...", ...}}, ...}}
skills (--skills, default: genai_skills.json beside --annotations): {{"<skill>": [prompt indices], ...}} with the
  10 skills (attribute, scene, spatial relation, action relation, part relation, counting, comparison,
  differentiation, negation, universal) plus "basic" and "advanced"; index i names prompt f"{{i:05d}}".
predictions (--predictions): a folder with one generated image per prompt, <prompt id>.<ext> (the official
  generate.py writes 00000.jpeg, ...). Every prompt needs exactly one image; missing and extra images are errors.

Scoring (t2v_metrics genai_bench/evaluate.py): each prompt's image gets a VQAScore in [0, 1] from the grader;
<skill> = mean over the prompts listed under that skill (spaces become underscores: spatial_relation,
  action_relation, part_relation);
basic / advanced = mean over the prompts listed under "basic" / "advanced"; vqascore (the official "overall") = mean
over the union of all listed prompts, so a prompt listed under no skill is graded but not averaged.
Values are raw (SemHiTok Table 8 reports basic and advanced, e.g. 0.83 / 0.64).
A grader is required (--grader NAME or ${GRADER_ENV}); without one the command fails with exit status 2:
  --grader vqascore: t2v_metrics VQAScore, --grader-model (default {DEFAULT_SCORER}), --device.
  --grader precomputed --grader-file F: JSON {{"00000": score, ...}} or JSONL {{"id", "score"}}.
Per-sample rows: {{"id", "score", "skills": [...], "in_overall": bool, "grader"}}.
The result's provenance names the grader; precomputed scores are marked in every report (not judged from these
images), and so is a scorer other than {DEFAULT_SCORER}.
ci95: percentile bootstrap over prompts (default 1000 resamples), every group mean recomputed per resample."""
    metrics = (
        Metric("vqascore", higher_is_better=True, help="overall VQAScore (union of skill prompts), 0-1"),
        Metric("basic", higher_is_better=True, help="basic-skill prompts, VQAScore 0-1"),
        Metric("advanced", higher_is_better=True, help="advanced-skill prompts, VQAScore 0-1"),
    ) + tuple(Metric(metric_name(s), higher_is_better=True, help=f"{s} prompts, VQAScore 0-1") for s in SKILLS)

    missing_annotations = "genai_image.json"

    headline = "vqascore"
    output = "image"
    scoring_needs_gpu = True  # the VQAScore model (--grader vqascore)

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``genai_image.json`` (annotations, ``genai_skills.json`` beside it); options.grader, grader_file."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.text_to_image import GenAIBenchTask

        return GenAIBenchTask(cls.name, annotations=configured(cls.name, cfg, "annotations"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``genai_image.json`` prompts and ``genai_skills.json`` beside it."""
        expected = "genai_image.json {'00000': {'prompt', ...}} with genai_skills.json beside it"
        path = lay.path(spec, "annotations")
        lay.records(path, list(lay.json(path, expected, dict).values()), ("prompt",), expected, "entries")
        skills = lay.optional(spec, "skills") or path.parent / "genai_skills.json"
        lay.json(skills, expected, dict)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--skills`` and the grader options."""
        parser.add_argument("--skills", default=None, help="genai_skills.json (default: beside --annotations)")
        parser.add_argument("--grader", default=None, help=f"vqascore or precomputed (default: ${GRADER_ENV})")
        parser.add_argument("--grader-model", default=DEFAULT_SCORER, help="VQAScore model of t2v_metrics")
        parser.add_argument("--grader-file", default=None, help="precomputed scores (with --grader precomputed)")
        parser.add_argument("--device", default=None, help="torch device of the VQAScore model")
        parser.add_argument("--batch-size", type=int, default=16, help="images per VQAScore forward pass")

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, skills: PathLike | None = None,
        grader: Grader | str | None = None, grader_model: str | None = DEFAULT_SCORER, grader_file: str | None = None,
        device: str | None = None, batch_size: int = 16, **opts: Any
    ) -> ScoreResult:
        annotations = Path(annotations)
        prompts = read_prompts(annotations)
        ids = list(prompts)
        tags = read_skills(Path(skills) if skills else annotations.parent / "genai_skills.json", ids)
        images = read_generated(Path(predictions), ids)
        settings = GraderSettings(model=grader_model, file=grader_file, device=device, batch_size=batch_size)
        scorer = resolve_grader(grader, env=GRADER_ENV, settings=settings, kind=IMAGE_TEXT, how_to=HOW_TO)
        requests = [GradeRequest(id=i, prompt=prompts[i], image=images[i]) for i in ids]
        scores = check_scores(scorer, ids, scorer.grade(requests))
        position = {i: j for j, i in enumerate(ids)}
        member = {}
        for tag, keys in tags.items():
            mask = np.zeros(len(ids), dtype=bool)
            mask[[position[k] for k in keys]] = True
            member[tag] = mask
        overall = np.logical_or.reduce(list(member.values())) if member else np.zeros(len(ids), dtype=bool)
        if not overall.any():
            raise DataError(f"{annotations}: no prompt is listed under any skill")
        order = ["basic", "advanced"] + list(SKILLS)
        ordered = [t for t in order if t in member] + sorted(t for t in member if t not in order)
        groups = {"vqascore": overall, **{metric_name(t): member[t] for t in ordered}}
        values, ci95 = group_means_with_ci95(
            scores, groups, n_boot=n_bootstrap, seed=seed
        )
        rows = [
            {
                "id": i,
                "score": float(scores[j]),
                "skills": [t for t in ordered if member[t][j]],
                "in_overall": bool(overall[j]),
                "grader": scorer.name,
            }
            for j, i in enumerate(ids)
        ]
        return ScoreResult(metrics=values, n=int(overall.sum()), rows=rows, ci95=ci95,
                           provenance=grader_provenance(scorer, official_model=DEFAULT_SCORER))
