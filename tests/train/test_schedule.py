"""Deterministic data order (resumable) and the learning-rate schedule."""
import math

import pytest

from setok.train.schedule import StepBatchSampler, warmup_cosine


def test_resumed_sampler_yields_exactly_the_remaining_batches():
    full = list(StepBatchSampler(num_samples=10, batch_size=4, micro_batch_size=2, steps=6, seed=3))
    resumed = list(StepBatchSampler(num_samples=10, batch_size=4, micro_batch_size=2, steps=6, start_step=4, seed=3))
    assert resumed == full[8:]  # 2 micro-batches per step


def test_each_epoch_is_a_permutation_and_batches_wrap_across_epochs():
    s = StepBatchSampler(num_samples=5, batch_size=2, micro_batch_size=2, steps=5, seed=0)
    flat = [i for b in s for i in b]
    assert sorted(flat[:5]) == list(range(5)) and sorted(flat[5:10]) == list(range(5))


def test_ranks_split_the_global_batch_without_overlap():
    kw = dict(num_samples=16, batch_size=8, micro_batch_size=2, steps=1, seed=1, world=2)
    r0 = [i for b in StepBatchSampler(rank=0, **kw) for i in b]
    r1 = [i for b in StepBatchSampler(rank=1, **kw) for i in b]
    assert sorted(r0 + r1) == sorted(StepBatchSampler(**kw).global_batch(0))
    assert not set(r0) & set(r1)


def test_batch_size_must_split_into_micro_batches():
    with pytest.raises(ValueError, match="batch_size 6"):
        StepBatchSampler(num_samples=10, batch_size=6, micro_batch_size=4, steps=1)


def test_warmup_cosine_known_values():
    assert warmup_cosine(0, warmup=4, total=12) == 0.25
    assert warmup_cosine(3, warmup=4, total=12) == 1.0
    assert math.isclose(warmup_cosine(8, warmup=4, total=12), 0.5)
    assert math.isclose(warmup_cosine(12, warmup=4, total=12), 0.0, abs_tol=1e-12)
