"""Stage I on two CPU ranks under ZeRO-2 (gloo): the multi-GPU path of the paper's 64-GPU runs, in miniature.

With the 7:3 text mixture a rank's micro-batch often holds no image to generate while the other rank's does; ZeRO-2
reduces gradients in buckets that must cover the same parameters on every rank, so such a step used to abort with
gloo's "collective mismatch" (a hang under NCCL). The heads now get a zero gradient when idle (``mllm.touch``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from test_mllm_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)

from setok.config import Config, deep_merge, dump, from_dict, to_dict
from setok.io import torch_save
from setok.modeling.build import build_setok


@pytest.mark.slow
def test_stage1_on_two_ranks_with_zero2_survives_micro_batches_without_images(tmp_path):
    cfg = from_dict(Config, deep_merge(to_dict(tiny_config()), {
        "train_stage1": {"zero_stage": 2, "steps": 3, "batch_size": 4, "micro_batch_size": 2}}))
    (tmp_path / "config.yaml").write_text(dump(cfg))
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    torch_save({"state_dict": setok.state_dict(), "config": to_dict(cfg)}, tmp_path / "tokenizer.pt")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
           "setok.train.mllm", "--stage", "stage1", "--config", str(tmp_path / "config.yaml"), "--tokenizer",
           str(tmp_path / "tokenizer.pt"), "--out", str(tmp_path / "s1")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "s1" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    # rank 0 alone saw both kinds of micro-batch (so some step ran the heads on one rank only)
    assert any("vis" in r for r in rows) and any("vis" not in r for r in rows)
    assert (tmp_path / "s1" / "model.pt").exists()
