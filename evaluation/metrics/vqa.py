"""VQA accuracy (VQAv2, OK-VQA, VizWiz): answer normalisation and the 10-human soft score, vectorised.

Two official evaluators are reproduced, each rule citing the function it follows:

* ``rule="vqa"``: GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py`` (``VQAEval.evaluate``,
  ``processPunctuation``, ``processDigitArticle``; the version after the 2021 commit "Fixed processing answers bug").
  Answers and prediction get ``\\n``/``\\t`` -> space and ``strip()``. Only when the humans do NOT all give the same
  (stripped) answer are the human answers AND the prediction normalised; a unanimous question compares the stripped
  strings as they are. For each human ``i`` the "other" answers are those whose whole answer dict differs from
  human ``i``'s (``item != gtAnsDatum``); with the distinct ``answer_id`` of VQAv2/OK-VQA that is leave-one-out.
* ``rule="vizwiz"``: the VizWiz-VQA ``vqaEval.py`` (Qing Li, linked from vizwiz.org/tasks-and-datasets/vqa).
  The prediction is always normalised (with VizWiz's contraction table, which writes most apostrophes as U+2019);
  the human answers are compared as stored (no normalisation, no strip); leave-one-out is by index.

Before either, each prediction goes through LLaVA's ``llava/eval/m4c_evaluator.py`` ``EvalAIAnswerProcessor``
(the processor ``scripts/convert_vqav2_for_submission.py`` and ``convert_vizwiz_for_submission.py`` apply before
upload; it is the mmf/pythia one): lower-case, delete every ``,`` and ``?``, ``'s`` -> `` 's``, strip, then the same
punctuation / digit / article / contraction steps as ``vqaEval.py`` except its comma-in-number pattern
(``(?<=\\d)(\\,)+(?=\\d)`` instead of ``(\\d)(\\,)(\\d)``, moot there because commas are already gone).

Per question and human ``i``: ``min(1, #matching other humans / 3)``; the question's accuracy is the mean over
humans. With ``m`` humans matching the prediction out of 10 (and distinct answer dicts): ``m = 0 -> 0``,
``m = 1 -> 0.3``, ``m = 2 -> (8*2/3 + 2*1/3)/10 = 0.6``, ``m = 3 -> (7*1 + 3*2/3)/10 = 0.9``, ``m >= 4 -> 1``.

Why hand-written: no kept library ships these rules (pycocoevalcap has no VQA scorer), and the official scripts loop
over questions in Python (Python 2 for VQA). Here every distinct string is normalised once and matches are counted
with numpy over interned answer codes (:class:`HumanAnswers`), so 100K VQAv2 questions score in about 0.1 s of CPU
(``benchmarks/score_speed.py`` times the whole command against lmms-eval's per-question loop).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, count
from typing import Literal

import numpy as np

from evaluation.bootstrap import means_with_ci95

Rule = Literal["vqa", "vizwiz"]

# vqaEval.py `self.punct` (same list in EvalAIAnswerProcessor.PUNCTUATIONS and VizWiz's vqaEval.py).
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
# vqaEval.py `self.manualMap`: whole words only.
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = frozenset({"a", "an", "the"})

# vqaEval.py `self.periodStrip` is "(?!<=\d)(\.)(?!\d)": its first group is a (mistyped) lookahead that can never
# fail in front of a ".", so it means: a period not followed by a digit. It is called as
# `periodStrip.sub("", text, re.UNICODE)`, i.e. with count=re.UNICODE=32: only the first 32 such periods go.
_PERIOD = re.compile(r"\.(?!\d)")
_PERIOD_COUNT = int(re.UNICODE)
_ANY_MARK = re.compile("[" + re.escape("".join(PUNCTUATION)) + "]")
_COMMA_IN_NUMBER_VQA = re.compile(r"\d,\d")  # vqaEval.py `self.commaStrip`
_COMMA_IN_NUMBER_EVALAI = re.compile(r"(?<=\d),+(?=\d)")  # EvalAIAnswerProcessor.COMMA_STRIP

# The contracted forms of vqaEval.py `self.contractions` (identical to EvalAIAnswerProcessor.CONTRACTIONS). Each is
# looked up under its spelling without its apostrophe; a form with several apostrophes under each spelling that drops
# exactly one of them ("couldn't've" <- "couldnt've", "couldn'tve"). Capitalised keys never match (lookup is after
# lower-casing), as in the original.
_CONTRACTED = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't he'd he'd've he's
how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't mightn't've might've mustn't must've needn't
not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't shouldn't've somebody'd've somebody'll somebody's
someone'd someone'd've someone'll someone's something'd something'd've something'll that's there'd there'd've there're
there's they'd they'd've they'll they're they've 'twas wasn't we'd've we've weren't what'll what're what's what've
when's where'd where's where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't
wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
"""
# The table's three irregular entries, kept as they are: two identities and one that removes an apostrophe.
_CONTRACTION_IRREGULAR = {"let's": "let's", "she's": "she's", "somebody'd": "somebodyd"}


