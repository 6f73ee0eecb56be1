"""MagicBrush training triplets: sessions in numeric image-id order, a malformed turn named."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from setok.data.sources.editing import read_magicbrush
from setok.io import DataError


def _session(root: Path, img_id: str) -> list[dict]:
    folder = root / "images" / img_id
    folder.mkdir(parents=True)
    for name in ("in.png", "out.png"):
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name)
    return [{"input": "in.png", "output": "out.png", "instruction": f"edit {img_id}"}]


def test_sessions_in_numeric_order(tmp_path: Path) -> None:
    sessions = {i: _session(tmp_path, i) for i in ("10", "2", "1")}
    (tmp_path / "edit_sessions.json").write_text(json.dumps(sessions))
    assert [s.id for s in read_magicbrush(tmp_path)] == ["1/0", "2/0", "10/0"]


def test_a_turn_without_output_is_named(tmp_path: Path) -> None:
    turns = _session(tmp_path, "5")
    del turns[0]["output"]
    (tmp_path / "edit_sessions.json").write_text(json.dumps({"5": turns}))
    with pytest.raises(DataError, match="edit_sessions.json: session 5 turn 0 lacks output"):
        read_magicbrush(tmp_path)
