"""``setok.train.loop.peak_memory``: the GPU memory column of ``train_log.jsonl``."""
from __future__ import annotations

import torch

from setok.train import loop


def test_peak_memory_is_the_peak_since_the_last_row_in_gb(monkeypatch):
    peaks, resets = iter([71.25e9, 2.5e9]), []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: next(peaks))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: resets.append(1))
    assert loop.peak_memory() == {"max_memory_gb": 71.25}
    assert loop.peak_memory() == {"max_memory_gb": 2.5}  # reset after each row: not the run's maximum again
    assert len(resets) == 2


def test_no_memory_column_off_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert loop.peak_memory() == {}
