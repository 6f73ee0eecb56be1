"""Fixtures for the dataset readers: tiny copies of the official ImageNet and OpenImages layouts."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SYNSETS = (
    "n01440764 tench, Tinca tinca\n"
    "n01443537 goldfish, Carassius auratus\n"
    "n01484850 great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias\n"
)


def write_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """Write a random-noise image (format from the suffix) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    fmt = "PNG" if path.suffix.lower() == ".png" else "JPEG"
    Image.fromarray(pixels).save(path, format=fmt)
    return path


@pytest.fixture
def imagenet_root(tmp_path: Path) -> Path:
    """``train/<wnid>/*.JPEG`` with two classes, created in reverse order, and ``LOC_synset_mapping.txt``."""
    root = tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "train"
    write_image(root / "n01443537" / "n01443537_2.JPEG", 1)
    write_image(root / "n01443537" / "n01443537_1.jpg", 2)
    write_image(root / "n01440764" / "n01440764_9.JPEG", 3)
    write_image(root / "n01440764" / "n01440764_10.PNG", 4)
    write_image(root / "n01440764" / "n01440764_3.jpeg", 5)
    (root / "n01440764" / "readme.txt").write_text("not an image")
    (tmp_path / "LOC_synset_mapping.txt").write_text(SYNSETS)
    return root


@pytest.fixture
def openimages(tmp_path: Path) -> Callable[..., tuple[Path, Path, Path]]:
    """Factory writing ``root/<ImageID>.jpg``, a labels CSV and a class-descriptions CSV; returns their paths."""

    def make(labels_csv: str, classes_csv: str, image_ids: list[str]) -> tuple[Path, Path, Path]:
        root = tmp_path / "train"
        for n, image_id in enumerate(image_ids):
            write_image(root / f"{image_id}.jpg", 100 + n)
        root.mkdir(exist_ok=True)
        (tmp_path / "labels.csv").write_text(labels_csv)
        (tmp_path / "classes.csv").write_text(classes_csv)
        return root, tmp_path / "labels.csv", tmp_path / "classes.csv"

    return make
