"""Graders for model-judged benchmarks (MM-Vet's GPT-4 judge, GenAI-Bench's VQAScore) and grouped averaging.

A :class:`Grader` turns :class:`GradeRequest` objects into scores in ``[0, 1]``. Graders are registered by name and
built only when a benchmark is scored with one configured (``--grader NAME`` or ``$SETOK_<BENCHMARK>_GRADER``); a
benchmark scored without one fails with a one-line :class:`setok.io.DataError` saying how to configure it, never with
a zero. Kinds: ``judge`` graders read ``request.prompt`` as a text prompt for a language model; ``image_text`` graders
score how well ``request.image`` shows ``request.prompt``.

Registered graders: ``openai`` (any OpenAI-compatible chat-completions endpoint, judge), ``precomputed`` (scores read
from a file, both kinds) and, from :mod:`evaluation.suite.genai_bench`, ``vqascore`` (t2v_metrics VQAScore,
image_text). Every result scored with a grader records it (:func:`grader_provenance`); the grades of ``precomputed``
(and of the tests' fake grader) do not come from the predictions being scored, and reports mark them.
No network call happens at import or in tests (the HTTP grader takes an injectable ``httpx`` transport).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evaluation.bootstrap import bootstrap_statistic
from evaluation.provenance import Provenance
from evaluation.readers import preview
from setok.io import DataError, read_json, read_jsonl

JUDGE = "judge"
IMAGE_TEXT = "image_text"
OPENAI_URL = "https://api.openai.com/v1"
API_KEY_ENVS = ("SETOK_GRADER_API_KEY", "OPENAI_API_KEY")
URL_ENVS = ("SETOK_GRADER_URL", "OPENAI_BASE_URL")
# MM-Vet's mm-vet_evaluator.py: a first reply at temperature 0, then up to 4 re-asks with the retry prompt at
# temperatures 0.0, 0.5, 1.0, 1.5; a sample whose 5 replies all fail to parse scores 0.0 (the script sends a sixth
# request at 2.0 whose reply it never reads; we skip that request).
RETRY_TEMPERATURES = (0.0, 0.5, 1.0, 1.5)


@dataclass(frozen=True)
class GradeRequest:
    """One item to grade.

    Attributes:
        id: Sample id (scores come back in request order; the id keys precomputed scores and logs).
        prompt: Judge graders: the full prompt. Image-text graders: the text the image should show.
        image: Image path (image-text graders).
        retry_prompt: Judge graders: the prompt re-sent after an unparsable reply (default: ``prompt``).
    """

    id: str
    prompt: str = ""
    image: Path | None = None
    retry_prompt: str | None = None


@runtime_checkable
class Grader(Protocol):
    """Scores requests; each score lies in ``[0, 1]``.

    A grader may also set ``judges_predictions`` (whether its scores come from looking at the requests: true for a
    judge or scorer model; a grader without it is recorded as not judging), ``model`` and ``path`` (a scores file);
    :func:`grader_provenance` records them.
    """

    name: str
    kinds: frozenset[str]

    def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
        """One score per request, in order."""
        ...


def parse_judge_score(reply: str | None) -> float | None:
    """The score in a judge's reply by MM-Vet's rule, or ``None`` when it has none.

    mm-vet_evaluator.py keeps the text before the first space, strips it and reads it as a float that must lie in
    ``[0, 1]`` (``"0.8"`` and ``"0.8\\n"`` parse; ``"Score: 0.8"`` and ``"1.5"`` do not). NaN, which Python's float()
    accepts and the script would let through, is rejected here.
    """
    if not isinstance(reply, str):
        return None
    try:
        value = float(reply.split(" ")[0].strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


@dataclass(frozen=True)
class GraderSettings:
    """Configuration handed to a grader factory (each grader reads what it needs).

    Attributes:
        model: Judge or scorer model name.
        url: Base URL of an OpenAI-compatible API.
        file: Precomputed scores file.
        device: Torch device (model-backed graders).
        batch_size: Items per forward pass (model-backed graders).
    """

    model: str | None = None
    url: str | None = None
    file: str | None = None
    device: str | None = None
    batch_size: int = 16


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[GraderSettings], Grader]
    kinds: frozenset[str]


_GRADERS: dict[str, _Entry] = {}


def register_grader(
    name: str, *, kinds: Sequence[str]
) -> Callable[[Callable[[GraderSettings], Grader]], Callable[[GraderSettings], Grader]]:
    """Decorator registering a grader factory ``settings -> Grader`` under ``name``.

    Args:
        name: ``--grader`` value.
        kinds: Request kinds it grades (:data:`JUDGE`, :data:`IMAGE_TEXT`).
    """

    def decorate(factory: Callable[[GraderSettings], Grader]) -> Callable[[GraderSettings], Grader]:
        _GRADERS[name] = _Entry(factory, frozenset(kinds))
        return factory

    return decorate


def grader_names(kind: str | None = None) -> list[str]:
    """Sorted names of the CLI-selectable graders (of ``kind`` when given)."""
    return sorted(n for n, e in _GRADERS.items() if kind is None or kind in e.kinds)


def build_grader(name: str, settings: GraderSettings, *, kind: str) -> Grader:
    """Construct the grader registered as ``name`` for requests of ``kind``.

    Raises:
        DataError: Unknown name, a grader of another kind, or the grader's own configuration error.
    """
    entry = _GRADERS.get(name)
    if entry is None:
        raise DataError(f"--grader: unknown grader {name!r}; choose from {', '.join(grader_names(kind))}")
    if kind not in entry.kinds:
        raise DataError(f"--grader: {name!r} cannot grade {kind} requests; choose from {', '.join(grader_names(kind))}")
    return entry.factory(settings)


def resolve_grader(
    grader: Grader | str | None, *, env: str, settings: GraderSettings, kind: str, how_to: str
) -> Grader:
    """The grader to use: an instance as given, else one built from a name (argument, then ``$env``).

    Args:
        grader: A :class:`Grader`, a registered name, or ``None``.
        env: Environment variable naming the grader when ``grader`` is ``None``.
        settings: Factory configuration.
        kind: Request kind the benchmark sends.
        how_to: The one-line error when no grader is configured (what is needed and how to set it).

    Raises:
        DataError: No grader configured (``how_to``), or a bad configuration.
    """
    if grader is not None and not isinstance(grader, str):
        if kind not in grader.kinds:
            raise DataError(f"grader {grader.name!r} cannot grade {kind} requests")
        return grader
    name = grader or os.environ.get(env, "").strip()
    if not name:
        raise DataError(how_to)
    return build_grader(name, settings, kind=kind)


def _mean_score(path: Path, key: str, value: Any) -> float:
    """A stored score: a number, a list of runs (averaged) or ``{"score": ...}`` (MM-Vet's grade file)."""
    if isinstance(value, dict):
        value = value.get("score")
    runs = value if isinstance(value, list) else [value]
    if not runs or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in runs):
        raise DataError(f"{path}: score of {key!r} is not a number or a non-empty list of numbers")
    return float(np.mean(runs))


