"""One dataclass per dataset kind: a ``datasets.<name>`` config entry, picked by its ``kind`` (default ``bundled``).

Tokenizer kinds (``setok.data.build_dataset``): ``imagenet`` (class folders; ``root`` + optional ``synsets`` =
LOC_synset_mapping.txt), ``openimages`` (``root`` image folder + ``labels`` CSV with ImageID,LabelName[,Confidence] +
``classes`` CSV LabelName,DisplayName), ``bundled`` (real photos installed with Python packages, labelled in
setok/data/samples/labels.yaml), and SemHiTok's ``webdataset`` (``root`` = a folder of img2dataset tar shards
``00000.tar`` ... holding ``<key>.jpg`` + ``<key>.txt`` caption + ``<key>.json``: COYO-700M subsets and the
MidJourney-style data).

SeTokIM kinds (``setok.data.sources``): ``llava`` (conversation JSON ``annotations``, images under ``root``),
``coco_captions`` (``captions_*.json`` + image folder), ``instructpix2pix`` (``root`` of sample folders with
``prompt.json``), ``magicbrush`` (``root`` with ``edit_sessions.json`` + ``images/``), ``refcoco`` (``annotations`` =
folder with ``refs(*).p`` + ``instances.json``, ``root`` = COCO train2014 images, ``split``, ``split_by`` = which
``refs(<split_by>).p``: unc for RefCOCO / RefCOCO+, umd for RefCOCOg), ``visual_genome`` (``annotations`` =
``region_descriptions.json`` with ``image_data.json`` beside it, ``root`` = the folder holding ``VG_100K/`` and
``VG_100K_2/``; ``max_regions`` region descriptions per image), ``text``
(``annotations`` = a ``.jsonl`` / ``.jsonl.zst`` file of ``{"text": ...}``, SlimPajama's layout), ``coco_instances``
(``instances_*.json`` + image folder: every object mask with its category name, for the mask decoder phase).
``imagenet`` also serves SeTokIM as class-conditional generation ("a photo of a {class}"), ``openimages`` as captioning
and text-to-image from each image's labels (SeTok Table 7's Stage-I OpenImages). ALLaVA-4V, ShareGPT4V and
LLaVA-CC3M-Pretrain-595K ship LLaVA conversation JSON: ``llava``.

``llava`` also reads ShareGPT-style conversation tables without images (Magpie's parquet folders, Evol-Instruct's
JSON, ``.jsonl``; ``root`` only needed when records name images); ``alpaca`` reads Alpaca's JSON; ``openorca`` reads
OpenOrca's parquet (``annotations`` = a file or folder; columns id, system_prompt, question, response).

Each field is declared once, in a one-field base below; a kind lists the bases of its fields in *reverse* order
(dataclasses lay fields out from the last base to the first), so every kind keeps the one field order
``kind, root, synsets, labels, classes, annotations, split, split_by, max_regions, contrastive, limit, tasks``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from setok.configtools import ConfigError, from_dict, key_path

Task = Literal["text", "caption", "generation", "conversation", "edit", "segment"]


class _PickedByKind(type):
    """``DataSource(kind=..., **fields)`` builds and checks that kind's dataclass; the kinds build as usual."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not DataSource:
            return super().__call__(*args, **kwargs)
        if args:
            raise TypeError("DataSource takes keyword arguments only")
        source = from_dict(DataSource, kwargs)
        source.check()
        return source


@dataclass(frozen=True)
class DataSource(metaclass=_PickedByKind):
    """One dataset in its official layout: the base of the kinds (``KINDS``), which hold only their own fields."""

    kind: str = "bundled"

    KINDS: ClassVar[dict[str, type[DataSource]]]  # filled below: kind -> its dataclass
    DEFAULT_KIND: ClassVar[str] = "bundled"
    REQUIRED: ClassVar[tuple[str, ...]] = ()  # paths the kind cannot do without
    NOUN: ClassVar[str] = "dataset"  # how the kind's error messages name an entry

    def check(self, path: str = "") -> None:
        """Reject an entry missing a path its kind needs (``path``: the entry's key path, e.g. ``datasets.coco``)."""
        for key in self.REQUIRED:
            if not getattr(self, key):
                raise ConfigError(f"{key_path(path, key)}: required for a {self.NOUN} of kind {self.kind!r}")


# --------------------------------------------------------------------------------------------- one field each


@dataclass(frozen=True)
class _Root(DataSource):
    root: str | None = None


@dataclass(frozen=True)
class _Synsets(DataSource):
    synsets: str | None = None


@dataclass(frozen=True)
class _Labels(DataSource):
    labels: str | None = None


@dataclass(frozen=True)
class _Classes(DataSource):
    classes: str | None = None


@dataclass(frozen=True)
class _Annotations(DataSource):
    annotations: str | None = None  # the official annotation file (or folder for refcoco)


@dataclass(frozen=True)
class _Split(DataSource):
    split: str | None = None  # refcoco: train / val / testA ...; magicbrush: train / dev


@dataclass(frozen=True)
class _SplitBy(DataSource):
    # refcoco: which refs(<split_by>).p of the release folder (RefCOCO ships refs(google).p and refs(unc).p, RefCOCOg
    # refs(google).p and refs(umd).p); null: the folder must hold exactly one
    split_by: Literal["unc", "umd", "google"] | None = None


@dataclass(frozen=True)
class _MaxRegions(DataSource):
    max_regions: int = 8  # visual_genome: region descriptions per image, one question-answer round each (ours)


