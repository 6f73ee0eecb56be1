"""Dataset readers for the official layouts (ImageNet class folders, OpenImages CSVs) and bundled real photos.

Every dataset returns :class:`~setok.data.sample.Sample` dicts and exposes ``classes`` and ``ids``;
:func:`build_dataset` is the only place that reads a :class:`~setok.config.DataSource` (one dataclass per kind).
"""
from __future__ import annotations

from collections.abc import Sequence

from torch.utils.data import Dataset

from setok.config import ConfigError, DataSource
from setok.data.bundled import BundledPhotos
from setok.data.concat import LabelledConcat
from setok.data.image_shards import ImageShards
from setok.data.imagenet import ImageNetFolder
from setok.data.openimages import OpenImagesManifest
from setok.data.reference import write_reference_images
from setok.data.sample import Batch, Sample, collate
from setok.data.transforms import image_transform

__all__ = [
    "Batch", "BundledPhotos", "ImageNetFolder", "ImageShards", "LabelledConcat", "OpenImagesManifest", "Sample",
    "build_dataset", "build_datasets", "collate", "image_transform", "write_reference_images",
]

_IMAGE_KINDS = ("imagenet", "openimages", "bundled", "webdataset")


def _check_source(source: DataSource) -> None:
    if source.kind not in _IMAGE_KINDS:
        raise ConfigError(f"kind: {source.kind!r} is not an image dataset kind ({', '.join(_IMAGE_KINDS)}); it "
                          "serves the MLLM stages")
    source.check()  # the paths its kind needs (a kind's dataclass holds no path it does not use)


def build_dataset(source: DataSource, *, image_size: int) -> Dataset[Sample]:
    """Build the dataset a config entry describes.

    Args:
        source: One ``datasets.<name>`` entry of the config.
        image_size: Side of the square images the dataset returns.

    Returns:
        An :class:`ImageNetFolder`, :class:`OpenImagesManifest` or :class:`BundledPhotos`.

    Raises:
        ConfigError: The kind is not an image dataset kind, or a path it needs is missing.
        setok.io.DataError: The data on disk does not match the official layout.
    """
    _check_source(source)
    if source.kind == "imagenet":
        return ImageNetFolder(source.root, image_size=image_size, synsets=source.synsets, limit=source.limit,
                              contrastive=source.contrastive)
    if source.kind == "openimages":
        return OpenImagesManifest(source.root, source.labels, source.classes, image_size=image_size,
                                  limit=source.limit, contrastive=source.contrastive)
    if source.kind == "bundled":
        return BundledPhotos(image_size=image_size, limit=source.limit, contrastive=source.contrastive)
    if source.kind == "webdataset":
        return ImageShards(source.root, image_size=image_size, limit=source.limit, contrastive=source.contrastive)
    raise ConfigError(f"kind: unknown dataset kind {source.kind!r}")


def build_datasets(sources: Sequence[DataSource], *, image_size: int) -> Dataset[Sample]:
    """Build several config entries as one dataset (e.g. ImageNet + OpenImages for training).

    Args:
        sources: The config entries, in order.
        image_size: Side of the square images.

    Returns:
        The single dataset when there is one source, otherwise a :class:`LabelledConcat` of them.

    Raises:
        ValueError: ``sources`` is empty.
    """
    if not sources:
        raise ValueError("build_datasets: no sources")
    parts = [build_dataset(s, image_size=image_size) for s in sources]
    return parts[0] if len(parts) == 1 else LabelledConcat(parts)
