"""MM-Vet: LLM-judged open-ended answers, scored overall and per capability (mm-vet_evaluator.py's flow)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.graders import (
    JUDGE,
    Grader,
    GradeRequest,
    GraderSettings,
    check_scores,
    grader_provenance,
    group_means_with_ci95,
    resolve_grader,
)
from evaluation.readers import preview
from evaluation.registry import Benchmark, Metric, PathLike, ScoreResult, register
from setok.io import DataError, read_json

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")
DEFAULT_JUDGE = "gpt-4-0613"  # mm-vet_evaluator.py's --gpt_model default
GRADER_ENV = "SETOK_MMVET_GRADER"
# Our own wording of the fallback line; the official script appends its own sentence (see help).
DEFAULT_RETRY_SUFFIX = "\nReply with the correctness score only, a number from 0.0 to 1.0: "
HOW_TO = (
    "mmvet needs a grader (the official flow uses a GPT-4 judge): pass --grader openai --judge-prompt FILE "
    f"with $OPENAI_API_KEY set (--grader-model, default {DEFAULT_JUDGE}; --grader-url for another "
    "OpenAI-compatible server), or --grader precomputed --grader-file GRADES.json, or set "
    f"${GRADER_ENV}"
)


@dataclass(frozen=True)
class MMVetSample:
    """One MM-Vet question (``mm-vet.json`` entry) with the model's answer."""

    id: str
    question: str
    answer: str
    capabilities: tuple[str, ...]
    prediction: str


def read_mmvet(predictions: Path, annotations: Path) -> list[MMVetSample]:
    """Read ``mm-vet.json`` and the model's results JSON, aligned in reference order.

    Raises:
        DataError: Malformed entries, or predictions missing, extra or not strings (named).
    """
    refs = read_json(annotations)
    if not isinstance(refs, dict) or not refs:
        raise DataError(f"{annotations}: expected mm-vet.json, a non-empty object of id -> question entry")
    bad = [
        k
        for k, v in refs.items()
        if not (
            isinstance(v, dict)
            and isinstance(v.get("question"), str)
            and isinstance(v.get("answer"), str)
            and isinstance(v.get("capability"), list)
            and v["capability"]
            and all(isinstance(c, str) for c in v["capability"])
        )
    ]
    if bad:
        raise DataError(f"{annotations}: entries lack question/answer strings or a capability list: {preview(bad)}")
    preds = read_json(predictions)
    if not isinstance(preds, dict):
        raise DataError(f"{predictions}: expected a JSON object of id -> answer string")
    missing = [k for k in refs if k not in preds]
    if missing:
        raise DataError(
            f"{predictions}: missing answers for {len(missing)} of {len(refs)} ids of {annotations}: {preview(missing)}"
        )
    extra = [k for k in preds if k not in refs]
    if extra:
        raise DataError(f"{predictions}: {len(extra)} ids are not in {annotations}: {preview(extra)}")
    not_str = [k for k in refs if not isinstance(preds[k], str)]
    if not_str:
        raise DataError(f"{predictions}: answers are not strings for ids {preview(not_str)}")
    return [
        MMVetSample(k, v["question"], v["answer"], tuple(dict.fromkeys(v["capability"])), preds[k])
        for k, v in refs.items()
    ]


def judge_query(preamble: str, sample: MMVetSample) -> str:
    """The judge prompt of one sample, built as mm-vet_evaluator.py does.

    ``preamble`` (the few-shot prompt, verbatim) + newline + ``" | ".join([question, answer, prediction, ""])``, with
    the ground truth's ``<AND>`` / ``<OR>`` padded by spaces; the trailing empty field leaves ``"... | "`` for the judge
    to complete.
    """
    answer = sample.answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")
    return preamble + "\n" + " | ".join([sample.question, answer, sample.prediction, ""])


