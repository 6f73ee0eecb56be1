"""Answer extraction and correctness for multiple-choice benchmarks: SEED-Bench, MMBench (circular), MMMU.

Every rule names the official function it reproduces; the code is written here because no installed library
provides these benchmark-specific heuristics (lmms-eval ships copies, but several differ from the official ones,
see the notes below, and importing lmms-eval task modules pulls in its whole runtime).

* SEED-Bench: lmms-eval ``tasks/seedbench/utils.py::seed_process_result`` / ``seed_aggregation_result`` -- the
  prediction is stripped and cut to its first character, then compared case-insensitively with the answer letter.
  LLaVA's ``scripts/convert_seed_for_submission.py`` instead requires ``text == answer`` exactly (rule ``"exact"``).
* MMBench: the rule-based stage of VLMEvalKit (the official MMBench evaluator), ``vlmeval/utils/matching_util.py``
  ``can_infer_option`` / ``can_infer_text`` / ``can_infer`` as of commit 590f052a (2026-02; the 2026-06 fallback regex
  ``answer is <letter>`` of a67ace50 is not reproduced: it reads "the answer is blue" as B). The GPT matching stage
  is replaced by nothing: an answer the rules cannot match counts as wrong, exactly VLMEvalKit's
  ``exact_matching`` judge. Circular evaluation (``mcq_circular_eval``): a question is right only if every
  circular-shifted copy (same ``index % 1_000_000``) is matched to its own answer letter.
  lmms-eval's ``mmbench_evals.py`` carries an older ``can_infer_option`` (no punctuation stripping, no "letter among
  the last 5 tokens" rule) and ``can_infer_text`` without the length guard, so e.g. "A. The cat is black and sleeping
  on a sofa" is A for lmms-eval but unmatched (wrong) here.
* MMMU: MMMU-Benchmark/MMMU ``mmmu/utils/eval_utils.py`` (``parse_multi_choice_response``, ``parse_open_response``,
  ``extract_numbers``, ``normalize_str``, ``eval_multi_choice``, ``eval_open``). The official parser picks a random
  letter when nothing matches; here that question is wrong (deterministic). lmms-eval's shared
  ``parse_mmmu_multi_choice_response`` looks for ``"B "`` instead of ``" B "`` and then for ``"B."``; rule
  ``"lmms-eval"`` reproduces that variant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.bootstrap import mean_ci95

# ----------------------------------------------------------------------------------------------------------- SEED


def seed_correct(prediction: str, answer: str, rule: str = "first-char") -> bool:
    """Whether a SEED-Bench prediction picks the answer letter.

    Args:
        prediction: The model's output.
        answer: Reference letter ``A``..``D``.
        rule: ``"first-char"`` (lmms-eval: first character of the stripped output, case-insensitive) or
            ``"exact"`` (LLaVA's convert_seed_for_submission.py: the output must equal the letter).

    Returns:
        True if correct.
    """
    if rule == "exact":
        return prediction == answer
    if rule != "first-char":
        raise ValueError(f"unknown SEED rule {rule!r}")
    return prediction.strip()[:1].lower() == answer.strip().lower()


# -------------------------------------------------------------------------------------------------------- MMBench

CIRCULAR_MODULUS = 1_000_000  # VLMEvalKit mcq_circular_eval: g_index = int(index % 1e6)
_REFUSALS = (  # VLMEvalKit can_infer_option: these answers become the non-option "Z" (always wrong)
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_TOKEN_BREAKS = str.maketrans({c: " " for c in ".()[],:;!*#{}"})


def mmbench_infer_option(answer: str, letters: Sequence[str]) -> str | None:
    """The option letter an answer states, by VLMEvalKit's ``can_infer_option``.

    The answer is tokenised on whitespace after turning each of ``.()[],:;!*#{}`` into a space. If exactly one
    option letter occurs as a token and its first occurrence is among the last 4 tokens (token index
    ``> len(tokens) - 5``), that letter is returned. If no letter occurs but a ``Z`` token does, or the answer
    contains a known refusal phrase, ``"Z"`` (never right) is returned.

    Args:
        answer: The model's output.
        letters: The question's option letters, in order (``["A", "B", "C", "D"]``).

    Returns:
        A letter, ``"Z"``, or ``None`` when the rule finds nothing.
    """
    if "Failed to obtain answer via API" in answer:
        return None
    if any(phrase in answer for phrase in _REFUSALS):
        return "Z"
    tokens = answer.translate(_TOKEN_BREAKS).split()
    present = [c for c in letters if c in tokens]
    if len(present) == 1:
        if tokens.index(present[0]) > len(tokens) - 5:
            return present[0]
    elif not present and "Z" in tokens:
        return "Z"
    return None


def mmbench_infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """The option whose text the answer contains, by VLMEvalKit's ``can_infer_text``.

    Case-insensitive substring test; exactly one option text must occur. Answers longer than twice the total
    length of the option texts are not matched.

    Args:
        answer: The model's output.
        choices: Letter to option text.

    Returns:
        The letter, or ``None``.
    """
    lowered = answer.lower()
    if len(lowered) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    hits = [k for k, v in choices.items() if str(v).lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def mmbench_infer(answer: str, choices: Mapping[str, str]) -> str | None:
    """VLMEvalKit's ``can_infer``: the letter rule first, then the option-text rule."""
    return mmbench_infer_option(answer, list(choices)) or mmbench_infer_text(answer, choices)


def circular_group(index: int) -> int:
    """The main question an MMBench row belongs to: ``index % 1_000_000``."""
    return int(index) % CIRCULAR_MODULUS


def circular_correct(matched: Sequence[str | None], answers: Sequence[str]) -> bool:
    """Circular evaluation: right only if every variant's matched letter equals its own answer."""
    return len(matched) == len(answers) and all(m is not None and m == a for m, a in zip(matched, answers))


# ----------------------------------------------------------------------------------------------------------- MMMU

MMMU_DOMAINS = {  # MMMU mmmu/utils/data_utils.py DOMAIN_CAT2SUB_CAT
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}
_EDGE_PUNCT = ",.!?;:'"  # stripped from both ends one character kind at a time, in this order
_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL_KEYS = frozenset(":,.!?;'")
_NUMBER_PATTERNS = (
    re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b"),  # thousands separators: 1,234,567
    re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+"),  # scientific: 6.02e23
    re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])"),  # plain, not part of the above
)