def _contraction_table() -> dict[str, str]:
    """Spelling -> contracted form, as in vqaEval.py ``self.contractions`` (see :data:`_CONTRACTED`)."""
    table: dict[str, str] = {}
    for form in _CONTRACTED.split():
        cuts = [i for i, ch in enumerate(form) if ch == "'"]
        if len(cuts) == 1:
            table[form.replace("'", "")] = form
        else:
            for i in cuts:
                table[form[:i] + form[i + 1:]] = form
    table.update(_CONTRACTION_IRREGULAR)
    return table


CONTRACTIONS = _contraction_table()

# VizWiz's vqaEval.py has the same entries but writes the apostrophes as U+2019, except in these keys and in the
# values of these keys, which keep the ASCII apostrophe.
_VIZWIZ_ASCII_KEYS = frozenset({"couldn'tve", "hadn'tve"})
_VIZWIZ_ASCII_VALUES = frozenset({"aint", "arent", "cant", "couldve", "couldnt", "weve", "wheres", "whove"})


def _curly(text: str) -> str:
    return text.replace("'", "\u2019")


VIZWIZ_CONTRACTIONS = {
    (k if k in _VIZWIZ_ASCII_KEYS else _curly(k)): (v if k in _VIZWIZ_ASCII_VALUES else _curly(v))
    for k, v in CONTRACTIONS.items()
}


def clean(text: str) -> str:
    """``\\n`` and ``\\t`` to spaces, then ``strip()`` (vqaEval.py ``evaluate``, on answers and prediction)."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text: str, comma_in_number: re.Pattern[str] = _COMMA_IN_NUMBER_VQA) -> str:
    """vqaEval.py ``processPunctuation``.

    Each mark of :data:`PUNCTUATION` is deleted if it has a space on either side somewhere in the input or if the
    input has a comma between digits anywhere ("1,000"), and replaced by a space otherwise ("t-shirt" -> "t shirt");
    then the first 32 periods not followed by a digit are deleted ("yes." -> "yes", "2.5" kept).
    """
    if _ANY_MARK.search(text) is None:  # nothing to replace (most answers): the period step alone
        return _PERIOD.sub("", text, count=_PERIOD_COUNT) if "." in text else text
    glue = comma_in_number.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if glue or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text: str, contractions: dict[str, str] = CONTRACTIONS) -> str:
    """vqaEval.py ``processDigitArticle``: lower-case, split on whitespace, number words -> digits ("two" -> "2"),
    drop "a"/"an"/"the", contractions ("dont" -> "don't"), join with single spaces."""
    words = (NUMBER_WORDS.get(w, w) for w in text.lower().split())
    return " ".join(contractions.get(w, w) for w in words if w not in ARTICLES)


def vqa_normalize(text: str) -> str:
    """The official VQA normalisation: :func:`process_punctuation` then :func:`process_digit_article`."""
    return process_digit_article(process_punctuation(text))


def vizwiz_normalize(text: str) -> str:
    """VizWiz's normalisation: as :func:`vqa_normalize` but with :data:`VIZWIZ_CONTRACTIONS`."""
    return process_digit_article(process_punctuation(text), VIZWIZ_CONTRACTIONS)


def evalai_normalize(text: str) -> str:
    """LLaVA's ``EvalAIAnswerProcessor.__call__`` (``llava/eval/m4c_evaluator.py``), applied to predictions.

    ``word_tokenize`` (lower-case; delete "," and "?"; "'s" -> " 's"; strip), ``\\n``/``\\t`` -> space and strip,
    ``process_punctuation`` (its comma pattern), ``process_digit_article``. "Two" -> "2", "a dog." -> "dog",
    "dont" -> "don't", "dog's" -> "dog 's" (which then matches no human "dog's": a quirk of the pipeline).
    """
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return process_digit_article(process_punctuation(clean(text), _COMMA_IN_NUMBER_EVALAI))