@dataclass(frozen=True)
class _Contrastive(DataSource):
    contrastive: bool = True  # whether this source's labels feed the contrastive loss (ImageNet: reconstruction only)


@dataclass(frozen=True)
class _Limit(DataSource):
    limit: int | None = None  # use only the first N images (after sorting)


@dataclass(frozen=True)
class _Tasks(DataSource):
    # SeTokIM sources: keep only the samples of these tasks (e.g. [generation] for MidJourney-style pairs, which
    # SemHiTok generates but never captions); null keeps every task the reader gives.
    tasks: list[Task] | None = None


# --------------------------------------------------------------------------------------------- tokenizer kinds


@dataclass(frozen=True)
class ImageNetSource(_Tasks, _Limit, _Contrastive, _Synsets, _Root):
    """ImageNet class folders ``<root>/<wnid>/*.JPEG``, named by the optional synset list."""

    kind: Literal["imagenet"] = "imagenet"
    REQUIRED = ("root",)


@dataclass(frozen=True)
class OpenImagesSource(_Tasks, _Limit, _Contrastive, _Classes, _Labels, _Root):
    """OpenImages: an image folder, the image-level labels CSV and the class descriptions CSV (``tasks``: when
    SeTokIM reads it, as captioning and text-to-image from the labels)."""

    kind: Literal["openimages"] = "openimages"
    REQUIRED = ("root", "labels", "classes")


@dataclass(frozen=True)
class BundledSource(_Limit, _Contrastive):
    """Real photos installed with Python packages (no path)."""

    kind: Literal["bundled"] = "bundled"


@dataclass(frozen=True)
class WebDatasetSource(_Limit, _Contrastive, _Root):
    """img2dataset tar shards under ``root`` (SemHiTok's image-text data)."""

    kind: Literal["webdataset"] = "webdataset"
    REQUIRED = ("root",)


# --------------------------------------------------------------------------------------------- SeTokIM kinds


@dataclass(frozen=True)
class _MultimodalSource(_Tasks, _Limit):
    """A SeTokIM kind: its errors speak of a source."""

    NOUN = "source"


@dataclass(frozen=True)
class LLaVASource(_MultimodalSource, _Annotations, _Root):
    """LLaVA / ShareGPT conversations; ``root`` holds the images the records name."""

    kind: Literal["llava"] = "llava"
    REQUIRED = ("annotations",)


@dataclass(frozen=True)
class COCOCaptionsSource(_MultimodalSource, _Annotations, _Root):
    """COCO ``captions_*.json`` + its image folder."""

    kind: Literal["coco_captions"] = "coco_captions"
    REQUIRED = ("root", "annotations")


@dataclass(frozen=True)
class COCOInstancesSource(_MultimodalSource, _Annotations, _Root):
    """COCO ``instances_*.json`` + its image folder (object masks for the mask decoder)."""

    kind: Literal["coco_instances"] = "coco_instances"
    REQUIRED = ("root", "annotations")


@dataclass(frozen=True)
class InstructPix2PixSource(_MultimodalSource, _Root):
    """InstructPix2Pix sample folders with ``prompt.json``."""

    kind: Literal["instructpix2pix"] = "instructpix2pix"
    REQUIRED = ("root",)


@dataclass(frozen=True)
class MagicBrushSource(_MultimodalSource, _Split, _Root):
    """MagicBrush: ``edit_sessions.json`` + ``images/`` under ``root``."""

    kind: Literal["magicbrush"] = "magicbrush"
    REQUIRED = ("root",)


@dataclass(frozen=True)
class RefCOCOSource(_MultimodalSource, _SplitBy, _Split, _Annotations, _Root):
    """RefCOCO(+/g): the refer release folder, COCO train2014 images, a split and the refs file it is cut by."""

    kind: Literal["refcoco"] = "refcoco"
    REQUIRED = ("root", "annotations", "split")


@dataclass(frozen=True)
class VisualGenomeSource(_MultimodalSource, _MaxRegions, _Annotations, _Root):
    """Visual Genome: ``region_descriptions.json`` (+ ``image_data.json`` beside it) and the image root."""

    kind: Literal["visual_genome"] = "visual_genome"
    REQUIRED = ("root", "annotations")

    def check(self, path: str = "") -> None:
        super().check(path)
        if isinstance(self.max_regions, bool) or self.max_regions < 1:
            raise ConfigError(f"{key_path(path, 'max_regions')}: must be an integer >= 1, got {self.max_regions!r}")


@dataclass(frozen=True)
class TextSource(_MultimodalSource, _Annotations):
    """A ``{"text": ...}`` JSON-lines corpus (SlimPajama's layout)."""

    kind: Literal["text"] = "text"
    REQUIRED = ("annotations",)


@dataclass(frozen=True)
class AlpacaSource(_MultimodalSource, _Annotations):
    """Alpaca's instruction JSON."""

    kind: Literal["alpaca"] = "alpaca"
    REQUIRED = ("annotations",)


@dataclass(frozen=True)
class OpenOrcaSource(_MultimodalSource, _Annotations):
    """OpenOrca's parquet (a file or a folder)."""

    kind: Literal["openorca"] = "openorca"
    REQUIRED = ("annotations",)


# The order of today's ``kind`` values (error messages list them in it).
DataSource.KINDS = {c.kind: c for c in (  # type: ignore[misc]
    ImageNetSource, OpenImagesSource, BundledSource, LLaVASource, COCOCaptionsSource, InstructPix2PixSource,
    MagicBrushSource, RefCOCOSource, COCOInstancesSource, TextSource, AlpacaSource, OpenOrcaSource, WebDatasetSource,
    VisualGenomeSource,
)}