@register("mmvet")
class MMVet(Benchmark):
    """MM-Vet (Yu et al., 2023): GPT-4-graded answers, total and per-capability scores."""

    help = f"""MM-Vet: LLM-judge correctness (0-100) overall and per capability (rec, ocr, know, gen, spat, math).

references (--annotations): the official mm-vet.json:
    {{"v1_0": {{"imagename": "v1_0.png", "capability": ["ocr", "math"], "question": "...", "answer": "..."}}, ...}}
predictions (--predictions): the official results JSON, one answer string per id:
    {{"v1_0": "model answer", ...}}
  Every id needs exactly one answer: missing, extra and non-string answers are errors.

Grading (mm-vet_evaluator.py): a grader gives each answer a correctness in [0, 1]; per-sample score = mean over
--runs (official default 1, the paper 5). score = 100 * mean over all samples; <capability> = 100 * mean over the
samples whose capability list contains it (a sample counts in each of its capabilities). No rounding.
A grader is required (--grader NAME or ${GRADER_ENV}); without one the command fails with exit status 2 and
never reports 0.
  --grader openai: judge prompt = the contents of --judge-prompt FILE verbatim (save the `prompt` string of
    mm-vet_evaluator.py, which ends with one newline), a newline, then "question | answer | prediction | " with
    " <AND> " / " <OR> " padded; max_tokens 3, temperature 0; the reply's text before the first space must parse
    as a number in [0, 1], else up to 4 re-asks with --judge-retry-suffix appended at temperatures 0, 0.5, 1, 1.5,
    then 0.0 (logged as grader_failed). The official re-ask uses its own suffix sentence; pass it with
    --judge-retry-suffix to match it exactly.
  --grader precomputed --grader-file F: scores from F, JSON {{id: score | [runs] | {{"score": [runs]}}}} (the
    official *-grade-*runs.json works as is) or JSONL {{"id", "score"}}.
Per-sample rows: {{"id", "capabilities": [...], "score": 0..1, "runs": [...], "grader", "grader_failed"}}.
The result's provenance names the grader; precomputed grades are marked in every report (not judged from these
predictions), and so is a judge other than {DEFAULT_JUDGE}.
ci95: percentile bootstrap over samples (default 1000 resamples), per-capability means recomputed per resample."""
    metrics = (Metric("score", higher_is_better=True, help="MM-Vet total, 0-100"),) + tuple(
        Metric(c, higher_is_better=True, help=f"MM-Vet {c} capability, 0-100") for c in CAPABILITIES
    )

    missing_annotations = "mm-vet.json"

    headline = "score"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``mm-vet.json`` (annotations), ``images/``."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.mmvet import MmvetTask

        return MmvetTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                         images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``mm-vet.json`` entries; the first entry's image exists."""
        expected = "mm-vet.json {'v1_0': {'imagename', 'question', 'answer', 'capability'}}"
        path = lay.path(spec, "annotations")
        data = lay.json(path, expected, dict)
        lay.records(path, list(data.values()), ("imagename", "question", "answer"), expected, "entries")
        images = lay.folder(lay.path(spec, "images"), "the MM-Vet images")
        lay.sample(images / str(next(iter(data.values()))["imagename"]), "the MM-Vet images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the grader options, ``--judge-prompt``, ``--judge-retry-suffix`` and ``--runs``."""
        parser.add_argument("--grader", default=None, help=f"openai or precomputed (default: ${GRADER_ENV})")
        parser.add_argument("--grader-model", default=DEFAULT_JUDGE, help="judge model name")
        parser.add_argument("--grader-url", default=None, help="OpenAI-compatible base URL (default: OpenAI)")
        parser.add_argument("--grader-file", default=None, help="precomputed scores (with --grader precomputed)")
        parser.add_argument("--judge-prompt", default=None, help="text file with the official few-shot prompt")
        parser.add_argument("--judge-retry-suffix", default=DEFAULT_RETRY_SUFFIX, help="appended on re-asks")
        parser.add_argument("--runs", type=int, default=1, help="grading runs averaged per sample (official: 1)")

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, grader: Grader | str | None = None,
        grader_model: str | None = DEFAULT_JUDGE, grader_url: str | None = None, grader_file: str | None = None,
        judge_prompt: PathLike | None = None, judge_retry_suffix: str = DEFAULT_RETRY_SUFFIX, runs: int = 1,
        **opts: Any
    ) -> ScoreResult:
        if runs < 1:
            raise DataError(f"--runs must be >= 1, got {runs}")
        samples = read_mmvet(Path(predictions), Path(annotations))
        settings = GraderSettings(model=grader_model, url=grader_url, file=grader_file)
        judge = resolve_grader(grader, env=GRADER_ENV, settings=settings, kind=JUDGE, how_to=HOW_TO)
        if judge_prompt is not None:
            if not Path(judge_prompt).is_file():
                raise DataError(f"{judge_prompt}: judge prompt file not found")
            preamble = Path(judge_prompt).read_text(encoding="utf-8")
        elif getattr(judge, "reads_prompt", False):
            raise DataError(
                f"--judge-prompt FILE is required with --grader {judge.name}: save the few-shot `prompt` string of "
                "MM-Vet's mm-vet_evaluator.py to a text file"
            )
        else:
            preamble = ""  # graders that ignore the prompt (precomputed, fake)
        requests = []
        for s in samples:
            query = judge_query(preamble, s)
            requests.append(GradeRequest(id=s.id, prompt=query, retry_prompt=query + judge_retry_suffix))
        ids = [s.id for s in samples]
        per_run: list[np.ndarray] = []
        failed: set[str] = set()
        for _ in range(runs):
            per_run.append(check_scores(judge, ids, judge.grade(requests)))
            failed |= {k for k, v in (getattr(judge, "log", None) or {}).items() if v.get("failed")}
        scores = np.mean(per_run, axis=0)
        caps = [c for c in CAPABILITIES if any(c in s.capabilities for s in samples)]
        caps += sorted({c for s in samples for c in s.capabilities} - set(CAPABILITIES))
        groups = {"score": np.ones(len(samples), dtype=bool)}
        groups.update({c: np.array([c in s.capabilities for s in samples]) for c in caps})
        values, ci95 = group_means_with_ci95(
            scores, groups, scale=100.0, n_boot=n_bootstrap, seed=seed
        )
        rows = [
            {
                "id": s.id,
                "capabilities": list(s.capabilities),
                "score": float(v),
                "runs": [float(r[i]) for r in per_run],
                "grader": judge.name,
                "grader_failed": s.id in failed,
            }
            for i, (s, v) in enumerate(zip(samples, scores))
        ]
        return ScoreResult(metrics=values, n=len(rows), rows=rows, ci95=ci95,
                           provenance=grader_provenance(judge, official_model=DEFAULT_JUDGE))
