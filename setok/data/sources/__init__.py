"""SeTokIM training sources in their official layouts -> :class:`~setok.data.multimodal.MultimodalSample` lists.

:func:`build_multimodal_source` is the one place that reads a :class:`~setok.config.DataSource` of these kinds (one
dataclass per kind, :mod:`setok.dataset_kinds`).
"""
from __future__ import annotations

from setok.config import ConfigError, DataSource
from setok.data.multimodal import MultimodalSample

# the SeTokIM kinds (each kind's dataclass checks the paths it needs)
_KINDS = ("llava", "coco_captions", "coco_instances", "instructpix2pix", "magicbrush", "refcoco", "text", "alpaca",
          "openorca", "imagenet", "openimages", "visual_genome")


def build_multimodal_source(source: DataSource, *, name: str) -> list[MultimodalSample]:
    """Read one ``datasets.<name>`` entry as SeTokIM samples (ids ``<name>:<official id>``; those of ``tasks``, then
    the first ``limit``, kept).

    Raises:
        ConfigError: the kind is not a SeTokIM kind, or a path it needs is missing.
        setok.io.DataError: the files do not match the official layout.
    """
    if source.kind not in _KINDS:
        raise ConfigError(f"datasets.{name}.kind: {source.kind!r} is not a SeTokIM source ({', '.join(_KINDS)})")
    source.check(f"datasets.{name}")
    from setok.data.sources import coco, editing, imagenet, llava, openimages, refcoco, text, visual_genome

    read = {
        "llava": lambda: llava.read_llava(source.annotations, source.root),
        "coco_captions": lambda: coco.read_coco_captions(source.annotations, source.root),
        "coco_instances": lambda: coco.read_coco_instances(source.annotations, source.root),
        "instructpix2pix": lambda: editing.read_instructpix2pix(source.root),
        "magicbrush": lambda: editing.read_magicbrush(source.root),
        "refcoco": lambda: refcoco.read_refcoco(source.annotations, source.root, split=source.split,
                                                split_by=source.split_by),
        "text": lambda: text.read_text_corpus(source.annotations, limit=source.limit),
        "alpaca": lambda: text.read_alpaca(source.annotations),
        "openorca": lambda: text.read_openorca(source.annotations),
        "imagenet": lambda: imagenet.read_imagenet_generation(source.root, synsets=source.synsets),
        "openimages": lambda: openimages.read_openimages_pairs(source.root, source.labels, source.classes),
        "visual_genome": lambda: visual_genome.read_visual_genome(source.annotations, source.root,
                                                                  max_regions=source.max_regions),
    }[source.kind]
    samples = read()
    if source.tasks is not None:
        samples = [s for s in samples if s.task in source.tasks]
        if not samples:
            raise ConfigError(f"datasets.{name}.tasks: no sample of {source.tasks} in a {source.kind!r} source")
    if source.limit is not None:
        samples = samples[: source.limit]
    out = [MultimodalSample(f"{name}:{s.id}", s.task, s.turns, s.meta) for s in samples]
    if len({s.id for s in out}) != len(out):
        raise ConfigError(f"datasets.{name}: sample ids are not unique")
    return out