@dataclass(frozen=True)
class HumanAnswers:
    """The human answers of ``n`` questions, stored flat and interned: what readers hand :func:`vqa_accuracy`
    without building one Python list per question or keeping a million answer strings.

    Attributes:
        codes: ``(N,)`` int64 index into ``strings`` of every answer, question after question (``N = counts.sum()``).
        strings: The distinct answer strings, in order of first appearance.
        counts: ``(n,)`` int64 number of answers of each question.
    """

    codes: np.ndarray
    strings: list[str]
    counts: np.ndarray

    @classmethod
    def from_flat(cls, flat: Iterable[str], counts: np.ndarray) -> HumanAnswers:
        """From every question's answers in one iterable (consumed once) and the number per question."""
        counts = np.asarray(counts, dtype=np.int64)
        codes, strings = _encode(flat, int(counts.sum()))
        return cls(codes=codes, strings=strings, counts=counts)

    @classmethod
    def from_lists(cls, answers: Sequence[Sequence[str]]) -> HumanAnswers:
        """From one list of answers per question."""
        counts = np.fromiter(map(len, answers), dtype=np.int64, count=len(answers))
        return cls.from_flat(chain.from_iterable(answers), counts)

    def __len__(self) -> int:
        return int(self.counts.size)

    def lists(self) -> list[list[str]]:
        """One list of answer strings per question (the form the readers were given)."""
        flat = [self.strings[c] for c in self.codes.tolist()]
        ends = np.cumsum(self.counts).tolist()
        return [flat[e - c:e] for e, c in zip(ends, self.counts.tolist())]


@dataclass(frozen=True)
class VqaScores:
    """Per-question results of :func:`vqa_accuracy`.

    Attributes:
        accuracy: ``(n,)`` float64 in [0, 1]: mean over humans of ``min(1, matching others / 3)``.
        matches: ``(n,)`` int64 number of human answers equal to the prediction (both as compared).
        prediction: The prediction as compared, per question (after every normalisation that applied).
    """

    accuracy: np.ndarray
    matches: np.ndarray
    prediction: list[str]