def mmmu_parse_choice(response: str, options: Sequence[str], rule: str = "official") -> str | None:
    """The option letter of an MMMU multiple-choice response (``parse_multi_choice_response``).

    Candidates, first stage that finds any: letters written ``(B)``; letters written `` B `` (``"B "`` for rule
    ``"lmms-eval"``, which then also tries ``"B."``); and, for responses of more than 5 words, options whose text
    occurs in the response (case-insensitive). Several candidates: the one occurring last wins.

    Args:
        response: The model's output.
        options: Option texts; their letters are ``A, B, ...`` in order.
        rule: ``"official"`` (MMMU eval_utils) or ``"lmms-eval"``.

    Returns:
        The letter, or ``None`` where the official code would pick a random letter.
    """
    if rule not in ("official", "lmms-eval"):
        raise ValueError(f"unknown MMMU rule {rule!r}")
    letters = [chr(ord("A") + i) for i in range(len(options))]
    text = response
    for ch in _EDGE_PUNCT:
        text = text.strip(ch)
    text = f" {text} "
    found = [c for c in letters if f"({c})" in text]
    locate = [f"({c})" for c in found]
    if not found:
        found = [c for c in letters if (f" {c} " if rule == "official" else f"{c} ") in text]
        if not found and rule == "lmms-eval":
            found = [c for c in letters if f"{c}." in text]
        locate = [f" {c} " for c in found]
    if not found and len(text.split()) > 5:
        found = [c for c, opt in zip(letters, options) if opt.lower() in text.lower()]
        locate = [options[letters.index(c)].lower() for c in found]
        if found:
            return found[int(np.argmax([text.lower().rfind(s) for s in locate]))]
    if not found:
        return None
    return found[int(np.argmax([text.rfind(s) for s in locate]))]


