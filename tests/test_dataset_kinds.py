"""One dataclass per dataset kind: the loader picks it by ``kind``, it holds only its kind's fields and checks them;
the generated JSON schema accepts and rejects the same entries."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jsonschema
import pytest
import yaml

from setok.config import ConfigError, DataSource, deep_merge, json_schema, resolve, to_dict
from setok.dataset_kinds import BundledSource, ImageNetSource, LLaVASource, OpenImagesSource, RefCOCOSource

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["kind", "root", "synsets", "labels", "classes", "annotations", "split", "split_by", "max_regions",
         "contrastive", "limit", "tasks"]


def paper() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def with_dataset(entry: dict) -> dict:
    return deep_merge(paper(), {"datasets": {"extra": entry}})


def test_every_kind_has_its_own_dataclass_with_fields_in_the_one_order() -> None:
    assert list(DataSource.KINDS) == [
        "imagenet", "openimages", "bundled", "llava", "coco_captions", "instructpix2pix", "magicbrush", "refcoco",
        "coco_instances", "text", "alpaca", "openorca", "webdataset", "visual_genome"]
    for kind, cls in DataSource.KINDS.items():
        names = [f.name for f in dataclasses.fields(cls)]
        assert names == [n for n in ORDER if n in names], kind
        assert cls().kind == kind and names[0] == "kind" and "limit" in names
    assert [f.name for f in dataclasses.fields(OpenImagesSource)] == [
        "kind", "root", "labels", "classes", "contrastive", "limit", "tasks"]
    assert [f.name for f in dataclasses.fields(RefCOCOSource)] == ["kind", "root", "annotations", "split", "split_by",
                                                                    "limit", "tasks"]


def test_datasource_builds_the_dataclass_of_its_kind() -> None:
    src = DataSource(kind="imagenet", root="r", contrastive=False)
    assert type(src) is ImageNetSource and isinstance(src, DataSource)
    assert to_dict(src) == {"kind": "imagenet", "root": "r", "synsets": None, "contrastive": False, "limit": None,
                            "tasks": None}
    assert type(DataSource()) is BundledSource  # no kind: bundled, as before
    assert type(DataSource(kind="llava", annotations="a.json")) is LLaVASource


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "bundled", "synsets": "x.txt"}, r"^synsets: unknown key \(allowed here: contrastive, kind, limit\)"),
    ({"kind": "llava", "contrastive": False}, r"^contrastive: unknown key"),
    ({"kind": "imagenet"}, r"^root: required for a dataset of kind 'imagenet'$"),
    ({"kind": "refcoco", "root": "r", "annotations": "a"}, r"^split: required for a source of kind 'refcoco'$"),
    ({"kind": "laion"}, r"^kind: 'laion' is not one of 'imagenet', 'openimages', 'bundled', "),
    ({"kind": "refcoco", "root": "r", "annotations": "a", "split": "train", "split_by": "umc"}, r"^split_by: "),
    ({"kind": "visual_genome", "root": "r"}, r"^annotations: required for a source of kind 'visual_genome'$"),
    ({"kind": "visual_genome", "root": "r", "annotations": "a", "max_regions": 0},
     r"^max_regions: must be an integer >= 1, got 0$"),
])
def test_datasource_rejects_what_its_kind_does_not_take(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DataSource(**kwargs)


@pytest.mark.parametrize("entry, message", [
    ({"kind": "nope"}, r"^datasets\.extra\.kind: 'nope' is not one of 'imagenet', .*, 'webdataset', 'visual_genome'$"),
    ({"kind": ["imagenet"]}, r"^datasets\.extra\.kind: \['imagenet'\] is not one of"),
    ({"kind": "bundled", "root": "x"}, r"^datasets\.extra\.root: unknown key"),
    ({"root": "x"}, r"^datasets\.extra\.root: unknown key"),  # no kind: bundled, which has no root
    ({"kind": "openimages", "root": "r", "labels": "l"}, r"^datasets\.extra\.classes: required for a dataset"),
    ({"kind": "text", "annotations": None}, r"^datasets\.extra\.annotations: required for a source of kind 'text'"),
    ({"kind": "webdataset", "root": "r", "limit": "10"}, r"^datasets\.extra\.limit: expected int \| null"),
])
def test_loader_and_schema_reject_a_malformed_entry(entry: dict, message: str) -> None:
    raw = with_dataset(entry)
    with pytest.raises(ConfigError, match=message):
        resolve(raw)
    if "required" not in message:  # the schema does not know which paths a kind needs (the loader does)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(raw, json_schema())


@pytest.mark.parametrize("entry", [
    {},
    {"contrastive": False, "limit": 3},
    {"kind": "imagenet", "root": "r", "synsets": None, "tasks": ["generation"]},
    {"kind": "coco_captions", "root": "r", "annotations": "a", "limit": 2, "tasks": ["caption"]},
    {"kind": "webdataset", "root": "r", "contrastive": False},
])
def test_loader_and_schema_accept_a_well_formed_entry(entry: dict) -> None:
    raw = with_dataset(entry)
    assert resolve(raw).datasets["extra"] == DataSource(**entry)
    jsonschema.validate(raw, json_schema())
