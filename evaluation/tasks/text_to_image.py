"""Text-to-image inputs of SemHiTok's generation table (Table 8): MJHQ-30K FID and GenAI-Bench.

* ``mjhq_fid``: ``inputs`` = MJHQ-30K ``meta_data.json`` (``{"<image_id>": {"category", "prompt"}}``, the prompts),
  ``annotations`` = the same file (the scorer's reference; its images ``<category>/<image_id>.jpg`` lie beside it or
  in ``mjhq30k_imgs/``). One ``generate`` query per id, written as ``<image_id>.png`` in a flat folder. ``limit``
  keeps the first N ids OF EVERY CATEGORY (N >= 2: the scorer computes an FID per category), and the subset
  ``meta_data.json`` AND copies of its reference images (``<category>/<image_id>.jpg``) go to
  ``<out>.references/``, where the scorer's default ``--reference-images`` finds them.
* ``genai_bench``: ``annotations`` = the official ``genai_image.json`` (``{"00000": {"prompt", ...}}``) with
  ``genai_skills.json`` beside it. One ``generate`` query per prompt id, written as ``<id>.jpeg`` the way the
  official ``genai_bench/generate.py`` of t2v_metrics saves them (PIL's JPEG defaults, quality 75), so the VQAScore
  grader sees the same compression as the published numbers. With ``limit`` the subset ``genai_image.json`` and
  ``genai_skills.json`` (skill lists restricted to the kept prompts) go to ``<out>.references/``.

The prompt of a query is the benchmark's text itself: both generate.py scripts feed it to the model unchanged.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.readers import preview
from evaluation.readers.generation import mjhq_reference_root
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_generated_images
from evaluation.writers._common import align, atomic_dir, check_names
from setok.io import DataError, array_to_image, atomic_path, read_json, write_json

GENAI_SKILLS = "genai_skills.json"
GENAI_SUFFIX = ".jpeg"  # t2v_metrics genai_bench/generate.py: sample.save(f"{prompt_idx}.jpeg"), PIL defaults
MJHQ_REFERENCE_SUFFIX = ".jpg"


def _entries(path: Path, field: str) -> dict[str, dict[str, Any]]:
    """A JSON object ``{id: {field: str, ...}}`` (``meta_data.json``, ``genai_image.json``), in file order."""
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a non-empty object of id -> entry")
    bad = [k for k, v in data.items() if not (isinstance(v, dict) and isinstance(v.get(field), str))]
    if bad:
        raise DataError(f"{path}: {len(bad)} entries lack a string {field!r}: {preview(bad)}")
    return data


def prompt_id(member: Any) -> str:
    """The prompt id a ``genai_skills.json`` member names: index ``i`` -> ``f"{i:05d}"`` (evaluate.py), else ``str``."""
    return f"{member:05d}" if isinstance(member, int) and not isinstance(member, bool) else str(member)


def write_jpeg_folder(images: Mapping[Any, Any], ids: list[str], out: Path) -> Path:
    """A flat folder of ``<id>.jpeg`` (PIL's JPEG defaults), one per id, replacing ``out`` atomically.

    Args:
        images: ``id -> PIL image`` or ``(H, W[, 3])`` uint8 / [0, 1] float array.
        ids: Every id that needs an image, in reference order.
        out: Output folder.

    Raises:
        DataError: Missing or unknown ids, ids unusable as file names, values that are not images.
    """
    where = f"{out}"
    pairs = align(images, ids, where)
    check_names([str(i) for i, _ in pairs], where)
    bad = [i for i, v in pairs if not isinstance(v, (Image.Image, np.ndarray))]
    if bad:
        raise DataError(f"{where}: not a PIL image or (H, W[, 3]) array for ids {preview(bad)}")
    with atomic_dir(out, overwrite=True) as tmp:
        for i, v in pairs:
            img = v.convert("RGB") if isinstance(v, Image.Image) else array_to_image(v)
            img.save(tmp / f"{i}{GENAI_SUFFIX}", format="JPEG")
    return Path(out)


class MjhqTask(BenchmarkTask):
    """MJHQ-30K: one ``generate`` query per image id of ``meta_data.json``, prompted by its ``prompt``."""

    def __init__(self, name: str, *, prompts: Path, meta: Path, limit: int | None = None) -> None:
        """Args: name: ``mjhq_fid``. prompts: ``meta_data.json`` read for the prompts (``inputs``). meta: The
        scorer's ``meta_data.json`` (``annotations``; usually the same file). limit: First N ids per category.

        Raises:
            DataError: ``limit`` below 2.
        """
        super().__init__(name, limit=limit)
        if limit is not None and limit < 2:
            raise DataError(f"benchmarks.{name}.limit: must be >= 2 (images per category: FID needs two), got {limit}")
        self.prompts, self.meta = Path(prompts), Path(meta)
        self._meta: dict[str, dict[str, Any]] = {}

    def load(self) -> list[Query]:
        prompts = _entries(self.prompts, "prompt")
        self._meta = _entries(self.meta, "category")
        if list(prompts) != list(self._meta):
            raise DataError(f"{self.prompts}: image ids differ from {self.meta} (they must list the same ids)")
        return [Query(id=k, kind="generate", prompt=v["prompt"], image=None) for k, v in prompts.items()]

    def select(self, queries: list[Query]) -> list[Query]:
        """The first ``limit`` ids of every category, in file order (all without ``limit``)."""
        if self.limit is None:
            return queries
        seen: dict[str, int] = {}
        kept = []
        for q in queries:
            category = self._meta[q.id]["category"]
            seen[category] = seen.get(category, 0) + 1
            if seen[category] <= self.limit:
                kept.append(q)
        return kept

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.meta}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        root = mjhq_reference_root(self.meta)
        paths = self.subset_paths(folder)
        for q in kept:
            rel = Path(self._meta[q.id]["category"]) / f"{q.id}{MJHQ_REFERENCE_SUFFIX}"
            if not (root / rel).is_file():
                raise DataError(f"{root / rel}: MJHQ reference image not found")
            with atomic_path(folder / rel) as tmp:
                shutil.copyfile(root / rel, tmp)
        write_json(paths["annotations"], {q.id: self._meta[q.id] for q in kept})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        ids = [q.id for q in self.select(self.all_queries())]
        return write_generated_images(outputs, out, ids=ids, overwrite=True)


class GenAIBenchTask(BenchmarkTask):
    """GenAI-Bench: one ``generate`` query per prompt id of ``genai_image.json``."""

    def __init__(self, name: str, *, annotations: Path, limit: int | None = None) -> None:
        """Args: name: ``genai_bench``. annotations: ``genai_image.json`` (``genai_skills.json`` beside it).
        limit: First N prompts."""
        super().__init__(name, limit=limit)
        self.annotations = Path(annotations)
        self.skills = self.annotations.parent / GENAI_SKILLS
        self._entries: dict[str, dict[str, Any]] = {}

    def load(self) -> list[Query]:
        self._entries = _entries(self.annotations, "prompt")
        if not self.skills.is_file():
            raise DataError(f"{self.skills}: file not found (the skill lists, beside {self.annotations.name})")
        return [Query(id=k, kind="generate", prompt=v["prompt"], image=None) for k, v in self._entries.items()]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        ids = {q.id for q in kept}
        skills = read_json(self.skills)
        if not isinstance(skills, dict) or not all(isinstance(v, list) for v in skills.values()):
            raise DataError(f"{self.skills}: expected an object of skill -> list of prompt indices")
        subset = {tag: [m for m in members if prompt_id(m) in ids] for tag, members in skills.items()}
        paths = self.subset_paths(folder)
        write_json(folder / GENAI_SKILLS, subset)
        write_json(paths["annotations"], {q.id: self._entries[q.id] for q in kept})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_jpeg_folder(outputs, [q.id for q in self.select(self.all_queries())], out)
