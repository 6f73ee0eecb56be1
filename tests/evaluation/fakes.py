"""Test doubles of the evaluation package: a deterministic grader (no model, no network)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from evaluation.graders import IMAGE_TEXT, JUDGE, GradeRequest


class FakeGrader:
    """Deterministic grader for tests: given scores by id, else a hash of the request mapped to 0.0, 0.1, ..., 1.0.

    Not registered by name: a test passes an instance as ``grader=``, so ``--grader fake`` stays unknown.
    """

    name = "fake"
    kinds = frozenset({JUDGE, IMAGE_TEXT})
    judges_predictions = False

    def __init__(self, scores: Mapping[str, float] | None = None) -> None:
        """Args: scores: Id to score; ids not listed get the hash score."""
        self.scores = dict(scores or {})
        self.requests: list[GradeRequest] = []

    def grade(self, requests: Sequence[GradeRequest]) -> list[float]:
        """Scores of ``requests``; every request is appended to :attr:`requests`."""
        self.requests.extend(requests)
        out = []
        for r in requests:
            if r.id in self.scores:
                out.append(float(self.scores[r.id]))
            else:
                digest = hashlib.sha256(f"{r.prompt}\0{r.image}".encode()).digest()
                out.append(int.from_bytes(digest[:4], "big") % 11 / 10)
        return out
