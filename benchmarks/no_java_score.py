"""``python -m evaluation`` with pycocoevalcap's Java PTBTokenizer replaced by a pure-Python stand-in.

Used by ``benchmarks/score_speed.py`` to time the caption scorers' non-Java part end to end, as a fresh process like
the real command: the Java tokenizer (a JVM start and two tokenizer runs) is the same cost on our side and
lmms-eval's, so both sides get the same stand-in (:func:`stand_in_tokenize`) and the comparison is of everything
else. Not for real scores: the stand-in only lower-cases, splits on whitespace and drops punctuation.

    python benchmarks/no_java_score.py score cider --predictions P --annotations A --out R.json
"""

from __future__ import annotations

import string
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PUNCTUATION = frozenset(string.punctuation)


def stand_in_tokenize(self: Any, captions_for_image: dict[Any, list[dict[str, str]]]) -> dict[Any, list[str]]:
    """``PTBTokenizer.tokenize``'s contract without Java: key -> list of lower-cased, space-joined tokens."""
    out = {}
    for key, caps in captions_for_image.items():
        out[key] = [
            " ".join(w.strip(string.punctuation) for w in c["caption"].lower().split() if set(w) - PUNCTUATION)
            for c in caps
        ]
    return out


def patch() -> None:
    """Replace ``PTBTokenizer.tokenize`` in this process."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    PTBTokenizer.tokenize = stand_in_tokenize  # type: ignore[method-assign]


if __name__ == "__main__":
    patch()
    from evaluation.cli import main

    raise SystemExit(main())
