"""build_dataset turns config entries into datasets; several sources concatenate with merged classes."""
from __future__ import annotations

from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from setok.config import ConfigError, DataSource
from setok.data import BundledPhotos, ImageNetFolder, LabelledConcat, build_dataset, build_datasets, collate


def _imagenet(root: Path, **kw: object) -> DataSource:
    return DataSource(kind="imagenet", root=str(root), synsets=str(root.parents[3] / "LOC_synset_mapping.txt"),
                      **kw)


def test_bundled_source_with_limit(tmp_path: Path) -> None:
    ds = build_dataset(DataSource(kind="bundled", limit=2, contrastive=False), image_size=16)
    assert isinstance(ds, BundledPhotos) and len(ds) == 2 and ds[0]["contrastive"] is False


def test_imagenet_source_passes_paths_and_flags(imagenet_root: Path) -> None:
    ds = build_dataset(_imagenet(imagenet_root, contrastive=False, limit=3), image_size=16)
    assert isinstance(ds, ImageNetFolder) and ds.classes == ["tench", "goldfish"] and len(ds) == 3
    assert ds[0]["contrastive"] is False


def test_imagenet_source_without_root_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="root"):
        build_dataset(DataSource(kind="imagenet"), image_size=16)


def test_path_a_kind_does_not_use_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="synsets"):
        build_dataset(DataSource(kind="bundled", synsets="x.txt"), image_size=16)


def test_several_sources_concatenate_with_merged_classes_and_remapped_labels(imagenet_root: Path) -> None:
    ds = build_datasets([_imagenet(imagenet_root, contrastive=False), DataSource(kind="bundled", limit=4)],
                        image_size=16)
    assert isinstance(ds, LabelledConcat)
    bundled = BundledPhotos(image_size=16, limit=4)
    assert ds.classes[:2] == ["tench", "goldfish"] and set(bundled.classes) <= set(ds.classes)
    assert ds.ids == ImageNetFolder(imagenet_root, image_size=16).ids + bundled.ids
    chelsea = ds[ds.ids.index("chelsea")]
    assert ds.classes[chelsea["label"]] == "cat"
    assert ds.classes[ds[-1]["label"]] == bundled.classes[bundled[-1]["label"]]
    batch = next(iter(DataLoader(ds, batch_size=len(ds), collate_fn=collate)))
    assert batch["image"].shape == (len(ds), 3, 16, 16)
    assert batch["contrastive"].tolist() == [False] * 5 + [True] * 4


def test_single_source_is_returned_as_is() -> None:
    assert isinstance(build_datasets([DataSource(kind="bundled", limit=1)], image_size=8), BundledPhotos)