class PrecomputedGrader:
    """Scores read from a file, keyed by sample id (a grade file from an earlier or official run).

    Formats: JSON ``{id: score}``, ``{id: [run scores]}`` or MM-Vet's grade file ``{id: {"score": [runs], ...}}``
    (runs are averaged, which equals the official mean of per-run totals); or JSON lines ``{"id", "score"}``.
    """

    name = "precomputed"
    kinds = frozenset({JUDGE, IMAGE_TEXT})
    judges_predictions = False  # the file's grades were made before, from whatever answers were graded then

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Read ``path`` (``.jsonl`` as JSON lines, anything else as JSON).

        Raises:
            DataError: Missing or malformed file, duplicate ids.
        """
        self.path = Path(path)
        if self.path.suffix == ".jsonl":
            rows = read_jsonl(self.path)
            bad = [i for i, r in enumerate(rows, 1) if not (isinstance(r, dict) and "id" in r and "score" in r)]
            if bad:
                raise DataError(f"{self.path}: rows {preview(bad)} lack 'id' or 'score'")
            ids = [str(r["id"]) for r in rows]
            if len(set(ids)) != len(ids):
                raise DataError(f"{self.path}: duplicate ids")
            raw: dict[str, Any] = {str(r["id"]): r["score"] for r in rows}
        else:
            data = read_json(self.path)
            if not isinstance(data, dict):
                raise DataError(f"{self.path}: expected a JSON object of id -> score")
            raw = {str(k): v for k, v in data.items()}
        self.scores = {k: _mean_score(self.path, k, v) for k, v in raw.items()}

    def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
        """Stored scores of ``requests``.

        Raises:
            DataError: Some request ids have no stored score (named).
        """
        missing = [r.id for r in requests if r.id not in self.scores]
        if missing:
            raise DataError(f"{self.path}: no score for {len(missing)} of {len(requests)} samples: {preview(missing)}")
        return [self.scores[r.id] for r in requests]


@register_grader("precomputed", kinds=(JUDGE, IMAGE_TEXT))
def _precomputed(settings: GraderSettings) -> Grader:
    if not settings.file:
        raise DataError("--grader precomputed needs --grader-file (JSON {id: score} or JSONL {id, score})")
    return PrecomputedGrader(settings.file)


@dataclass
class OpenAIChatGrader:
    """An LLM judge behind an OpenAI-compatible ``/chat/completions`` endpoint, with MM-Vet's parse-and-retry loop.

    Each request is sent as one user message with ``max_tokens=3`` at temperature 0 (mm-vet_evaluator.py); see
    :data:`RETRY_TEMPERATURES` for the retries. HTTP 429 waits ``rate_limit_wait`` seconds and resends (the script
    waits 30 s on ``RateLimitError``); other failures are retried ``max_http_retries`` times, then raise.

    Attributes:
        model: Judge model (MM-Vet's default: ``gpt-4-0613``).
        base_url: API base URL, e.g. ``https://api.openai.com/v1`` or a local vLLM server.
        api_key: Bearer token (``None`` for servers that need none).
        max_tokens: Reply length limit.
        log: Per id: ``{"replies": [...], "failed": bool}`` of the last :meth:`grade` call.
        reads_prompt: True: the benchmark must supply a real judge prompt.
    """

    model: str
    base_url: str = OPENAI_URL
    api_key: str | None = None
    max_tokens: int = 3
    timeout: float = 60.0
    rate_limit_wait: float = 30.0
    max_rate_limit_waits: int = 40
    max_http_retries: int = 3
    transport: Any = None
    sleep: Callable[[float], None] = time.sleep
    log: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "openai"
    kinds: frozenset[str] = frozenset({JUDGE})
    reads_prompt: bool = True
    judges_predictions: bool = True

    def complete(self, client: Any, prompt: str, temperature: float) -> str:
        """The reply text to ``prompt`` (empty when the API returns no content)."""
        import httpx

        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens,
            "temperature": temperature,
        }
        waits = failures = 0
        while True:
            try:
                resp = client.post("/chat/completions", json=payload)
            except httpx.HTTPError as e:
                failures += 1
                if failures > self.max_http_retries:
                    raise DataError(f"{self.base_url}: judge request failed ({e.__class__.__name__}: {e})") from None
                self.sleep(2.0**failures)
                continue
            if resp.status_code == 429 and waits < self.max_rate_limit_waits:
                waits += 1
                self.sleep(self.rate_limit_wait)
                continue
            if resp.status_code >= 500 and failures < self.max_http_retries:
                failures += 1
                self.sleep(2.0**failures)
                continue
            if resp.status_code != 200:
                raise DataError(f"{self.base_url}: judge returned HTTP {resp.status_code}: {resp.text[:200]!r}")
            try:
                content = resp.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise DataError(f"{self.base_url}: unexpected judge response {resp.text[:200]!r}") from None
            return content if isinstance(content, str) else ""

    def grade_one(self, client: Any, request: GradeRequest) -> float:
        """One request through the parse-and-retry loop (0.0 when no reply parses, logged as failed)."""
        replies = [self.complete(client, request.prompt, 0.0)]
        for temperature in RETRY_TEMPERATURES:
            score = parse_judge_score(replies[-1])
            if score is not None:
                self.log[request.id] = {"replies": replies, "failed": False}
                return score
            replies.append(self.complete(client, request.retry_prompt or request.prompt, temperature))
        score = parse_judge_score(replies[-1])
        self.log[request.id] = {"replies": replies, "failed": score is None}
        return 0.0 if score is None else score

    def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
        """Scores of ``requests``, one judge conversation each."""
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self.log = {}
        with httpx.Client(
            base_url=self.base_url.rstrip("/"), headers=headers, timeout=self.timeout, transport=self.transport
        ) as client:
            return [self.grade_one(client, r) for r in requests]


def _first_env(names: Sequence[str]) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


@register_grader("openai", kinds=(JUDGE,))
def _openai(settings: GraderSettings) -> Grader:
    if not settings.model:
        raise DataError("--grader openai needs --grader-model (the judge model name)")
    url = settings.url or _first_env(URL_ENVS) or OPENAI_URL
    key = _first_env(API_KEY_ENVS)
    if key is None and url.rstrip("/") == OPENAI_URL:
        raise DataError(f"--grader openai needs an API key in ${API_KEY_ENVS[1]} (or ${API_KEY_ENVS[0]})")
    return OpenAIChatGrader(model=settings.model, base_url=url, api_key=key)


def grader_provenance(grader: Grader, *, official_model: str) -> Provenance:
    """What a result scored by ``grader`` records: the grader (name, model, scores file, whether it judges the
    predictions) and, for a judge or scorer model other than the benchmark's ``official_model``, a shortcut.

    A grader that does not say it judges the predictions (``judges_predictions``) is recorded as not judging them, so
    a precomputed grade file is marked whatever the caller does.
    """
    model = getattr(grader, "model", None)
    path = getattr(grader, "path", None)
    judges = bool(getattr(grader, "judges_predictions", False))
    info = {"name": grader.name, "model": model, "file": None if path is None else str(path),
            "judges_predictions": judges}
    shortcuts = []
    if judges and model is not None and model != official_model:
        shortcuts.append(f"graded by {model}, not the benchmark's {official_model}")
    return Provenance(grader=info, shortcuts=shortcuts)


def check_scores(grader: Grader, ids: Sequence[str], scores: Sequence[float]) -> np.ndarray:
    """Scores as float64, checked to be one finite value in ``[0, 1]`` per id.

    Raises:
        DataError: Wrong count or out-of-range values (naming the grader and the ids).
    """
    a = np.asarray(scores, dtype=np.float64)
    if a.shape != (len(ids),):
        raise DataError(f"grader {grader.name}: returned {a.size} scores for {len(ids)} samples")
    bad = [i for i, v in zip(ids, a) if not (np.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise DataError(f"grader {grader.name}: scores outside [0, 1] for {preview(bad)}")
    return a


def group_means_with_ci95(
    values: np.ndarray,
    groups: Mapping[str, np.ndarray],
    *,
    scale: float = 1.0,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Mean of ``values`` over each group of samples, and paired percentile-bootstrap intervals.

    Every replicate resamples all ``n`` samples (the same index draws as :func:`evaluation.bootstrap.means_with_ci95`)
    and recomputes each group's mean over the resampled members; replicates that draw no member of a group are left
    out of that group's interval.

    Args:
        values: ``(n,)`` per-sample scores.
        groups: Metric name to ``(n,)`` boolean membership; empty groups are omitted from the output.
        scale: Multiplier of means and bounds (100 for MM-Vet).
        n_boot: Resamples; 0 gives no intervals.
        seed: Bootstrap seed.

    Returns:
        ``(metrics, ci95)`` in the order of ``groups``.
    """
    v = np.asarray(values, dtype=np.float64)
    masks = {k: np.asarray(m, dtype=bool) for k, m in groups.items() if np.asarray(m, dtype=bool).any()}
    for k, m in masks.items():
        if m.shape != v.shape:
            raise ValueError(f"group {k!r} has shape {m.shape}, values {v.shape}")
    metrics = {k: float(v[m].mean() * scale) for k, m in masks.items()}
    if n_boot == 0 or not masks:
        return metrics, {}
    names = list(masks)
    weights = [masks[k].astype(np.float64) for k in names]  # k arrays of (n,)

    def stat(idx: np.ndarray) -> np.ndarray:  # idx (b, n) -> (b, k)
        drawn = v[idx]  # (b, n)
        cols = []
        for w in weights:
            wi = w[idx]  # (b, n) membership of the drawn samples
            with np.errstate(invalid="ignore", divide="ignore"):
                cols.append((wi * drawn).sum(axis=1) / wi.sum(axis=1))
        return np.stack(cols, axis=1)

    reps = bootstrap_statistic(v.size, stat, n_boot=n_boot, seed=seed).reshape(n_boot, len(names))
    ci95 = {}
    for j, k in enumerate(names):
        col = reps[:, j][np.isfinite(reps[:, j])]
        lo, hi = np.percentile(col, [2.5, 97.5])
        ci95[k] = (float(lo * scale), float(hi * scale))
    return metrics, ci95
