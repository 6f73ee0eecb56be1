"""Multiple-choice inputs of SemHiTok's understanding table: SEED-Bench-1 (image questions), MMBench, MMMU.

* ``seed``: the official ``SEED-Bench.json`` (``{"questions": [{"question_id", "question", "choice_a".."choice_d",
  "answer", "data_id", "data_type", "question_type_id"}], "question_type": {name: id}}``) and the
  ``SEED-Bench-image/`` folder holding ``<data_id>``. Only ``data_type == "image"`` questions are asked, so the
  scorer runs with ``--data-type image`` (``options: {data_type: image}``). Query id: ``question_id``.
* ``mmbench``: the official TSV (``MMBench_DEV_EN.tsv``: ``index, question, hint, A..D, answer, category, image,
  l2-category, ...``) with every circular copy as its own row (``index + k * 1000000``); each row is a query, id
  ``index`` (int). The ``image`` cell is a base64 image, or (VLMEvalKit's space saving, cells of <= 64 characters)
  the index of the row whose image it shares.
* ``mmmu``: the HF ``MMMU/MMMU`` snapshot folder (``images``: ``<Subject>/<split>-0000x-of-0000y.parquet``, columns
  ``id, question, options, answer, question_type, image_1..image_7 {bytes, path}``) and the JSON list export the
  scorer reads (``annotations``). Queries follow the export's order; the text comes from the parquet.

Images held inside the files (MMBench base64, MMMU parquet bytes) are decoded ONCE into a cache folder,
``$SETOK_CACHE/<benchmark>/<first 12 hex of the source file's sha256>/<id>.<ext>`` (``$SETOK_CACHE`` defaults to
``~/.cache/setok``): the bytes as stored, written atomically, the extension from the decoded format. The folder name
changes with the file's content, so a cache entry never outlives its source.
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import io
import os
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from evaluation.readers import preview
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.tasks.vqa import SHORT_ANSWER
from evaluation.writers import write_mmbench, write_mmmu, write_seed
from setok.io import DataError, atomic_path, read_json, read_jsonl, write_json, write_jsonl

# LLaVA-1.5's multiple-choice instruction (haotian-liu/LLaVA llava/eval/model_vqa_mmbench.py --single-pred-prompt,
# playground/data/eval/seed_bench/llava-seed-bench.jsonl); lmms-eval keeps it as the seedbench / mmbench_en prompt.
MC_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
# lmms-eval (0.7.3, the installed version) mmmu/utils.py construct_prompt: options, a blank line, then the instruction
# (mmmu_val.yaml lmms_eval_specific_kwargs.default).
MMMU_MC_PROMPT = "Answer with the option's letter from the given choices directly."
MMMU_OPEN_PROMPT = SHORT_ANSWER.lstrip("\n")
# A letter or a short phrase: lmms-eval's mmmu_val.yaml asked for 16 new tokens (v0.1-v0.2; 0.7.3 raised it to 128
# for reasoning models). Our scorers read the first character (SEED) or the last tokens (MMBench, MMMU).
MC_MAX_NEW_TOKENS = 16
CACHE_ENV = "SETOK_CACHE"
IMAGE_REF_MAX = 64  # VLMEvalKit ImageBaseDataset: an image cell this short names another row's index
CIRCULAR = 1_000_000  # MMBench circular copies: index = main index + k * CIRCULAR
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
SEED_FIELDS = ("question_id", "question", "choice_a", "choice_b", "choice_c", "choice_d", "data_id", "data_type")
MMMU_COLUMNS = ("id", "question", "options", "question_type", "image_1")


# ----------------------------------------------------------------------------------------------- image cache


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_folder(benchmark: str, source: Path) -> Path:
    """``$SETOK_CACHE`` (default ``~/.cache/setok``) ``/<benchmark>/<first 12 hex of sha256(source)>``."""
    root = Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else Path.home() / ".cache" / "setok"
    return root / benchmark / file_sha256(source)[:12]


def cache_image(data: bytes, folder: Path, stem: str, where: str) -> Path:
    """Store encoded image bytes as ``folder/<stem>.<ext>`` (atomically, once) and return the path.

    Args:
        data: The image file's bytes (JPEG, PNG, ...), stored unchanged.
        folder: The cache folder (:func:`cache_folder`).
        stem: File name without extension (the query id).
        where: ``"<source file>: <item>"`` for the error message.

    Raises:
        DataError: ``data`` is not a readable image (one line starting with ``where``).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            path = folder / f"{stem}.{EXTENSIONS.get(im.format or '', (im.format or 'img').lower())}"
            if path.is_file() and path.stat().st_size == len(data):
                return path  # decoded and checked when it was written
            im.load()  # the whole image, so a truncated file fails here and not in the model
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{where}: not a decodable image ({e.__class__.__name__}: {e})") from None
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def options_text(options: list[str]) -> str:
    """``"A. first\\nB. second..."``: the lettered options as LLaVA and lmms-eval list them."""
    return "\n".join(f"{string.ascii_uppercase[k]}. {o}" for k, o in enumerate(options))


# ----------------------------------------------------------------------------------------------- SEED-Bench-1


