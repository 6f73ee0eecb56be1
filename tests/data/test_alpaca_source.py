"""Alpaca's alpaca_data.json -> Stage II text samples: instruction, the input after a blank line, the output as the
answer; the config's limit keeps the first records; a record without an output is named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from setok.config import DataSource
from setok.data.sources import build_multimodal_source
from setok.io import DataError

RECORDS = [
    {"instruction": "Give three tips for staying healthy. ", "input": "", "output": "1. Eat well.\n2. Sleep."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": " Bonjour "},
    {"instruction": "Say hi.", "input": "", "output": "Hi"},
]


def test_instruction_then_input_then_output(tmp_path: Path) -> None:
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(RECORDS))
    samples = build_multimodal_source(DataSource(kind="alpaca", annotations=str(path), limit=2), name="alpaca")
    assert [s.id for s in samples] == ["alpaca:0", "alpaca:1"]
    assert [(t.role, t.content) for t in samples[1].turns] == [("user", ("Translate to French.\n\nGood morning",)),
                                                               ("assistant", ("Bonjour",))]
    assert samples[0].turns[0].content == ("Give three tips for staying healthy.",)  # no input: no blank line
    assert all(s.task == "conversation" and not s.images for s in samples)


def test_a_record_without_output_is_named(tmp_path: Path) -> None:
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps([RECORDS[0], {"instruction": "x", "input": ""}]))
    with pytest.raises(DataError, match=r"alpaca_data.json: record 1 lacks a string 'instruction' or 'output'"):
        build_multimodal_source(DataSource(kind="alpaca", annotations=str(path)), name="alpaca")
