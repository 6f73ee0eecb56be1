"""Caption metrics through pycocoevalcap: PTB tokenisation, CIDEr-D and BLEU-4, as the COCO caption server scores them.

Everything numeric comes from pycocoevalcap (``tylin/coco-caption`` for Python 3), run the way its
``COCOEvalCap.evaluate`` runs it: references and predictions both go through ``PTBTokenizer`` (Stanford CoreNLP
3.4.1, lower-cased, punctuation tokens dropped), then ``Cider().compute_score`` (pycocoevalcap's CIDEr is CIDEr-D:
clipped n-gram counts, Gaussian length penalty with sigma 6, x10, document frequencies from the references of the
scored images) and ``Bleu(4).compute_score`` (``option="closest"`` effective reference length). Values here are on
pycocoevalcap's scale (CIDEr about 0-10, BLEU 0-1); the benchmark multiplies by 100.

Written by hand, because no kept library provides them:

* :func:`corpus_bleu` re-aggregates per-image BLEU statistics into corpus BLEU for bootstrap resamples (pycocoevalcap
  only scores the one corpus it was given); it reproduces ``BleuScorer.compute_score``'s corpus formula, epsilons
  included, and is tested to agree with it on the full set;
* :func:`ptb_tokenize` replaces line-break characters other than ``\\n`` before tokenising (see its docstring).

This module imports no model and reads no file (the tokenizer's temporary file and Java process are pycocoevalcap's).
"""

from __future__ import annotations

import subprocess
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from setok.io import DataError

K = TypeVar("K", bound=Hashable)

BLEU_N = 4
# BleuScorer.compute_score's epsilons (pycocoevalcap/bleu/bleu_scorer.py): numerator and denominator guards.
BLEU_TINY = 1e-15
BLEU_SMALL = 1e-9
# Characters Java's PTBTokenizer (-preserveLines) treats as line ends. PTBTokenizer.tokenize replaces only "\n" with a
# space, so any of these splits a caption over two lines and shifts every later caption onto the wrong image.
JAVA_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\u2028", "\u2029")


@dataclass(frozen=True)
class CaptionScores:
    """Scores of one corpus, images in the order of the references given.

    Attributes:
        ids: Image ids.
        cider: Corpus CIDEr-D (pycocoevalcap scale; the mean of ``cider_per_image``).
        cider_per_image: ``(n,)`` per-image CIDEr-D with the corpus document frequencies.
        bleu4: Corpus BLEU-4 (0-1).
        bleu4_per_image: ``(n,)`` sentence-level BLEU-4 as pycocoevalcap reports per image (its own brevity penalty).
        bleu_stats: ``(n, 2 + 2 * BLEU_N)`` per-image ``[testlen, reflen, guess_1..4, correct_1..4]`` (reflen: the
            closest reference length) from which :func:`corpus_bleu` rebuilds corpus BLEU-4.
        tokenized_predictions: PTB-tokenised prediction per image.
    """

    ids: list[Hashable]
    cider: float
    cider_per_image: np.ndarray
    bleu4: float
    bleu4_per_image: np.ndarray
    bleu_stats: np.ndarray
    tokenized_predictions: list[str]


def ptb_tokenize(captions: Mapping[K, Sequence[str]]) -> dict[K, list[str]]:
    """Tokenise captions with pycocoevalcap's ``PTBTokenizer`` (Java), keeping keys and caption order.

    Line-break characters that Java honours but ``PTBTokenizer.tokenize`` does not replace (:data:`JAVA_LINE_BREAKS`)
    become spaces first, as ``"\\n"`` does there; without this the official tokenizer silently misaligns every
    following caption. Captions without such characters tokenise exactly as in ``COCOEvalCap``.

    Args:
        captions: Key (image id) to its captions.

    Returns:
        Key to tokenised captions (lower case, tokens joined by single spaces, punctuation tokens removed).

    Raises:
        DataError: Java is missing, pycocoevalcap's tokenizer folder is not writable, or the output does not line up.
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    table = str.maketrans({c: " " for c in JAVA_LINE_BREAKS})
    data = {k: [{"caption": c.translate(table)} for c in v] for k, v in captions.items()}
    try:
        out = PTBTokenizer().tokenize(data)
    except FileNotFoundError as e:
        raise DataError(f"java: cannot run the PTB tokenizer ({e.strerror}); it needs a Java runtime") from None
    except PermissionError as e:
        raise DataError(f"{e.filename}: PTB tokenizer cannot write its temporary file ({e.strerror})") from None
    except (OSError, subprocess.SubprocessError) as e:
        raise DataError(f"PTB tokenizer failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    short = [k for k, v in captions.items() if len(out.get(k, [])) != len(v)]
    if short:
        raise DataError(f"PTB tokenizer returned a wrong caption count for {len(short)} images, e.g. {short[0]!r}")
    return {k: out[k] for k in captions}


def closest_ref_length(ref_lengths: Sequence[int], test_length: int) -> int:
    """The reference length closest to ``test_length``, the shorter one on ties (BleuScorer's ``"closest"`` option)."""
    return min((abs(n - test_length), n) for n in ref_lengths)[1]


def _stats_rows(cooked: Sequence[dict[str, Any]]) -> np.ndarray:
    """``[testlen, reflen, guess_1..4, correct_1..4]`` rows of ``cook_test`` results (``reflen``: the list of
    reference lengths, reduced to the closest one)."""
    rows = [
        [c["testlen"], closest_ref_length(c["reflen"], c["testlen"]), *c["guess"], *c["correct"]] for c in cooked
    ]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 2 + 2 * BLEU_N)


