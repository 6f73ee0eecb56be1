"""The 7:3 data mixture, its resumable order, region-token selection and sequence building."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.multimodal_loader import RawBatch
from setok.train.mixture import MixtureSampler, mixture_probs
from setok.train.mllm_batch import SpecialIds, build_sequences, pooled_coverage, region_tokens


def test_mixture_probs_split_language_and_vision_then_by_size_or_weight():
    p = mixture_probs({"text": 5, "cap": 30, "edit": 10}, ["text"], language_ratio=0.7, weights={})
    assert p == pytest.approx({"text": 0.7, "cap": 0.3 * 0.75, "edit": 0.3 * 0.25})
    p = mixture_probs({"text": 5, "cap": 30, "edit": 10}, ["text"], language_ratio=0.7, weights={"cap": 1, "edit": 1})
    assert p == pytest.approx({"text": 0.7, "cap": 0.15, "edit": 0.15})
    assert mixture_probs({"a": 1, "b": 3}, [], language_ratio=0.0, weights={}) == pytest.approx({"a": 0.25, "b": 0.75})
    with pytest.raises(ValueError, match="needs text-only and other"):
        mixture_probs({"cap": 3}, [], language_ratio=0.7, weights={})


def test_mixture_sampler_hits_the_ratio_and_resumes_exactly():
    kw = dict(sizes=[7, 20], probs=[0.7, 0.3], batch_size=8, micro_batch_size=4, steps=400, seed=3)
    full = list(MixtureSampler(**kw))
    text_share = sum(i < 7 for mb in full for i in mb) / (400 * 8)
    assert abs(text_share - 0.7) < 0.03
    assert all(0 <= i < 27 for mb in full for i in mb)
    assert list(MixtureSampler(**kw, start_step=150)) == full[300:]
    r0 = list(MixtureSampler(**{**kw, "micro_batch_size": 2}, rank=0, world=2))
    r1 = list(MixtureSampler(**{**kw, "micro_batch_size": 2}, rank=1, world=2))
    assert sorted(r0[0] + r0[1] + r1[0] + r1[1]) == sorted(full[0] + full[1])


def test_region_tokens_pick_clusters_mostly_inside_the_object():
    # 4 locations, 3 tokens: token 0 = locations {0, 1}, token 1 = {2}, token 2 = {3}; the object covers 0, 1, half of 3
    masks = torch.tensor([[[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=torch.float)
    valid = torch.ones(1, 3, dtype=torch.bool)
    cov = torch.tensor([[1.0, 1.0, 0.0, 0.5]])
    assert region_tokens(masks, valid, cov, overlap=0.5).tolist() == [[True, False, True]]
    assert region_tokens(masks, valid, cov, overlap=0.9).tolist() == [[True, False, False]]
    tiny = torch.tensor([[0.1, 0.0, 0.0, 0.0]])  # nothing reaches the threshold: the best token alone
    assert region_tokens(masks, valid, tiny, overlap=0.5).tolist() == [[True, False, False]]
    assert pooled_coverage(torch.ones(1, 8, 8), (2, 2)).tolist() == [[1.0, 1.0, 1.0, 1.0]]


def _raw(samples: list[MultimodalSample]) -> RawBatch:
    n = sum(len(s.images) for s in samples)
    return RawBatch(samples=samples, images=torch.zeros(n, 3, 4, 4), regions=torch.zeros(n, 4, 4),
                    has_region=torch.zeros(n, dtype=torch.bool), owner=torch.zeros(n, dtype=torch.long))


IDS = SpecialIds(img_start=100, img_end=101, pad=0, eos=2, bos=1)


def _tokenize(text: str) -> list[int]:
    return [10 + (ord(c) % 50) for c in text]


def test_build_sequences_text_loss_only_on_answers_and_diffusion_only_on_generated_images():
    img = ImageRef(Path("x.jpg"))
    gen = MultimodalSample("g", "generation", (Turn("user", ("ab",)), Turn("assistant", (img,))))
    cap = MultimodalSample("c", "caption", (Turn("user", (img,)), Turn("assistant", ("xy",))))
    tokens = [torch.ones(3, 4), 2 * torch.ones(2, 4)]
    b = build_sequences(_raw([gen, cap]), tokens, template="plain", drop=[False, False], tokenize=_tokenize,
                        ids=IDS, token_dim=4, max_length=64)
    # row 0: [bos] a b \n [Img] v v v [/Img] [eos]
    assert b.input_ids[0, :10].tolist() == [1, *_tokenize("ab"), *_tokenize("\n"), 100, 0, 0, 0, 101, 2]
    assert b.labels[0, :9].tolist() == [-100, -100, -100, 100, -100, -100, -100, -100, 2]  # [Img] and eos
    # row 1: [bos] [Img] v v [/Img] x y [eos]: the caption and eos are targets, the read image is not generated
    assert b.input_ids[1, :8].tolist() == [1, 100, 0, 0, 101, *_tokenize("xy"), 2]
    assert b.labels[1, :7].tolist() == [-100, -100, -100, -100, *_tokenize("xy"), 2]
    assert b.visual_train.tolist() == [True] * 3 + [False] * 2
    assert b.visual_last.tolist() == [False, False, True, False, True]
    dropped = build_sequences(_raw([gen]), tokens[:1], template="plain", drop=[True], tokenize=_tokenize, ids=IDS,
                              token_dim=4, max_length=64)
    assert dropped.input_ids[0, :7].tolist() == [1, 100, 0, 0, 0, 101, 2]


def test_build_sequences_truncates_at_max_length_without_splitting_images():
    img = ImageRef(Path("x.jpg"))
    s = MultimodalSample("c", "caption", (Turn("user", ("abcdef",)), Turn("assistant", (img,))))
    b = build_sequences(_raw([s]), [torch.ones(5, 4)], template="plain", drop=[False], tokenize=_tokenize, ids=IDS,
                        token_dim=4, max_length=6)
    assert b.input_ids.shape[1] == 6 and b.visual_tokens.shape[0] == 0  # text cut, the image left out whole


def test_collate_stacks_images_of_any_sample_and_tolerates_text_first():
    from setok.data.multimodal_loader import collate_multimodal

    text = MultimodalSample("t", "text", (Turn("assistant", ("hi",)),))
    img = ImageRef(Path("x.jpg"))
    cap = MultimodalSample("c", "caption", (Turn("user", (img,)), Turn("assistant", ("xy",))))
    raw = collate_multimodal([(text, [], []), (cap, [torch.ones(3, 4, 4)], [None])])
    assert raw.images.shape == (1, 3, 4, 4) and raw.owner.tolist() == [1] and raw.has_region.tolist() == [False]