class SeedTask(BenchmarkTask):
    """SEED-Bench-1: one ``answer`` query per image question, in file order."""

    def __init__(self, name: str, *, annotations: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``seed``. annotations: ``SEED-Bench.json``. images: ``SEED-Bench-image/``. limit: First N."""
        super().__init__(name, limit=limit)
        self.annotations, self.images = Path(annotations), Path(images)
        self._data: dict[str, Any] = {}
        self._records: dict[Any, dict[str, Any]] = {}

    def load(self) -> list[Query]:
        data = read_json(self.annotations)
        questions = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(questions, list):
            raise DataError(f"{self.annotations}: expected {{'questions': [...]}} (SEED-Bench.json)")
        for i, q in enumerate(questions):
            if not isinstance(q, dict) or any(f not in q for f in SEED_FIELDS):
                raise DataError(f"{self.annotations}: questions[{i}] lacks one of {', '.join(SEED_FIELDS)}")
        self._data = data
        self._records = {q["question_id"]: q for q in questions if q["data_type"] == "image"}
        return [
            Query(id=q["question_id"], kind="answer", image=self.images / str(q["data_id"]),
                  prompt=q["question"] + "\n" + options_text([q[f"choice_{c}"] for c in "abcd"]) + MC_SUFFIX,
                  max_new_tokens=MC_MAX_NEW_TOKENS)
            for q in self._records.values()
        ]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        paths = self.subset_paths(folder)
        write_json(paths["annotations"], {**self._data, "questions": [self._records[q.id] for q in kept]})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_seed(outputs, references["annotations"], out, data_type="image")


# ----------------------------------------------------------------------------------------------- MMBench


def _missing(value: Any) -> bool:
    """A pandas-read cell with no value (NaN: an empty cell, ``nan``, ``None``, ...)."""
    return value is None or (isinstance(value, float) and value != value)


class MmbenchTask(BenchmarkTask):
    """MMBench: one ``answer`` query per TSV row (every circular copy), images decoded to the cache.

    ``limit`` keeps the first N QUESTIONS (main indices in file order) with all their circular copies, since the
    circular scorer judges a question by all of its rows.
    """

    def __init__(self, name: str, *, annotations: Path, limit: int | None = None) -> None:
        """Args: name: ``mmbench``. annotations: The official TSV. limit: First N questions (with their copies)."""
        super().__init__(name, limit=limit)
        self.annotations = Path(annotations)

    def _table(self, raw: bool) -> Any:
        """The TSV as strings: with pandas' missing values (as VLMEvalKit reads it), or verbatim (``raw``)."""
        import pandas as pd

        if not self.annotations.is_file():
            raise DataError(f"{self.annotations}: file not found")
        try:
            return pd.read_csv(self.annotations, sep="\t", dtype=str, keep_default_na=not raw)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"{self.annotations}: not a readable TSV ({str(e).splitlines()[0]})") from None

    def load(self) -> list[Query]:
        df = self._table(raw=False)
        df.columns = [c if c in string.ascii_uppercase else str(c).lower() for c in df.columns]
        lacking = [c for c in ("index", "question", "A", "B", "image") if c not in df.columns]
        if lacking:
            raise DataError(f"{self.annotations}: missing columns {', '.join(lacking)}")
        letters = [c for c in string.ascii_uppercase if c in df.columns]
        rows = df.to_dict("records")
        folder = cache_folder("mmbench", self.annotations)
        images: dict[str, Path] = {}
        for r in rows:  # decode every stored image once
            cell = r["image"]
            if not _missing(cell) and len(cell) > IMAGE_REF_MAX:
                where = f"{self.annotations}: index {r['index']}"
                try:
                    data = base64.b64decode(cell)
                except (binascii.Error, ValueError) as e:
                    raise DataError(f"{where}: the image cell is not base64 ({e})") from None
                images[str(r["index"])] = cache_image(data, folder, str(r["index"]), where)
        queries = []
        for r in rows:
            cell = r["image"]
            image = images.get(str(r["index"])) if _missing(cell) or len(cell) > IMAGE_REF_MAX else images.get(cell)
            if image is None:
                raise DataError(f"{self.annotations}: index {r['index']} has no image (cell {preview([cell])})")
            options = []
            for c in letters:  # LLaVA get_options: the options up to the first empty one
                if _missing(r[c]):
                    break
                options.append(r[c])
            hint = r.get("hint")
            question = r["question"] if _missing(hint) else f"{hint}\n{r['question']}"
            try:
                index = int(r["index"])
            except (TypeError, ValueError):
                raise DataError(f"{self.annotations}: index {r['index']!r} is not an integer") from None
            queries.append(Query(id=index, kind="answer", image=image, max_new_tokens=MC_MAX_NEW_TOKENS,
                                 prompt=question + "\n" + options_text(options) + MC_SUFFIX))
        return queries

    def select(self, queries: list[Query]) -> list[Query]:
        if self.limit is None:
            return queries
        mains = list(dict.fromkeys(q.id % CIRCULAR for q in queries))[: self.limit]
        return [q for q in queries if q.id % CIRCULAR in set(mains)]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        df = self._table(raw=True)
        column = next(c for c in df.columns if str(c).lower() == "index")
        ids = {str(q.id) for q in kept}
        paths = self.subset_paths(folder)
        with atomic_path(paths["annotations"]) as tmp:
            df[df[column].str.strip().isin(ids)].to_csv(tmp, sep="\t", index=False)
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_mmbench(outputs, references["annotations"], out)


