"""setok/model_file.py: one model.pt format (a family and a stage in every file) and one error for a wrong file."""
from __future__ import annotations

import pytest
import torch

from setok.io import DataError
from setok.model_file import ModelFile, read_model, write_model


def test_a_written_model_reads_back_with_its_family_stage_and_extras(tmp_path):
    weights = {"w": torch.arange(3.0)}
    path = write_model(tmp_path / "model.pt", family="setokim", stage="stage1", weights=weights, config={"name": "v"},
                       config_sha="abc", step=7, lora=False, mask_decoder=None)
    m = read_model(path, family="setokim", stage="stage1")
    assert isinstance(m, ModelFile) and (m.family, m.stage, m.config, m.config_sha, m.step) == \
        ("setokim", "stage1", {"name": "v"}, "abc", 7)
    assert torch.equal(m.weights["w"], weights["w"]) and m["lora"] is False and m["mask_decoder"] is None
    assert read_model(path, family=("setokim", "semhitokim"), mmap=True).family == "setokim"
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically


def test_a_wrong_file_is_one_error_naming_it_what_it_holds_and_what_was_expected(tmp_path):
    path = write_model(tmp_path / "model.pt", family="setok", stage="tokenizer", weights={}, config={},
                       config_sha="", step=0)
    with pytest.raises(DataError, match=r"model\.pt: a setok model file, expected semhitok$"):
        read_model(path, family="semhitok")
    with pytest.raises(DataError, match="a setok model file of the tokenizer stage, expected the stage2 stage"):
        read_model(path, family="setok", stage="stage2")
    with pytest.raises(DataError, match="model file not found"):
        read_model(tmp_path / "missing.pt", family="setok")
    old = tmp_path / "old.pt"
    torch.save({"state_dict": {}, "config": {}}, old)
    with pytest.raises(DataError, match=r"old\.pt: holds a mapping without family, stage, weights, config_sha, step, "
                                        "expected a setok model file"):
        read_model(old, family="setok")
    (tmp_path / "text.pt").write_text("not a pickle")
    with pytest.raises(DataError, match="text.pt: not a model file"):
        read_model(tmp_path / "text.pt", family="setok")


def test_an_unknown_family_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="model family 'mllm'"):
        write_model(tmp_path / "m.pt", family="mllm", stage="stage1", weights={}, config={}, config_sha="", step=0)
