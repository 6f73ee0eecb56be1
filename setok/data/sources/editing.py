"""Instruction-based editing triplets: InstructPix2Pix (``<sample>/prompt.json`` + ``<seed>_0.jpg`` / ``<seed>_1.jpg``)
and MagicBrush (``edit_sessions.json`` + ``images/<img_id>/``): user = input image + instruction, assistant = the
edited image."""
from __future__ import annotations

from pathlib import Path

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.sources._common import check_images, require
from setok.io import DataError, read_json


def edit_sample(sid: str, source: Path, instruction: str, target: Path) -> MultimodalSample:
    return MultimodalSample(sid, "edit", (
        Turn("user", (ImageRef(source), instruction)), Turn("assistant", (ImageRef(target),)),
    ))


def read_instructpix2pix(root: str | Path) -> list[MultimodalSample]:
    root = require(root, "InstructPix2Pix folder")
    out, images = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        prompt = read_json(folder / "prompt.json")
        if "edit" not in prompt:
            raise DataError(f"{folder / 'prompt.json'}: no 'edit' instruction")
        for first in sorted(folder.glob("*_0.jpg")):
            seed = first.name[: -len("_0.jpg")]
            second = folder / f"{seed}_1.jpg"
            images += [first, second]
            out.append(edit_sample(f"{folder.name}/{seed}", first, prompt["edit"], second))
    check_images(images, root)
    return out


def read_magicbrush(root: str | Path) -> list[MultimodalSample]:
    root = require(root, "MagicBrush folder")
    sessions = read_json(require(root / "edit_sessions.json", "edit_sessions.json"))
    out, images = [], []
    # Image ids are numbers in the release: 2 before 10 (a plain string sort would not).
    for img_id, turns in sorted(sessions.items(), key=lambda kv: (not kv[0].isdigit(), kv[0].zfill(32))):
        for k, t in enumerate(turns):
            missing = [key for key in ("input", "output", "instruction") if key not in t]
            if missing:
                raise DataError(f"{root / 'edit_sessions.json'}: session {img_id} turn {k} lacks {', '.join(missing)}")
            src, dst = root / "images" / img_id / t["input"], root / "images" / img_id / t["output"]
            images += [src, dst]
            out.append(edit_sample(f"{img_id}/{k}", src, t["instruction"], dst))
    check_images(images, root / "edit_sessions.json")
    return out
