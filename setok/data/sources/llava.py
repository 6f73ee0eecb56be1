"""LLaVA conversation JSON (LLaVA-595K, LLaVA-v1.5-mix-665K, ALLaVA, ShareGPT4V).

``[{"id", "image" (optional, relative to the image root), "conversations": [{"from": "human"|"gpt", "value"}]}]``;
``<image>`` in a human turn marks where the image goes (LLaVA puts it first when the tag is absent).
"""
from __future__ import annotations

from pathlib import Path

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.sources._common import check_images, require
from setok.io import DataError, read_json

ROLES = {"human": "user", "gpt": "assistant"}
IMAGE_TAG = "<image>"


def _content(text: str, image: ImageRef | None, first: bool) -> tuple[str | ImageRef, ...]:
    if IMAGE_TAG in text and image is not None:
        before, _, after = text.partition(IMAGE_TAG)
        parts: list[str | ImageRef] = [before.strip("\n"), image, after.strip("\n")]
        return tuple(p for p in parts if not isinstance(p, str) or p)
    if image is not None and first:
        return (image, text.strip("\n"))
    return (text,)


def read_llava(annotations: str | Path, root: str | Path) -> list[MultimodalSample]:
    path = require(annotations, "LLaVA conversation JSON")
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of conversations")
    samples, images = [], []
    for n, rec in enumerate(data):
        sid = rec.get("id", n) if isinstance(rec, dict) else n
        convs = rec.get("conversations") if isinstance(rec, dict) else None
        if not isinstance(convs, list) or not convs:
            raise DataError(f"{path}: sample {sid!r} has no 'conversations' list")
        image = ImageRef(Path(root) / rec["image"]) if rec.get("image") else None
        if image is not None:
            images.append(image.path)
        turns = []
        for k, turn in enumerate(convs):
            role = ROLES.get(turn.get("from"))
            if role is None:
                raise DataError(f"{path}: sample {sid!r} turn {k} has unknown role {turn.get('from')!r}")
            if role != ("user" if k % 2 == 0 else "assistant"):
                raise DataError(f"{path}: sample {sid!r}: turns must alternate human / gpt, starting with human")
            turns.append(Turn(role, _content(turn.get("value", ""), image if role == "user" else None, k == 0)))
        samples.append(MultimodalSample(str(sid), "conversation", tuple(turns)))
    check_images(images, path)
    return samples
