"""Text-only sources: a corpus in SlimPajama's layout (``.jsonl`` or ``.jsonl.zst`` lines ``{"text": ..., "meta":
{...}}``), instructions in Alpaca's (``alpaca_data.json``: a list of ``{"instruction", "input", "output"}``) and
OpenOrca's augmented FLAN traces (``1M-GPT4-Augmented.parquet`` / ``3_5M-GPT3_5-Augmented.parquet``: columns ``id``,
``system_prompt``, ``question``, ``response``)."""
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


def read_openorca(path: str | Path) -> list[MultimodalSample]:
    """One instruction sample per row: the user turn is the system prompt, a blank line and the question (ours: the
    chat template brings its own system prompt, so OpenOrca's rides in the user turn); the assistant turn is the
    response."""
    from setok.data.sources.llava import read_parquet_rows

    path = require(path, "OpenOrca parquet")
    columns = ("id", "system_prompt", "question", "response")
    out = []
    for n, row in enumerate(read_parquet_rows(path, columns, required=("question", "response"))):
        question, response = row.get("question"), row.get("response")
        if not isinstance(question, str) or not isinstance(response, str):
            raise DataError(f"{path}: row {n} ({row.get('id')}) lacks a string 'question' or 'response'")
        system = str(row.get("system_prompt") or "").strip()
        prompt = f"{system}\n\n{question.strip()}" if system else question.strip()
        out.append(MultimodalSample(str(row.get("id") or n), "conversation",
                                    (Turn("user", (prompt,)), Turn("assistant", (response.strip(),)))))
    return out
