"""GPUs asked are GPUs used: every CLI that runs a model takes ``--device`` (default ``cuda``) and, when that CUDA
device is not there, stops before loading anything with one line naming what it asked, what it sees and how to run
on the CPU; it never falls back to the CPU by itself."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation import cli as evaluation_cli
from evaluation.predict import cost, mllm, semhitok, tokenizer
from setok import calibrate_clustering
from setok.devices import DeviceError, require_device

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["--config", str(ROOT / "config/paper.yaml"), "--config", str(ROOT / "config/ci.yaml")]


def _args(tmp: Path) -> dict[str, tuple[Callable[[list[str]], int], list[str]]]:
    """Each model-running CLI with arguments it would accept, pointing at files that do not exist (the device check
    comes first, so none is read)."""
    m, c = str(tmp / "model.pt"), str(tmp / "config.yaml")
    return {
        "predict.tokenizer": (tokenizer.main, ["--model", m, "--config", c, "--classes", str(tmp / "c.json"),
                                               "--out", str(tmp / "out")]),
        "predict.semhitok": (semhitok.main, ["--model", m, "--config", c, "--out", str(tmp / "out")]),
        "predict.mllm": (mllm.main, ["--model", m, "--config", c, "--benchmark", "pope", "--out", str(tmp / "out")]),
        "predict.cost": (cost.main, ["--model", m, "--images", str(tmp / "imgs"), "--out", str(tmp / "c.json")]),
        "calibrate_clustering": (calibrate_clustering.main,
                                 [*CONFIGS, "--variant", "hard_cluster", "--out", str(tmp / "out")]),
    }


CLIS = ["predict.tokenizer", "predict.semhitok", "predict.mllm", "predict.cost", "calibrate_clustering"]


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine where CUDA sees no device (the test means the same on a GPU machine)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _one_line_device_error(err: str, device: str) -> None:
    assert err.count("\n") == 1 and err.startswith("error: "), err  # the whole stderr: one line
    assert f"--device {device} asks for 1 CUDA GPU(s) but 0 are visible" in err
    assert "--device cpu" in err and "compute.allow_cpu" in err


@pytest.mark.parametrize("name", CLIS)
@pytest.mark.parametrize("device", [["--device", "cuda"], []])  # [] : the default is cuda, not "cuda if available"
def test_cuda_without_a_gpu_fails_in_one_line(tmp_path, capsys, no_cuda, name, device):
    main, args = _args(tmp_path)[name]
    assert main([*args, *device]) == 2
    _one_line_device_error(capsys.readouterr().err, "cuda")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", CLIS)
def test_cpu_is_taken_when_asked(tmp_path, capsys, no_cuda, name):
    """--device cpu passes the device check: the CLI goes on and fails later, on the missing model or data."""
    main, args = _args(tmp_path)[name]
    main([*args, "--device", "cpu"])
    assert "CUDA GPU(s)" not in capsys.readouterr().err


def test_scoring_fid_on_a_missing_gpu_fails_in_one_line(tmp_path, capsys, no_cuda):
    for folder in ("pred", "ref"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / folder / f"{i}.png")
    code = evaluation_cli.main(["score", "fid", "--predictions", str(tmp_path / "pred"), "--annotations",
                                str(tmp_path / "ref"), "--out", str(tmp_path / "fid.json"), "--device", "cuda"])
    assert code == 2
    _one_line_device_error(capsys.readouterr().err, "cuda")


@pytest.mark.parametrize("device, visible, ok", [("cpu", 0, True), ("cuda", 1, True), ("cuda:1", 2, True),
                                                 ("cuda:1", 1, False), ("cuda", 0, False)])
def test_require_device(device, visible, ok):
    if ok:
        assert require_device(device, available=visible) == device
    else:
        with pytest.raises(DeviceError, match=f"asks for {int(device.partition(':')[2] or 0) + 1} CUDA GPU"):
            require_device(device, available=visible)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "mps"])
def test_an_unknown_device_is_an_error(device):
    with pytest.raises(DeviceError, match="expected 'cuda', 'cuda:N' or 'cpu'"):
        require_device(device, available=8)
