"""Image-editing inputs (MagicBrush, EVR, MA5K): one ``edit`` query per TARGET image the scorer compares with.

The scorer's reference (``annotations``) is a folder of target images; the writer saves every edited image under
its target's relative path. So the targets folder decides what is asked (MagicBrush's all-turn or final-turn
setting is the choice of targets put there), and each target is traced back to its source image and instruction
in the official files (``inputs``), found by relative path, else by name, else by name without extension (a target
converted to PNG, ``3458_B.png`` for the release's ``3458_B.jpg``, is still found).

* MagicBrush test (``edit_sessions.json``: ``{"<session>": [{"input", "mask", "instruction", "output"}, ...]}``,
  images ``images/<session>/<file>``): target ``<session>/<output>``; every turn starts from its own ``input``
  (the ground-truth previous output for turn >= 2: the independent, single-turn protocol).
* EVR (Tan et al. 2019, airsplay/VisualRelationships ``test.json``: ``[{"img0", "img1", "sents": [3], "uid"}]``,
  images in one folder): target ``img1``, source ``img0``, instruction ``sents[0]`` (the first annotator's
  request: one edited image per target, so one instruction).
* MA5K (Shi et al. 2021, jshi31/T2ONet ``annotations/test_sess_1.json``: ``[{"input", "output", "request"}]``,
  images in ``images/``): target ``output``, source ``input``, instruction ``request``.
A target listed twice in EVR/MA5K (two requests for one image pair) takes its first record.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from evaluation.readers.editing import list_image_files
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_edited_images
from evaluation.writers._common import atomic_dir
from setok.io import DataError, read_json

# The prompt of an editing query is the instruction itself (SeTok Sec. 3, following Pan et al. 2024 / MGIE).
Source = tuple[Path, str]  # (input image, instruction)


def _stem(path: str) -> str:
    return str(PurePosixPath(path).with_suffix(""))


def _lookup(sources: dict[str, Source], rel: str, where: Path) -> Source:
    """The source of target ``rel``: by relative path, file name, then either without extension."""
    name = PurePosixPath(rel).name
    for key in (rel, name, _stem(rel), _stem(name)):
        if key in sources:
            return sources[key]
    raise DataError(f"{where}: no edit instruction for target {rel}")


class EditingTask(BenchmarkTask):
    """One ``edit`` query per image of the targets folder (id = its relative path)."""

    def __init__(self, name: str, *, targets: Path, inputs: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: Benchmark. targets: Target image folder (``annotations``). inputs: Official instruction
        file. images: Source image folder. limit: First N targets in sorted order."""
        super().__init__(name, limit=limit)
        self.targets, self.inputs, self.images = Path(targets), Path(inputs), Path(images)
        self._files: dict[str, Path] = {}

    @abstractmethod
    def sources(self) -> dict[str, Source]:
        """Lookup keys (relative path / name / stems of the output image) -> (source image, instruction)."""

    def load(self) -> list[Query]:
        sources = self.sources()
        self._files = list_image_files(self.targets)
        queries = []
        for rel in self._files:
            image, instruction = _lookup(sources, rel, self.inputs)
            queries.append(Query(id=rel, kind="edit", prompt=instruction, image=image))
        return queries

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.targets}

    def subset_paths(self, folder: Path) -> dict[str, Path]:
        return {"annotations": folder / "targets"}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        target = self.subset_paths(folder)["annotations"]
        with atomic_dir(target, overwrite=True) as tmp:
            for q in kept:
                (tmp / q.id).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._files[q.id], tmp / q.id)
        return {"annotations": target}

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_edited_images(outputs, references["annotations"], out, overwrite=True)


class MagicBrushTask(EditingTask):
    """MagicBrush test: sources from ``edit_sessions.json`` (every turn, keyed ``<session>/<output>``)."""

    def sources(self) -> dict[str, Source]:
        data = read_json(self.inputs)
        if not isinstance(data, dict) or not data:
            raise DataError(f"{self.inputs}: expected edit_sessions.json, an object of session -> list of turns")
        out: dict[str, Source] = {}
        for session, turns in data.items():
            if not isinstance(turns, list) or not all(
                    isinstance(t, dict) and all(isinstance(t.get(k), str) for k in ("input", "instruction", "output"))
                    for t in turns):
                raise DataError(f"{self.inputs}: session {session} is not a list of turns with string "
                                "'input', 'instruction' and 'output'")
            for t in turns:
                source = (self.images / session / t["input"], t["instruction"].strip())
                rel = f"{session}/{t['output']}"
                out.setdefault(rel, source)
                out.setdefault(_stem(rel), source)
        return out


class PairListTask(EditingTask):
    """EVR / MA5K: a JSON list of ``{input, output, instruction}`` records, images in one folder."""

    def __init__(self, name: str, *, targets: Path, inputs: Path, images: Path, input_key: str, output_key: str,
                 instruction: Callable[[dict[str, Any]], Any], limit: int | None = None) -> None:
        """Args: as :class:`EditingTask`, plus the record's source and target fields and its instruction getter."""
        super().__init__(name, targets=targets, inputs=inputs, images=images, limit=limit)
        self.input_key, self.output_key, self.instruction = input_key, output_key, instruction

    def sources(self) -> dict[str, Source]:
        data = read_json(self.inputs)
        if not isinstance(data, list) or not data:
            raise DataError(f"{self.inputs}: expected a non-empty JSON list of edit records")
        out: dict[str, Source] = {}
        for i, r in enumerate(data):
            text = self.instruction(r) if isinstance(r, dict) else None
            if not (isinstance(text, str) and isinstance(r.get(self.input_key), str)
                    and isinstance(r.get(self.output_key), str)):
                raise DataError(f"{self.inputs}: record {i} lacks string {self.input_key!r}, {self.output_key!r} "
                                "or an instruction")
            source = (self.images / r[self.input_key], text.strip())
            out.setdefault(r[self.output_key], source)
            out.setdefault(_stem(r[self.output_key]), source)
        return out