def mmmu_extract_numbers(text: str) -> list[str]:
    """All numbers in ``text`` (``extract_numbers``): comma-grouped, then scientific, then plain ones."""
    return [m for pattern in _NUMBER_PATTERNS for m in pattern.findall(text)]


def mmmu_normalize(text: str) -> list[str | float]:
    """``normalize_str``: a number becomes ``[round(float, 2)]``; other text is lowercased, and a single character
    ``c`` becomes ``[" c", "c "]`` so it only matches as a separate word."""
    stripped = text.strip()
    try:
        return [round(float(stripped.replace(",", "")), 2)]
    except ValueError:
        pass
    lowered = stripped.lower()
    return [f" {lowered}", f"{lowered} "] if len(lowered) == 1 else [lowered]


def _key_subresponses(response: str) -> list[str]:
    """The tails of a response that likely hold the answer (``parse_open_response.get_key_subresponses``).

    The response is lowercased first, so the official sentence split ``"\\.\\s(?=[A-Z])"`` never fires and only
    newlines separate parts; in each part the shortest tail after an indicator ("is ", "so ", ... and "=" in the
    last part) is kept unless it is a lone punctuation mark.
    """
    text = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", text)
    keys = []
    for i, part in enumerate(parts):
        indicators = _KEY_INDICATORS + (("=",) if i == len(parts) - 1 else ())
        best: str | None = None
        for indicator in indicators:
            if indicator in part:
                tail = part.split(indicator)[-1].strip()
                if not best or len(tail) < len(best):
                    best = tail
        if best and best not in _TRIVIAL_KEYS:
            keys.append(best)
    return keys or [text]


def mmmu_parse_open(response: str) -> list[str | float]:
    """Normalised candidate answers of an open MMMU response (``parse_open_response``), duplicates removed."""
    keys = _key_subresponses(response)
    candidates = keys + [n for k in keys for n in mmmu_extract_numbers(k)]
    return list(dict.fromkeys(v for c in candidates for v in mmmu_normalize(c)))


def mmmu_open_correct(gold: str | Sequence[str], candidates: Sequence[str | float]) -> bool:
    """``eval_open``: a text candidate is right if it CONTAINS a normalised gold text; a number must EQUAL one."""
    golds = [v for g in ([gold] if isinstance(gold, str) else gold) for v in mmmu_normalize(g)]
    for cand in candidates:
        if isinstance(cand, str):
            if any(isinstance(g, str) and g in cand for g in golds):
                return True
        elif cand in golds:
            return True
    return False


def mmmu_choice_correct(gold: str | Sequence[str], letter: str | None) -> bool:
    """``eval_multi_choice``: the parsed letter must equal the gold letter (or one of a list of them)."""
    if letter is None:
        return False
    return letter == gold if isinstance(gold, str) else letter in gold


# --------------------------------------------------------------------------------------------------------- shared


def slug(name: str) -> str:
    """Metric-name form of a category: lowercase, other runs -> ``_`` ("Art and Design" -> ``art_and_design``)."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


def grouped_accuracy(
    correct: np.ndarray, groups: Mapping[str, np.ndarray], *, n_boot: int, seed: int
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Accuracy (percent) of each group of samples, with a bootstrap interval over the group's samples.

    Args:
        correct: ``(n,)`` per-sample correctness (0/1).
        groups: Metric name to ``(n,)`` bool membership mask; empty groups are skipped.
        n_boot: Resamples (0: no intervals).
        seed: Base seed; group ``k`` (in ``groups`` order) uses an independent stream derived from ``(seed, k)``.

    Returns:
        ``(metrics, ci95)``.
    """
    values = np.asarray(correct, dtype=np.float64)
    metrics: dict[str, float] = {}
    ci95: dict[str, tuple[float, float]] = {}
    for k, (name, mask) in enumerate(groups.items()):
        sub = values[np.asarray(mask, dtype=bool)]
        if sub.size == 0:
            continue
        metrics[name] = float(100.0 * sub.mean())
        if n_boot:
            sub_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            lo, hi = mean_ci95(sub, n_boot=n_boot, seed=sub_seed)
            ci95[name] = (100.0 * lo, 100.0 * hi)
    return metrics, ci95
