"""A text corpus in SlimPajama's layout: ``.jsonl`` or ``.jsonl.zst`` lines ``{"text": ..., "meta": {...}}``."""
from __future__ import annotations

import io
import json
from pathlib import Path

from setok.data.multimodal import MultimodalSample, Turn
from setok.data.sources._common import require
from setok.io import DataError


def read_text_corpus(path: str | Path, *, limit: int | None = None) -> list[MultimodalSample]:
    """One sample per line: a single assistant turn (every token is a target)."""
    path = require(path, "text corpus")
    raw = path.open("rb")
    if path.suffix == ".zst":
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(raw)
    out = []
    with io.TextIOWrapper(raw, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if limit is not None and len(out) >= limit:
                break
            if not line.strip():
                continue
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(f"{path}: line {lineno} is not a JSON object with 'text'") from None
            out.append(MultimodalSample(str(lineno), "text", (Turn("assistant", (text,)),)))
    return out
