"""Open Images as SeTokIM Stage-I pairs: each image's positive labels as a caption (SeTok Table 7 lists OpenImages,
9M, in Stage I, which trains captioning and text-to-image; Open Images has no captions: paper-notes S20).

The files are the tokenizer's (:mod:`setok.data.openimages`): ``root/<ImageID>.jpg``, a labels CSV (the image-level
``oidv7-train-annotations-human-imagelabels.csv`` for all 9M train images, or the boxes CSV) and its class-descriptions
CSV. Each image gives a captioning sample (image -> caption) and a text-to-image sample (caption -> image), the caption
being ``"A photo of <label 1>, <label 2> and <label 3>."`` (display names, first :data:`MAX_LABELS` in CSV order).
"""
from __future__ import annotations

from pathlib import Path

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.openimages import IMAGE_SUFFIX, read_image_labels
from setok.data.sources._common import check_images, require

MAX_LABELS = 8  # ours: the human-verified image-level labels run to a few dozen on some images


def label_caption(labels: list[str]) -> str:
    """``["Tortoise", "Human face"]`` -> ``"A photo of tortoise and human face."`` (display names lower-cased)."""
    names = [n.lower() for n in labels[:MAX_LABELS]]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"A photo of {text}."


def read_openimages_pairs(root: str | Path, labels: str | Path, classes: str | Path) -> list[MultimodalSample]:
    """A captioning and a text-to-image sample per image with a positive label, by ImageID."""
    root = require(root, "Open Images image folder")
    table = read_image_labels(labels, classes)
    out, files = [], []
    for i, image_id in enumerate(table.ids):
        file = root / f"{image_id}{IMAGE_SUFFIX}"
        caption, ref = label_caption(table.labels(i)), ImageRef(file)
        out.append(MultimodalSample(f"cap{image_id}", "caption", (Turn("user", (ref,)), Turn("assistant", (caption,)))))
        out.append(MultimodalSample(f"gen{image_id}", "generation",
                                    (Turn("user", (caption,)), Turn("assistant", (ref,)))))
        files.append(file)
    check_images(files, labels)
    return out
