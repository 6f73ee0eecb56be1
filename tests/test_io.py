"""setok.io's JSON: msgspec parses, the standard library decides what msgspec refuses; compact JSON lines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import msgspec
import numpy as np
import pytest

from setok.io import DataError, jsonl_bytes, loads, read_json, read_json_typed, read_jsonl, write_jsonl


def test_loads_gives_what_json_loads_gives_where_msgspec_refuses() -> None:
    assert loads(b'{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert math.isnan(loads(b'{"a": NaN}')["a"]) and loads(b"1e400") == float("inf")  # msgspec refuses both
    assert loads(b'"\\ud800"') == "\ud800"  # a lone surrogate escape, as json reads it
    with pytest.raises(json.JSONDecodeError, match="Expecting"):
        loads(b"[1, ")


def test_read_json_names_the_file_and_the_place_of_the_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"a": 1,\n "b": }')
    with pytest.raises(DataError, match=r"bad.json: malformed JSON at line 2 column 7"):
        read_json(path)
    path.write_bytes(b"\xef\xbb\xbf[1]")  # a UTF-8 byte order mark: json refuses it, so does read_json
    with pytest.raises(DataError, match="malformed JSON"):
        read_json(path)
    path.write_bytes(b'["\xff"]')
    with pytest.raises(DataError, match="not UTF-8"):
        read_json(path)


def test_read_jsonl_parses_each_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": NaN}\n')
    rows = read_jsonl(path)
    assert rows[0] == {"a": 1} and math.isnan(rows[1]["a"]) and len(rows) == 2


def test_read_json_typed_returns_none_for_anything_not_of_the_shape(tmp_path: Path) -> None:
    class Row(msgspec.Struct):
        a: int

    path = tmp_path / "x.json"
    path.write_text('[{"a": 1, "b": "skipped"}]')
    assert read_json_typed(path, list[Row]) == [Row(a=1)]
    path.write_text('[{"a": "1"}]')
    assert read_json_typed(path, list[Row]) is None
    path.write_text("")
    assert read_json_typed(path, list[Row]) is None
    assert read_json_typed(tmp_path / "missing.json", list[Row]) is None


def test_compact_jsonl_is_sorted_standard_json_and_keeps_non_finite_floats() -> None:
    assert jsonl_bytes([{"b": 1, "a": "é"}, {"c": 0.5}]) == '{"a":"é","b":1}\n{"c":0.5}\n'.encode()
    assert jsonl_bytes([{"a": float("nan"), "b": None}]) == b'{"a":NaN,"b":null}\n'  # json's NaN, not null
    assert jsonl_bytes([{"a": np.float64(0.25), "b": 2}]) == b'{"a":0.25,"b":2}\n'  # numpy scalars: json's way


def test_write_jsonl_compact_and_spaced_hold_the_same_rows(tmp_path: Path) -> None:
    rows = [{"id": 2, "score": 0.1}, {"id": 1, "score": 1.0}]
    write_jsonl(tmp_path / "c.jsonl", rows, compact=True)
    write_jsonl(tmp_path / "s.jsonl", rows)
    assert (tmp_path / "c.jsonl").read_text() == '{"id":2,"score":0.1}\n{"id":1,"score":1.0}\n'
    assert (tmp_path / "s.jsonl").read_text() == '{"id": 2, "score": 0.1}\n{"id": 1, "score": 1.0}\n'
    assert read_jsonl(tmp_path / "c.jsonl") == read_jsonl(tmp_path / "s.jsonl") == rows
