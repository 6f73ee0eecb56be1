"""Conversation records: LLaVA's JSON (LLaVA-595K, LLaVA-v1.5-mix-665K, ALLaVA, ShareGPT4V) and the ShareGPT-style
text tables the SemHiTok MLLM trains on (Magpie's parquet folders, Evol-Instruct's JSON).

``[{"id", "image" (optional, relative to the image root), "conversations": [{"from": "human"|"gpt", "value"}]}]`` as a
JSON list, JSON lines, a parquet file or a folder of parquet files (Hugging Face's ``data/train-*.parquet``, read in
name order); ``<image>`` in a human turn marks where the image goes (LLaVA puts it first when the tag is absent). A
leading ``system`` turn is folded into the first human turn, after a blank line (ours: the chat template brings its own
system prompt). Images stored inside parquet rows are unpacked first by ``python -m setok.data.parquet_to_llava``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.sources._common import check_images, require
from setok.io import DataError, read_json

ROLES = {"human": "user", "gpt": "assistant", "user": "user", "assistant": "assistant"}
IMAGE_TAG = "<image>"
CONVERSATION_COLUMNS = ("id", "image", "conversations")


def parquet_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``*.parquet`` below the folder ``path`` in name order."""
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            raise DataError(f"{path}: no .parquet files in this folder")
        return files
    return [path]


def read_parquet_rows(path: Path, columns: tuple[str, ...], *, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of a parquet file or folder as dicts of the ``columns`` it has (``required`` ones must be there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for f in parquet_files(path):
        try:
            names = pq.read_schema(f).names
            missing = [c for c in required if c not in names]
            if missing:
                raise DataError(f"{f}: parquet without column(s) {', '.join(missing)} (has {', '.join(names)})")
            rows.extend(pq.read_table(f, columns=[c for c in columns if c in names]).to_pylist())
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{f}: not a readable parquet file ({e.__class__.__name__}: {e})") from None
    return rows


def read_records(path: Path) -> list[dict[str, Any]]:
    """Conversation records from a JSON list, JSON lines (``.jsonl``) or parquet (file or folder)."""
    if path.is_dir() or path.suffix == ".parquet":
        return read_parquet_rows(path, CONVERSATION_COLUMNS, required=("conversations",))
    if path.suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise DataError(f"{path}: line {lineno} is not JSON ({e.msg})") from None
        return rows
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of conversations")
    return data


def _content(text: str, image: ImageRef | None, first: bool) -> tuple[str | ImageRef, ...]:
    if IMAGE_TAG in text and image is not None:
        before, _, after = text.partition(IMAGE_TAG)
        parts: list[str | ImageRef] = [before.strip("\n"), image, after.strip("\n")]
        return tuple(p for p in parts if not isinstance(p, str) or p)
    if image is not None and first:
        return (image, text.strip("\n"))
    return (text,)


def read_llava(annotations: str | Path, root: str | Path | None) -> list[MultimodalSample]:
    """One ``conversation`` sample per record (``root``: the image folder; None for text-only tables)."""
    path = require(annotations, "conversation records (LLaVA JSON, JSON lines or parquet)")
    data = read_records(path)
    samples, images = [], []
    for n, rec in enumerate(data):
        sid = rec.get("id", n) if isinstance(rec, dict) else n
        sid = n if sid is None else sid
        convs = rec.get("conversations") if isinstance(rec, dict) else None
        if not isinstance(convs, list) or not convs:
            raise DataError(f"{path}: sample {sid!r} has no 'conversations' list")
        image = None
        if rec.get("image"):
            if not isinstance(rec["image"], str):
                raise DataError(f"{path}: sample {sid!r} stores its image inside the file; unpack it with python -m "
                                f"setok.data.parquet_to_llava and read the JSON that writes")
            if root is None:
                raise DataError(f"{path}: sample {sid!r} names image {rec['image']!r} but the source has no root")
            image = ImageRef(Path(root) / rec["image"])
            images.append(image.path)
        convs = _fold_system(convs, path, sid)
        turns = []
        for k, turn in enumerate(convs):
            if not isinstance(turn, dict):
                raise DataError(f"{path}: sample {sid!r} turn {k} is not a {{'from', 'value'}} record")
            role = ROLES.get(turn.get("from"))
            if role is None:
                raise DataError(f"{path}: sample {sid!r} turn {k} has unknown role {turn.get('from')!r}")
            if role != ("user" if k % 2 == 0 else "assistant"):
                raise DataError(f"{path}: sample {sid!r}: turns must alternate human / gpt, starting with human")
            turns.append(Turn(role, _content(turn.get("value", ""), image if role == "user" else None, k == 0)))
        samples.append(MultimodalSample(str(sid), "conversation", tuple(turns)))
    check_images(images, path)
    return samples


def _fold_system(convs: list[Any], path: Path, sid: Any) -> list[Any]:
    """A leading ``system`` turn becomes the first lines of the first human turn."""
    if not isinstance(convs[0], dict) or convs[0].get("from") != "system":
        return convs
    if len(convs) < 2 or not isinstance(convs[1], dict) or convs[1].get("from") not in ("human", "user"):
        raise DataError(f"{path}: sample {sid!r}: a system turn must be followed by a human turn")
    system = str(convs[0].get("value") or "").strip()
    first = dict(convs[1])
    first["value"] = f"{system}\n\n{first.get('value', '')}" if system else first.get("value", "")
    return [first, *convs[2:]]
