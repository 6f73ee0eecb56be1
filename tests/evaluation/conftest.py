"""Shared fixtures for the evaluation tests: tiny ImageNet-style JSONL files and tiny 299x299 image folders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from setok.io import write_jsonl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def imagenet_files(tmp_path: Path) -> tuple[Path, Path]:
    """4 images, 10 classes: top-1 correct for a and b (50%), top-5 correct for a, b, c (75%)."""
    refs = [
        {"id": "a", "label": 3},
        {"id": "b", "label": 0},
        {"id": "c", "label": 7},
        {"id": "d", "label": 9},
    ]
    scores = {
        "a": [0, 0, 0, 9, 0, 0, 0, 0, 0, 0],  # label 3 ranked 1st
        "b": [5, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # label 0 ranked 1st
        "c": [9, 8, 7, 6, 0, 0, 0, 5, 0, 0],  # label 7 ranked 5th
        "d": [9, 8, 7, 6, 5, 0, 0, 0, 0, 4],  # label 9 ranked 6th
    }
    preds = [
        {"id": i, "scores": scores[i]} for i in ("d", "c", "b", "a")
    ]  # order differs from references
    write_jsonl(tmp_path / "preds.jsonl", preds)
    write_jsonl(tmp_path / "refs.jsonl", refs)
    return tmp_path / "preds.jsonl", tmp_path / "refs.jsonl"


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs ``python -m evaluation ARGS`` in a subprocess from the repository root."""

    def run(
        *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "evaluation", *map(str, args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Converted torch-fidelity weights in a temporary folder; ``$SETOK_INCEPTION_WEIGHTS`` points there."""
    from evaluation.features.inception import WEIGHTS_ENV, ensure_inception_weights

    path = ensure_inception_weights(
        tmp_path_factory.mktemp("inception") / "weights.pth"
    )
    old = os.environ.get(WEIGHTS_ENV)
    os.environ[WEIGHTS_ENV] = str(path)
    yield path
    if old is None:
        os.environ.pop(WEIGHTS_ENV, None)
    else:
        os.environ[WEIGHTS_ENV] = old


def _random_image(rng: np.random.Generator) -> np.ndarray:
    """A 299x299 RGB uint8 image: smooth random blobs plus noise (so no resizing happens in any pipeline)."""
    coarse = rng.uniform(0, 255, size=(8, 8, 3))
    smooth = np.asarray(
        Image.fromarray(coarse.astype(np.uint8)).resize((299, 299), Image.BILINEAR),
        dtype=np.float64,
    )
    return np.clip(smooth + rng.normal(0, 20, size=smooth.shape), 0, 255).astype(
        np.uint8
    )


@pytest.fixture(scope="session")
def image_dirs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, np.ndarray]:
    """Two folders of 2 PNG images each, and all 4 images as a ``(4, 299, 299, 3)`` array (folder a first)."""
    rng = np.random.default_rng(1234)
    root = tmp_path_factory.mktemp("fid_images")
    images = np.stack([_random_image(rng) for _ in range(4)])
    dirs = (root / "a", root / "b")
    for d in dirs:
        d.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(dirs[i // 2] / f"img_{i}.png")
    return dirs[0], dirs[1], images


@pytest.fixture(scope="session")
def helper_features(image_dirs: tuple[Path, Path, np.ndarray]) -> np.ndarray:
    """fid-helper TorchScript pool3 features of the 4 fixture images, ``(4, 2048)`` float32."""
    import torch

    from evaluation.features.inception import load_fid_helper_network

    x = torch.from_numpy(image_dirs[2]).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return load_fid_helper_network()((x - 128) / 128).numpy()


@pytest.fixture(scope="session")
def fidelity_features(
    inception_weights: Path, image_dirs: tuple[Path, Path, np.ndarray]
) -> np.ndarray:
    """Features of the fixture folders through torch-fidelity's extractor with converted weights, ``(4, 2048)``."""
    from evaluation.features.images import folder_features
    from evaluation.features.inception import build_inception_extractor

    extractor = build_inception_extractor(inception_weights, device="cpu")
    return np.concatenate([folder_features(d, extractor)[1] for d in image_dirs[:2]])
