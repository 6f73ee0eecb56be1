"""Editing metrics (magicbrush, evr, ma5k): MagicBrush image_eval.py rules on known answers, tiny random models."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.features.embedders import (
    PAPER_CLIP_MODEL,
    PAPER_CLIP_PRETRAINED,
    PAPER_DINO_MODEL,
    EditingModels,
    LpipsDistance,
    OpenClipEmbedder,
    TimmEmbedder,
    dino_transform,
)
from evaluation.metrics.editing import cosine_similarities, l1_distance, l2_distance
from evaluation.registry import get, score
from setok.io import DataError

TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 224, "layers": 1, "width": 32, "patch_size": 32, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def models() -> EditingModels:
    """Random-initialised tiny CLIP, DINO-architecture ViT and LPIPS (no download)."""
    import lpips
    import torch

    torch.manual_seed(0)
    clip = OpenClipEmbedder.create(PAPER_CLIP_MODEL, None, device="cpu", **TINY_CLIP)
    dino = TimmEmbedder.create(PAPER_DINO_MODEL, pretrained=False, device="cpu", depth=1, embed_dim=48, num_heads=2)
    net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    return EditingModels(clip=clip, dino=dino, lpips=LpipsDistance(net, device="cpu"))


def _save(folder: Path, name: str, pixels: np.ndarray) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _random(rng: np.random.Generator, h: int, w: int, high: int = 256) -> np.ndarray:
    return rng.integers(0, high, size=(h, w, 3), dtype=np.uint8)


def test_constant_shift_of_0_1_gives_l1_0_1_and_l2_0_01() -> None:
    target = np.full((4, 5, 3), 0.3)
    assert l1_distance(target + 0.1, target) == pytest.approx(0.1)
    assert l2_distance(target + 0.1, target) == pytest.approx(0.01)  # squared mean; a root would give 0.1


def test_cosine_is_scale_free_clipped_and_rejects_zero_vectors() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    b = np.array([[5.0, 0.0], [1.0, 0.0], [-2.0, -4.0]])
    # (1) same direction, length 5 -> 1; (2) 45 degrees -> 1/sqrt(2); (3) opposite -> -1
    assert cosine_similarities(a, b) == pytest.approx([1.0, 2**-0.5, -1.0])
    with pytest.raises(ValueError, match="zero"):
        cosine_similarities(np.zeros((1, 2)), np.ones((1, 2)))


def test_identical_folders_give_l1_l2_lpips_zero_and_clip_dino_one(tmp_path: Path, models: EditingModels) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        img = _random(rng, 64, 64)
        _save(tmp_path / "t", f"{i}.png", img)
        _save(tmp_path / "g", f"{i}.png", img)
    r = score("magicbrush", tmp_path / "g", tmp_path / "t", models=models, n_bootstrap=0)
    assert r.metrics["l1"] == 0.0 and r.metrics["l2"] == 0.0 and r.metrics["lpips"] == 0.0
    assert r.metrics["clip_i"] == pytest.approx(1.0, abs=1e-6) and r.metrics["dino"] == pytest.approx(1.0, abs=1e-6)
    assert r.n == 2 and "clip_t" not in r.metrics  # clip_t only with captions


def test_shift_of_51_levels_gives_l1_0_2_l2_0_04_without_any_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    img = _random(rng, 6, 7, high=200)
    _save(tmp_path / "t", "a.png", img)
    _save(tmp_path / "g", "a.png", img + 51)  # 51/255 = 0.2 everywhere
    r = score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1,l2", n_bootstrap=0)
    assert r.metrics == pytest.approx({"l1": 0.2, "l2": 0.04})
    assert r.rows == [{"id": "a.png", "resized": False, "l1": pytest.approx(0.2), "l2": pytest.approx(0.04)}]


def test_distances_are_averaged_per_image_not_over_pooled_pixels(tmp_path: Path) -> None:
    base_small, base_big = np.full((2, 2, 3), 10), np.full((4, 4, 3), 10)
    _save(tmp_path / "t", "small.png", base_small)
    _save(tmp_path / "g", "small.png", base_small + 51)  # 0.2 on 4 pixels
    _save(tmp_path / "t", "big.png", base_big)
    _save(tmp_path / "g", "big.png", base_big + 102)  # 0.4 on 16 pixels
    r = score("magicbrush", tmp_path / "g", tmp_path / "t", metrics=["l1", "l2"], n_bootstrap=0)
    # per image: (0.2 + 0.4) / 2 = 0.3 and (0.04 + 0.16) / 2 = 0.1; pooled pixels would give 0.36 and 0.136
    assert r.metrics == pytest.approx({"l1": 0.3, "l2": 0.1})


def test_generated_image_is_resized_bicubic_to_the_target_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    target, generated = _random(rng, 8, 8), _random(rng, 16, 12)
    _save(tmp_path / "t", "x.png", target)
    _save(tmp_path / "g", "x.png", generated)
    r = score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1", n_bootstrap=0)

    def l1_after(resample: Image.Resampling) -> float:
        resized = np.asarray(Image.fromarray(generated).resize((8, 8), resample), dtype=np.float64)
        return float(np.abs(resized - target).mean() / 255)

    assert r.rows[0]["resized"] is True
    assert r.metrics["l1"] == pytest.approx(l1_after(Image.Resampling.BICUBIC), abs=1e-12)
    assert abs(r.metrics["l1"] - l1_after(Image.Resampling.NEAREST)) > 1e-4


def test_clip_i_embeds_the_generated_image_at_its_own_size(tmp_path: Path, models: EditingModels) -> None:
    rng = np.random.default_rng(3)
    target, generated = _random(rng, 64, 64), _random(rng, 96, 80)
    _save(tmp_path / "t", "x.png", target)
    _save(tmp_path / "g", "x.png", generated)
    r = score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="clip_i,dino,lpips", models=models, n_bootstrap=0)
    g, t = Image.fromarray(generated), Image.fromarray(target)
    for name, emb in (("clip_i", models.clip), ("dino", models.dino)):
        expected = cosine_similarities(emb.embed_images([g]), emb.embed_images([t]))[0]
        assert r.metrics[name] == pytest.approx(expected, abs=1e-9)
    resized = np.asarray(g.resize((64, 64), Image.Resampling.BICUBIC))
    assert r.metrics["lpips"] == pytest.approx(models.lpips.distances([resized], [target])[0], abs=1e-9)
    assert r.metrics["lpips"] > 0


def test_clip_t_reads_official_nested_captions_by_folder_and_file(tmp_path: Path, models: EditingModels) -> None:
    rng = np.random.default_rng(4)
    imgs = {"139/139-output1.png": _random(rng, 64, 64), "140/140-output1.png": _random(rng, 64, 64)}
    for rel, img in imgs.items():
        _save(tmp_path / "t", rel, img)
        _save(tmp_path / "g", rel, 255 - img)
    captions = {"139": {"139-input.png": "a dog", "139-output1.png": "a cat on a mat"}, "140": {"140-output1.png": "x"}}
    (tmp_path / "global_descriptions.json").write_text(json.dumps(captions))
    r = score(
        "magicbrush", tmp_path / "g", tmp_path / "t",
        captions=tmp_path / "global_descriptions.json", metrics="clip_t", models=models, n_bootstrap=0,
    )
    gen = models.clip.embed_images([Image.fromarray(255 - imgs["139/139-output1.png"])])
    txt = models.clip.embed_texts(["a cat on a mat"])
    assert [row["id"] for row in r.rows] == ["139/139-output1.png", "140/140-output1.png"]
    assert r.rows[0]["clip_t"] == pytest.approx(cosine_similarities(gen, txt)[0], abs=1e-6)


def test_clip_t_without_captions_and_unknown_metrics_are_one_line_errors(tmp_path: Path) -> None:
    _save(tmp_path / "t", "a.png", np.zeros((4, 4, 3)))
    _save(tmp_path / "g", "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(DataError, match="clip_t needs --captions"):
        score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1,clip-t")
    with pytest.raises(DataError, match="unknown psnr"):
        score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1,psnr")


def test_missing_and_extra_generated_images_are_named(tmp_path: Path) -> None:
    for name in ("a.png", "b.png", "c.png"):
        _save(tmp_path / "t", name, np.zeros((4, 4, 3)))
    _save(tmp_path / "g", "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(DataError) as e:
        score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1")
    assert "missing generated images for 2 of 3" in str(e.value) and "b.png, c.png" in str(e.value)
    for name in ("b.png", "c.png", "zz.jpg"):
        _save(tmp_path / "g", name, np.zeros((4, 4, 3)))
    with pytest.raises(DataError, match=r"1 generated images have no target .*zz\.jpg"):
        score("magicbrush", tmp_path / "g", tmp_path / "t", metrics="l1")


def test_bootstrap_interval_brackets_the_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i in range(6):
        img = _random(rng, 5, 5, high=150)
        _save(tmp_path / "t", f"{i}.png", img)
        _save(tmp_path / "g", f"{i}.png", img + 10 * i)
    r = score("ma5k", tmp_path / "g", tmp_path / "t", metrics="l1", n_bootstrap=200, seed=3)
    lo, hi = r.ci95["l1"]
    assert lo < r.metrics["l1"] < hi and r.metrics["l1"] == pytest.approx(25 / 255)  # mean of 0, 10, ..., 50


def test_evr_and_ma5k_share_the_magicbrush_scorer() -> None:
    names = [m.name for m in get("magicbrush").metrics]
    assert names == ["l1", "l2", "clip_i", "dino", "clip_t", "lpips"]
    assert [m.name for m in get("evr").metrics] == names == [m.name for m in get("ma5k").metrics]
    assert type(get("evr")).score is type(get("magicbrush")).score


def test_paper_defaults_are_openai_vit_b32_quickgelu_and_dino_vits16_with_the_script_transform() -> None:
    assert (PAPER_CLIP_MODEL, PAPER_CLIP_PRETRAINED, PAPER_DINO_MODEL) == (
        "ViT-B-32-quickgelu", "openai", "vit_small_patch16_224.dino",
    )
    t = dino_transform().transforms
    assert (t[0].size, t[0].interpolation.value, t[1].size) == (256, "bicubic", (224, 224))


def test_unloadable_clip_weights_are_a_one_line_error() -> None:
    with pytest.raises(DataError) as e:
        OpenClipEmbedder.create(PAPER_CLIP_MODEL, "/nonexistent/clip.pt", device="cpu")
    assert "cannot load the CLIP model" in str(e.value) and "\n" not in str(e.value)


def test_cli_metrics_flag_scores_l1_only(tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    _save(tmp_path / "t", "a.png", np.full((3, 3, 3), 100))
    _save(tmp_path / "g", "a.png", np.full((3, 3, 3), 151))
    out = tmp_path / "r.json"
    p = cli("score", "magicbrush", "--predictions", tmp_path / "g", "--annotations", tmp_path / "t",
            "--out", out, "--metrics", "l1", "--bootstrap", "0")
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["metrics"] == {"l1": pytest.approx(0.2)}