class _Codes:
    """Interns strings as consecutive integers, so equal strings compare as equal codes."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def code(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    def strings(self) -> list[str]:
        return list(self.index)


def _encode(flat: Iterable[str], size: int = -1) -> tuple[np.ndarray, list[str]]:
    """``(codes, uniques)`` with ``uniques[codes[i]] == flat[i]``, codes numbered in order of first appearance.

    One pass at C speed: a ``defaultdict`` whose missing keys take the next number from ``itertools.count``.
    ``size`` is the number of items when ``flat`` is an iterator (``-1``: ``len(flat)``).
    """
    index: defaultdict[str, int] = defaultdict(count().__next__)
    n = len(flat) if size < 0 else size  # type: ignore[arg-type]
    codes = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=n)
    return codes, list(index)


def vqa_accuracy(
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]] | HumanAnswers,
    *,
    rule: Rule = "vqa",
    evalai: bool = True,
    answer_identity: Sequence[Sequence[Hashable] | None] | None = None,
) -> VqaScores:
    """Per-question VQA accuracy under an official evaluator's rules (see the module docstring).

    Args:
        predictions: One raw model answer per question.
        answers: The human answers of each question (10 in VQAv2/OK-VQA/VizWiz; any number >= 1 works), as one list
            per question or as :class:`HumanAnswers`.
        rule: ``"vqa"`` (GT-Vision-Lab vqaEval.py) or ``"vizwiz"`` (VizWiz vqaEval.py).
        evalai: Pass predictions through LLaVA's EvalAI answer processor first (the submission pipeline).
        answer_identity: ``rule="vqa"`` only: per question, one hashable per human standing for every field of the
            answer dict except ``"answer"`` (e.g. ``(answer_confidence, answer_id)``), or ``None`` when those are
            known to be distinct (leave-one-out). Humans whose whole dicts are equal leave each other out together,
            as ``item != gtAnsDatum`` does in vqaEval.py.

    Returns:
        :class:`VqaScores`.

    Raises:
        ValueError: Lengths differ, a question has no human answers, or an unknown rule.
    """
    n = len(predictions)
    if len(answers) != n:
        raise ValueError(f"{n} predictions but {len(answers)} answer lists")
    if rule not in ("vqa", "vizwiz"):
        raise ValueError(f"unknown rule {rule!r}")
    if answer_identity is not None and len(answer_identity) != n:
        raise ValueError(f"{len(answer_identity)} answer identities for {n} questions")
    humans = answers if isinstance(answers, HumanAnswers) else HumanAnswers.from_lists(answers)
    counts = humans.counts
    if n and counts.min() < 1:
        raise ValueError(f"question {int(np.argmin(counts))} has no human answers")
    width = int(counts.max()) if n else 1
    uniform = not n or int(counts.min()) == width  # every question has `width` humans: no padding to mask
    valid = None if uniform else np.arange(width)[None, :] < counts[:, None]
    gt_raw, gt_strings = humans.codes, humans.strings
    pred_raw, pred_strings = _encode(predictions)
    evalai_pred = [evalai_normalize(p) if evalai else p for p in pred_strings]

    def as_grid(codes: np.ndarray) -> np.ndarray:
        """``(n, width)`` per-human codes; ``-1`` in the padding of questions with fewer humans."""
        if valid is None:
            return codes.reshape(n, width)
        grid = np.full((n, width), -1, dtype=np.int64)
        grid[valid] = codes
        return grid

    keys = _Codes()  # every string that takes part in a comparison
    if rule == "vqa":
        gt_clean_str = [clean(s) for s in gt_strings]
        clean_of_raw, clean_uniques = _encode(gt_clean_str)
        grid = as_grid(clean_of_raw[gt_raw])
        unanimous = (grid == grid[:, :1]) if valid is None else (grid == grid[:, :1]) | ~valid
        unanimous = unanimous.all(axis=1)
        plain = np.array([keys.code(s) for s in clean_uniques], dtype=np.int64)
        normed = np.array([keys.code(vqa_normalize(s)) for s in clean_uniques], dtype=np.int64)
        gt_key = normed[np.maximum(grid, 0)]  # normalised where the humans disagree, as stripped where unanimous
        gt_key[unanimous] = plain[np.maximum(grid[unanimous], 0)]
        pred_plain_str = [clean(p) for p in evalai_pred]
        pred_plain = np.array([keys.code(s) for s in pred_plain_str], dtype=np.int64)
        pred_normed = np.array([keys.code(vqa_normalize(s)) for s in pred_plain_str], dtype=np.int64)
        pred_key = np.where(unanimous, pred_plain[pred_raw], pred_normed[pred_raw])
    else:
        raw_key = np.array([keys.code(s) for s in gt_strings], dtype=np.int64)
        gt_key = as_grid(raw_key[gt_raw])
        pred_normed = np.array([keys.code(vizwiz_normalize(clean(p))) for p in evalai_pred], dtype=np.int64)
        pred_key = pred_normed[pred_raw]
    if valid is not None:
        gt_key[~valid] = -1

    equal = gt_key == pred_key[:, None]  # (n, width); padding (-1) never equals a key
    matches = equal.sum(axis=1)
    if rule == "vqa" and answer_identity is not None and list(answer_identity).count(None) < n:  # count: C speed
        left_out = equal.astype(np.int64)  # humans dropped from "the others" of human i, when they match
        for q, ident in enumerate(answer_identity):
            if ident is not None and matches[q]:
                pairs = list(zip(gt_key[q, : counts[q]].tolist(), ident))
                left_out[q, : counts[q]] *= [pairs.count(p) for p in pairs]
        others = matches[:, None] - left_out
        in_question = np.ones((n, width), dtype=bool) if valid is None else valid
        credit = np.where(in_question, np.minimum(others, 3), 0).sum(axis=1)  # sum over humans of 3*min(1, others/3)
    else:  # leave-one-out: the c - m other humans see m matching others, the m matching ones m - 1
        credit = (counts - matches) * np.minimum(matches, 3) + matches * np.minimum(np.maximum(matches - 1, 0), 3)
    accuracy = credit / (3.0 * counts)
    strings = keys.strings()
    return VqaScores(accuracy=accuracy, matches=matches, prediction=[strings[k] for k in pred_key.tolist()])


def sanitize_type(name: str) -> str:
    """Metric-name suffix of an answer/question type: spaces and slashes to ``_`` ("yes/no" -> "yes_no")."""
    return name.replace(" ", "_").replace("/", "_")


def accuracy_by_type(
    scores: np.ndarray, *type_lists: Sequence[str], n_boot: int, seed: int
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """``accuracy`` and ``accuracy_<type>`` in percent, with percentile-bootstrap intervals.

    The overall interval resamples all questions; each type's interval resamples that type's questions (same seed).
    Each list of types adds its labels in sorted order; a type with no question is absent.

    Args:
        scores: ``(n,)`` per-question scores in [0, 1].
        *type_lists: One or more groupings, each ``n`` type names (sanitised with :func:`sanitize_type`).
        n_boot: Resamples; 0 gives no intervals.
        seed: Bootstrap seed.

    Returns:
        ``(metrics, ci95)``.

    Raises:
        ValueError: Two groupings share a label, or a grouping's length is not ``n``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    metrics, ci95 = means_with_ci95({"accuracy": scores}, scale=100.0, n_boot=n_boot, seed=seed)
    for types in type_lists:
        if len(types) != scores.size:
            raise ValueError(f"{len(types)} types for {scores.size} scores")
        codes, distinct = _encode(types)  # sanitise each distinct type once, not once per question
        label_codes: dict[str, list[int]] = {}
        for code, t in enumerate(distinct):
            label_codes.setdefault(sanitize_type(t), []).append(code)
        for label in sorted(label_codes):
            name = f"accuracy_{label}"
            if name in metrics:
                raise ValueError(f"type label {label!r} appears in two groupings")
            members = np.isin(codes, label_codes[label])
            m, c = means_with_ci95({name: scores[members]}, scale=100.0, n_boot=n_boot, seed=seed)
            metrics.update(m)
            ci95.update(c)
    return metrics, ci95
