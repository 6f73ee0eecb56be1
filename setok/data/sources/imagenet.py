"""ImageNet class folders as class-conditional generation: "A photo of a {class}." -> the image."""
from __future__ import annotations

from pathlib import Path

from setok.data.imagenet import IMAGE_EXTENSIONS, read_synsets
from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.sources._common import require
from setok.io import DataError

PROMPT = "A photo of a {}."


def read_imagenet_generation(root: str | Path, *, synsets: str | Path | None = None) -> list[MultimodalSample]:
    root = require(root, "ImageNet class folder")
    names = read_synsets(synsets) if synsets else {}
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = names.get(folder.name, folder.name.replace("_", " "))
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                out.append(MultimodalSample(f"{folder.name}/{f.stem}", "generation", (
                    Turn("user", (PROMPT.format(name),)), Turn("assistant", (ImageRef(f),)),
                )))
    if not out:
        raise DataError(f"{root}: no images in class folders")
    return out