# ----------------------------------------------------------------------------------------------- MMMU


class MmmuTask(BenchmarkTask):
    """MMMU: one ``answer`` query per question of the export, shown ``image_1`` only.

    Our queries carry one image, so a question that also refers to ``<image 2>`` or later (or to images inside its
    options) still gets ``image_1`` alone, its text unchanged. lmms-eval's ``mmmu_doc_to_visual`` passes every
    ``<image n>`` the text names instead (sorted); the single-image choice is ours, forced by :class:`Query`.
    """

    def __init__(self, name: str, *, annotations: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``mmmu``. annotations: The JSON list (or JSON lines) export. images: The parquet snapshot
        folder. limit: First N questions of the export."""
        super().__init__(name, limit=limit)
        self.annotations, self.images = Path(annotations), Path(images)
        self._records: dict[str, dict[str, Any]] = {}

    def _export(self) -> list[dict[str, Any]]:
        """The export's records, each an object with a string ``id`` of the form ``<split>_<Subject>_<n>``."""
        path = self.annotations
        data = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
        if not isinstance(data, list) or not data:
            raise DataError(f"{path}: expected a non-empty JSON list (or JSON lines) of MMMU questions")
        for i, r in enumerate(data):
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or r["id"].count("_") < 2:
                raise DataError(f"{path}: record {i} lacks an id of the form <split>_<Subject>_<n>")
        return data

    def _parquet_rows(self, split: str, subject: str, ids: list[str]) -> dict[str, tuple[dict[str, Any], Path]]:
        """``id -> (row, parquet file)`` for ``ids`` from ``<images>/<subject>/<split>-*.parquet``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = sorted((self.images / subject).glob(f"{split}-*.parquet"))
        if not files:
            raise DataError(f"{self.images}: no {subject}/{split}-*.parquet for {len(ids)} questions of "
                            f"{self.annotations} (the MMMU/MMMU parquet folder)")
        rows: dict[str, tuple[dict[str, Any], Path]] = {}
        for f in files:
            try:
                table = pq.read_table(f, columns=list(MMMU_COLUMNS))
            except (pa.ArrowException, OSError, KeyError) as e:
                raise DataError(f"{f}: not an MMMU parquet file ({str(e).splitlines()[0]})") from None
            rows.update({r["id"]: (r, f) for r in table.to_pylist()})
        missing = [i for i in ids if i not in rows]
        if missing:
            raise DataError(f"{self.images / subject}: {len(missing)} questions of {self.annotations} are in no "
                            f"{split}-*.parquet: {preview(missing)}")
        return rows

    def load(self) -> list[Query]:
        export = self._export()
        self._records = {r["id"]: r for r in export}
        groups: dict[tuple[str, str], list[str]] = {}
        for qid in self._records:
            parts = qid.split("_")
            groups.setdefault((parts[0], "_".join(parts[1:-1])), []).append(qid)
        rows: dict[str, tuple[dict[str, Any], Path]] = {}
        for (split, subject), ids in groups.items():
            rows.update(self._parquet_rows(split, subject, ids))
        folders: dict[Path, Path] = {}
        queries = []
        for qid in self._records:
            row, source = rows[qid]
            where = f"{source}: {qid}"
            image = row.get("image_1")
            if not isinstance(image, dict) or not image.get("bytes"):
                raise DataError(f"{where}: image_1 holds no image bytes")
            folder = folders.setdefault(source, cache_folder("mmmu", source))
            queries.append(Query(id=qid, kind="answer", prompt=self._prompt(row, where),
                                 image=cache_image(image["bytes"], folder, qid, where),
                                 max_new_tokens=MC_MAX_NEW_TOKENS))
        return queries

    @staticmethod
    def _prompt(row: dict[str, Any], where: str) -> str:
        """lmms-eval's ``construct_prompt`` with the default multiple-choice and open-ended instructions."""
        if not isinstance(row.get("question"), str):
            raise DataError(f"{where}: 'question' is not a string")
        if row.get("question_type") != "multiple-choice":
            return f"{row['question']}\n\n{MMMU_OPEN_PROMPT}"
        try:
            options = ast.literal_eval(row["options"]) if isinstance(row["options"], str) else row["options"]
        except (ValueError, SyntaxError):
            options = None
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            raise DataError(f"{where}: 'options' is not a list of strings (or its Python repr)")
        return f"{row['question']}\n{options_text(options)}\n\n{MMMU_MC_PROMPT}"

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        paths = self.subset_paths(folder)
        records = [self._records[q.id] for q in kept]
        if self.annotations.suffix == ".jsonl":
            write_jsonl(paths["annotations"], records)
        else:
            write_json(paths["annotations"], records)
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_mmmu(outputs, references["annotations"], out)