def bleu_statistics(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> np.ndarray:
    """Per-image BLEU sufficient statistics from pycocoevalcap's own n-gram cooking (``cook_refs`` / ``cook_test``).

    Args:
        references: Tokenised references per image.
        predictions: Tokenised prediction per image.

    Returns:
        ``(n, 2 + 2 * BLEU_N)`` float64 rows ``[testlen, reflen, guess_1..4, correct_1..4]``.
    """
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    return _stats_rows(
        [cook_test(hyp, cook_refs(list(refs), n=BLEU_N), n=BLEU_N) for refs, hyp in zip(references, predictions)]
    )


def _bleu(gts: Mapping[K, list[str]], res: Mapping[K, list[str]]) -> tuple[list[float], list[list[float]], np.ndarray]:
    """``Bleu(4).compute_score(gts, res)`` (pycocoevalcap/bleu/bleu.py: its checks, its ``BleuScorer`` with option
    "closest") plus the per-image statistics of :func:`bleu_statistics`, read from the scorer's own cooked n-grams
    instead of cooking every caption a second time."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    if gts.keys() != res.keys():
        raise ValueError("references and predictions must have the same image ids")
    scorer = BleuScorer(n=BLEU_N)
    for key in gts:
        hypo, ref = res[key], gts[key]
        if not (isinstance(hypo, list) and len(hypo) == 1 and isinstance(ref, list) and len(ref) >= 1):
            raise ValueError(f"image {key!r}: BLEU needs one prediction and at least one reference")
        scorer += (hypo[0], ref)
    score, scores = scorer.compute_score(option="closest", verbose=0)
    return score, scores, _stats_rows(scorer.ctest)


def corpus_bleu(stats: np.ndarray) -> np.ndarray:
    """Corpus BLEU-4 from summed statistics, BleuScorer.compute_score's corpus formula (epsilons included).

    ``prod_k ((correct_k + tiny) / (guess_k + small)) ** (1 / 4)``, times ``exp(1 - 1 / ratio)`` when
    ``ratio = (testlen + tiny) / (reflen + small) < 1``.

    Args:
        stats: ``(..., n, 2 + 2 * BLEU_N)`` per-image statistics (:func:`bleu_statistics`), e.g. one block per
            bootstrap replicate.

    Returns:
        ``(...)`` corpus BLEU-4 values (0-1).
    """
    total = np.asarray(stats, dtype=np.float64).sum(axis=-2)
    testlen, reflen = total[..., 0], total[..., 1]
    guess, correct = total[..., 2 : 2 + BLEU_N], total[..., 2 + BLEU_N :]
    precision = np.prod((correct + BLEU_TINY) / (guess + BLEU_SMALL), axis=-1)
    bleu = precision ** (1.0 / BLEU_N)
    ratio = (testlen + BLEU_TINY) / (reflen + BLEU_SMALL)
    with np.errstate(divide="ignore"):
        penalty = np.where(ratio < 1, np.exp(1.0 - 1.0 / np.where(ratio < 1, ratio, 1.0)), 1.0)
    return bleu * penalty


def caption_scores(references: Mapping[K, Sequence[str]], predictions: Mapping[K, str]) -> CaptionScores:
    """PTB-tokenise, then score CIDEr-D and BLEU-4 with pycocoevalcap (``COCOEvalCap.evaluate``'s steps).

    Args:
        references: Image id to its (raw) reference captions, at least one each; sets the image order.
        predictions: Image id to its one (raw) predicted caption; same keys as ``references``.

    Returns:
        Corpus and per-image scores on pycocoevalcap's scale.

    Raises:
        ValueError: The keys differ or an image has no reference.
        DataError: The tokenizer could not run.
    """
    from pycocoevalcap.cider.cider import Cider

    ids = list(references)
    if set(ids) != set(predictions) or len(ids) != len(predictions):
        raise ValueError("references and predictions must have the same image ids")
    if not ids or any(len(references[i]) == 0 for i in ids):
        raise ValueError("every image needs at least one reference caption")
    gts = ptb_tokenize({i: list(references[i]) for i in ids})
    res = ptb_tokenize({i: [predictions[i]] for i in ids})
    cider, cider_each = Cider().compute_score(gts, res)
    bleu, bleu_each, bleu_stats = _bleu(gts, res)
    return CaptionScores(
        ids=ids,
        cider=float(cider),
        cider_per_image=np.asarray(cider_each, dtype=np.float64),
        bleu4=float(bleu[BLEU_N - 1]),
        bleu4_per_image=np.asarray(bleu_each[BLEU_N - 1], dtype=np.float64),
        bleu_stats=bleu_stats,
        tokenized_predictions=[res[i][0] for i in ids],
    )
