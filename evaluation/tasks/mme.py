"""MME inputs: the ``eval_tool/Your_Results`` templates (the scorer's reference) + the MME release images.

The templates ``<subtask>.txt`` hold ``image<TAB>question<TAB>gt`` lines, exactly the questions ``write_mme`` needs
answered, so the queries are read from them (id ``(subtask, image, question)``). The image of a line is looked up
in the release folder ``MME_Benchmark_release_version`` in its two layouts, then flat:
``<subtask>/images/<image>`` (artwork, celebrity, landmark, posters, scene: images beside
``questions_answers_YN/``), ``<subtask>/<image>`` (the other subtasks: images beside their ``.txt``), ``<image>``.

``limit`` keeps, in every subtask, the questions of its first images up to N questions, rounded up to a whole image:
the scorer needs both questions of an image (acc+) and every scored subtask present.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.metrics.mme import SUBTASKS
from evaluation.readers import preview
from evaluation.readers.mme import read_lines
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.tasks.vqa import SHORT_ANSWER
from evaluation.writers import write_mme
from evaluation.writers._common import atomic_dir
from setok.io import DataError, write_text

# LLaVA-1.5 and lmms-eval ask MME's questions with the release's "Please answer yes or no." replaced by the short-
# answer instruction LLaVA-665K trains (LLaVA's playground/data/eval/MME/llava_mme.jsonl; lmms-eval's
# mme_doc_to_text: the suffix removed, then "\nAnswer the question using a single word or phrase.").
YES_NO = "Please answer yes or no."


def mme_prompt(question: str) -> str:
    """The question of a template line as LLaVA-1.5 asks it (``SHORT_ANSWER`` instead of the yes/no sentence)."""
    return question.replace(YES_NO, "").strip() + SHORT_ANSWER


def find_image(root: Path, subtask: str, image: str) -> Path:
    """The release file of ``image``: ``<subtask>/images/``, then ``<subtask>/``, then ``root`` itself (flat).

    Returns the first existing candidate, else the ``<subtask>/<image>`` path (reported missing by the caller).
    """
    candidates = (root / subtask / "images" / image, root / subtask / image, root / image)
    return next((c for c in candidates if c.is_file()), candidates[1])


class MmeTask(BenchmarkTask):
    """MME: one ``answer`` query per template line of the chosen subtasks."""

    def __init__(self, name: str, *, templates: Path, images: Path, subtasks: Sequence[str] | None = None,
                 limit: int | None = None) -> None:
        """Args: name: ``mme``. templates: ``Your_Results`` folder. images: ``MME_Benchmark_release_version``.
        subtasks: Subtasks to ask (default all 14; the scorer's ``--subtasks``). limit: Questions per subtask."""
        super().__init__(name, limit=limit)
        self.templates, self.images = Path(templates), Path(images)
        self.subtasks = list(subtasks or SUBTASKS)
        unknown = [s for s in self.subtasks if s not in SUBTASKS]
        if unknown:
            raise DataError(f"{self.templates}: unknown MME subtasks {preview(unknown)}; known: {', '.join(SUBTASKS)}")
        self._gt: dict[tuple[str, str, str], str] = {}

    def load(self) -> list[Query]:
        queries = []
        for s in self.subtasks:
            for f in read_lines(self.templates / f"{s}.txt", min_fields=3, max_fields=4):
                key = (s, f[0], f[1])
                self._gt[key] = f[2]
                queries.append(Query(id=key, kind="answer", prompt=mme_prompt(f[1]),
                                     image=find_image(self.images, s, f[0])))
        return queries

    def select(self, queries: list[Query]) -> list[Query]:
        if self.limit is None:
            return queries
        per_subtask = math.ceil(self.limit / 2)  # two questions per image
        order: dict[str, dict[str, int]] = {}  # subtask -> image -> rank of first appearance
        kept = []
        for q in queries:
            ranks = order.setdefault(q.id[0], {})
            if ranks.setdefault(q.id[1], len(ranks)) < per_subtask:
                kept.append(q)
        return kept

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.templates}

    def subset_paths(self, folder: Path) -> dict[str, Path]:
        return {"annotations": folder / "Your_Results"}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        target = self.subset_paths(folder)["annotations"]
        with atomic_dir(target, overwrite=True) as tmp:
            for s in self.subtasks:
                lines = [f"{q.id[1]}\t{q.id[2]}\t{self._gt[q.id]}\n" for q in kept if q.id[0] == s]
                write_text(tmp / f"{s}.txt", "".join(lines))
        return {"annotations": target}

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_mme(outputs, references["annotations"], out, subtasks=self.subtasks, overwrite=True)
