"""Chat templates (which pieces are trained) and the letterbox geometry of referring segmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from setok.data.geometry import letterbox_image, letterbox_mask, letterbox_size, region_array, unletterbox_logits
from setok.data.multimodal import ImageRef, MultimodalSample, RegionMask, Turn
from setok.data.templates import EOS, SYSTEM_VICUNA_V1, Piece, prompt_pieces, render

IMG = ImageRef(Path("a.jpg"))


def _vqa() -> MultimodalSample:
    return MultimodalSample("s:1", "conversation", (
        Turn("user", (IMG, "What is it?")), Turn("assistant", ("A cat.",)),
        Turn("user", ("Colour?",)), Turn("assistant", ("Grey.",)),
    ))


def test_vicuna_v1_trains_assistant_text_and_eos_only():
    pieces = render(_vqa(), "vicuna_v1")
    assert pieces == [
        Piece(SYSTEM_VICUNA_V1, False), Piece(" USER: ", False), Piece(IMG, False), Piece("What is it?", False),
        Piece(" ASSISTANT: ", False), Piece("A cat.", True), Piece(EOS, True),
        Piece(" USER: ", False), Piece("Colour?", False), Piece(" ASSISTANT: ", False), Piece("Grey.", True),
        Piece(EOS, True),
    ]


def test_plain_generation_generates_the_image_and_cfg_drop_removes_the_caption():
    gen = MultimodalSample("c:1", "generation", (Turn("user", ("A cat.",)), Turn("assistant", (IMG,))))
    assert render(gen, "plain") == [Piece("A cat.", False), Piece("\n", False), Piece(IMG, True), Piece(EOS, True)]
    assert render(gen, "plain", drop_condition=True) == [Piece(IMG, True), Piece(EOS, True)]
    cap = MultimodalSample("c:2", "caption", (Turn("user", (IMG,)), Turn("assistant", ("A cat.",))))
    assert render(cap, "plain") == [Piece(IMG, False), Piece("A cat.", True), Piece(EOS, True)]


def test_prompt_pieces_are_the_training_render_up_to_the_answer():
    sample = MultimodalSample("s:1", "conversation", (Turn("user", (IMG, "Q?")), Turn("assistant", ("A",))))
    full = render(sample, "vicuna_v1")
    prompt = prompt_pieces((IMG, "Q?"), "vicuna_v1")
    assert full[: len(prompt)] == prompt and full[len(prompt)] == Piece("A", True)
    edit = prompt_pieces((IMG, "make it red"), "vicuna_v1", drop_condition=True, answer_prefix="Sure, ")
    assert [p.content for p in edit] == [SYSTEM_VICUNA_V1, " USER: ", IMG, " ASSISTANT: ", "Sure, "]


def test_letterbox_places_content_top_left_and_maps_masks_back():
    img = Image.fromarray(np.full((20, 40, 3), 255, np.uint8))  # w=40, h=20
    x = letterbox_image(img, 16)
    assert letterbox_size(40, 20, 16) == (16, 8)
    assert torch.allclose(x[:, :8, :], torch.ones(3, 8, 16), atol=1e-6) and float(x[:, 8:].abs().sum()) == 0.0
    mask = np.zeros((20, 40), bool)
    mask[:, :20] = True  # left half
    cov = letterbox_mask(mask, 16)
    assert torch.allclose(cov[:8, :8], torch.ones(8, 8)) and float(cov[:8, 8:].sum()) == 0.0
    logits = torch.where(cov > 0.5, 5.0, -5.0)  # predicted on the letterboxed square
    back = unletterbox_logits(logits, 40, 20) > 0
    assert back.shape == (20, 40) and bool((back.numpy() == mask).mean() > 0.97)


@pytest.mark.parametrize("kind", ["polygon", "rle"])
def test_region_array_decodes_polygons_and_rle(kind):
    from pycocotools import mask as mask_utils

    if kind == "polygon":
        seg = [[2.0, 2.0, 8.0, 2.0, 8.0, 6.0, 2.0, 6.0]]  # a 6 x 4 rectangle
    else:
        m = np.zeros((10, 12), np.uint8, order="F")
        m[2:6, 2:8] = 1
        seg = mask_utils.encode(m)
        seg["counts"] = seg["counts"].decode()
    arr = region_array(RegionMask(seg, 10, 12))
    assert arr.shape == (10, 12) and arr.dtype == bool
    assert abs(int(arr.sum()) - 24) <= 10 and bool(arr[3:5, 3:7].all()) and not bool(arr[8:, :].any())
