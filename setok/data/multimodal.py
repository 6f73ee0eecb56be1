"""The record every SeTokIM training reader returns: a sample as user / assistant turns of text and images.

Readers (LLaVA conversation JSON, COCO captions, InstructPix2Pix / MagicBrush triplets, RefCOCO refs, a text corpus)
only parse their official files into :class:`MultimodalSample`; a chat template
(:func:`setok.data.templates.render`) turns turns into the model's segments, and the collator loads images and
tokenizes them with the frozen SeTok. What the model learns follows from the roles: assistant text gets the
cross-entropy loss, an image in an assistant turn is *generated* (diffusion loss), an image in a user turn is read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Task = Literal["text", "caption", "generation", "conversation", "edit", "segment"]


@dataclass(frozen=True)
class RegionMask:
    """A COCO-style object mask: polygons (``[[x1, y1, x2, y2, ...], ...]``) or an RLE dict, at ``height x width``."""

    segmentation: Any
    height: int
    width: int


@dataclass(frozen=True)
class ImageRef:
    """An image of a turn, by file path.

    Attributes:
        path: the image file.
        region: for referring segmentation, the referred object's mask: the assistant "draws" the SeTok tokens of
            ``path`` that cover this region, and the mask decoder learns the mask from them.
    """

    path: Path
    region: RegionMask | None = None


@dataclass(frozen=True)
class Turn:
    """One turn: ``role`` and its content, text pieces and images in reading order."""

    role: Literal["user", "assistant"]
    content: tuple[str | ImageRef, ...]


@dataclass(frozen=True)
class MultimodalSample:
    """One training sample.

    Attributes:
        id: unique within its source (``<source>:<official id>``).
        task: what the sample trains (decides the prompt wording readers choose, and CFG dropout for
            ``generation`` / ``edit``: the user text of such a sample is the condition dropped with ``cfg_dropout``).
        turns: the conversation; a plain-text corpus sample is one assistant turn.
    """

    id: str
    task: Task
    turns: tuple[Turn, ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def images(self) -> list[ImageRef]:
        return [c for t in self.turns for c in t.content if isinstance(c, ImageRef)]
