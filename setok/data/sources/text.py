"""Text-only sources: a corpus in SlimPajama's layout (``.jsonl`` or ``.jsonl.zst`` lines ``{"text": ..., "meta":
{...}}``) and instructions in Alpaca's (``alpaca_data.json``: a list of ``{"instruction", "input", "output"}``)."""
from __future__ import annotations

import io
import json
from pathlib import Path

from setok.data.multimodal import MultimodalSample, Turn
from setok.data.sources._common import require
from setok.io import DataError, read_json


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


def read_alpaca(path: str | Path) -> list[MultimodalSample]:
    """One instruction sample per record: the user turn is the instruction, then its input after a blank line when
    there is one (Alpaca's own prompt puts the input in a separate section); the assistant turn is the output."""
    path = require(path, "Alpaca instruction JSON")
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {{'instruction', 'input', 'output'}} records")
    out = []
    for n, rec in enumerate(data):
        if not isinstance(rec, dict) or not isinstance(rec.get("instruction"), str) or \
                not isinstance(rec.get("output"), str):
            raise DataError(f"{path}: record {n} lacks a string 'instruction' or 'output'")
        extra = str(rec.get("input") or "").strip()
        prompt = rec["instruction"].strip() + (f"\n\n{extra}" if extra else "")
        out.append(MultimodalSample(str(n), "conversation",
                                    (Turn("user", (prompt,)), Turn("assistant", (rec["output"].strip(),)))))
    return out
