"""OpenImagesManifest reads the official CSVs: positive labels grouped per image as display names."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import setok.data.openimages as openimages_module
from setok.data import OpenImagesManifest
from setok.io import DataError

Make = Callable[..., tuple[Path, Path, Path]]

# Header and column layout as in oidv6-train-annotations-human-imagelabels.csv.
IMAGE_LABELS = """ImageID,Source,LabelName,Confidence
00a1b2c3d4e5f601,verification,/m/01g317,1
000002b66c9c498e,verification,/m/0k4j,1
000002b66c9c498e,crowdsource-verification,/m/09j2d,0
000002b66c9c498e,verification,/m/01g317,1
000002b66c9c498e,crowdsource-verification,/m/0k4j,1
0000048549557964,verification,/m/09j2d,0
"""
# class-descriptions-boxable.csv has no header.
CLASSES = "/m/01g317,Person\n/m/0k4j,Car\n/m/09j2d,Clothing\n/m/0199g,\"Bicycle, road\"\n"
# Header and column layout as in oidv6-train-annotations-bbox.csv.
BOXES = """ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside
000002b66c9c498e,xclick,/m/0199g,1,0.1,0.5,0.2,0.6,0,0,0,0,0
000002b66c9c498e,xclick,/m/01g317,1,0.0,0.3,0.1,0.9,1,0,0,0,0
000002b66c9c498e,xclick,/m/0199g,1,0.5,0.9,0.2,0.6,0,1,0,0,0
"""
IDS = ["000002b66c9c498e", "00a1b2c3d4e5f601"]


@pytest.fixture(params=["pandas-pyarrow", "pandas-c", "csv-module"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test with pandas (pyarrow and C CSV engines) and with the standard-library fallback."""
    if request.param == "csv-module":
        monkeypatch.setattr(openimages_module, "load_pandas", lambda: None)
        return request.param
    if openimages_module.load_pandas() is None:
        pytest.skip("pandas is not installed")
    if request.param == "pandas-c":
        monkeypatch.setattr(openimages_module, "_csv_engine", lambda: "c")
    elif openimages_module._csv_engine() != "pyarrow":
        pytest.skip("pyarrow is not installed")
    return request.param


def test_labels_are_grouped_per_image_deduplicated_in_first_seen_order(openimages: Make, backend: str) -> None:
    ds = OpenImagesManifest(*openimages(IMAGE_LABELS, CLASSES, IDS), image_size=16)
    assert ds.ids == IDS  # sorted by ImageID; the image with only Confidence-0 rows is not a sample
    assert ds[0]["labels"] == ["Car", "Person"]
    assert ds[1]["labels"] == ["Person"]


def test_confidence_zero_rows_are_dropped(openimages: Make, backend: str) -> None:
    ds = OpenImagesManifest(*openimages(IMAGE_LABELS, CLASSES, IDS), image_size=16)
    assert all("Clothing" not in ds[i]["labels"] for i in range(len(ds)))


def test_box_annotations_csv_and_classes_csv_with_header(openimages: Make, backend: str) -> None:
    classes = "LabelName,DisplayName\n" + CLASSES
    ds = OpenImagesManifest(*openimages(BOXES, classes, IDS[:1]), image_size=16)
    assert ds.ids == IDS[:1]
    assert ds[0]["labels"] == ["Bicycle, road", "Person"]


def test_rows_without_confidence_column_are_all_kept(openimages: Make, backend: str) -> None:
    csv = "ImageID,LabelName\n000002b66c9c498e,/m/09j2d\n000002b66c9c498e,/m/0k4j\n"
    ds = OpenImagesManifest(*openimages(csv, CLASSES, IDS[:1]), image_size=16)
    assert ds[0]["labels"] == ["Clothing", "Car"]


def test_sample_has_no_class_and_is_contrastive(openimages: Make, backend: str) -> None:
    ds = OpenImagesManifest(*openimages(IMAGE_LABELS, CLASSES, IDS), image_size=16)
    s = ds[0]
    assert ds.classes == [] and s["label"] == -1 and s["contrastive"] is True
    assert s["id"] == IDS[0] and s["image"].shape == (3, 16, 16)
    assert ds.vocabulary == ["Person", "Car", "Clothing", "Bicycle, road"]


def test_limit_keeps_the_first_images_by_id(openimages: Make, backend: str) -> None:
    ds = OpenImagesManifest(*openimages(IMAGE_LABELS, CLASSES, IDS[:1]), image_size=16, limit=1)
    assert ds.ids == IDS[:1] and ds[0]["labels"] == ["Car", "Person"]


def test_image_listed_but_missing_on_disk_is_an_error_naming_it(openimages: Make, backend: str) -> None:
    with pytest.raises(DataError, match="00a1b2c3d4e5f601.jpg"):
        OpenImagesManifest(*openimages(IMAGE_LABELS, CLASSES, IDS[:1]), image_size=16)


def test_unknown_mid_is_an_error_naming_it_and_the_file(openimages: Make, backend: str) -> None:
    csv = IMAGE_LABELS + "000002b66c9c498e,verification,/m/0xyz12,1\n"
    with pytest.raises(DataError, match=r"labels\.csv.*/m/0xyz12"):
        OpenImagesManifest(*openimages(csv, CLASSES, IDS), image_size=16)


def test_labels_csv_without_image_id_column_is_an_error(openimages: Make, backend: str) -> None:
    with pytest.raises(DataError, match="ImageID"):
        OpenImagesManifest(*openimages("LabelName,Confidence\n/m/0k4j,1\n", CLASSES, []), image_size=16)


def test_non_numeric_confidence_is_an_error_with_line_number(openimages: Make, backend: str) -> None:
    csv = IMAGE_LABELS + "000002b66c9c498e,verification,/m/0k4j,yes\n"
    with pytest.raises(DataError, match="line 8"):
        OpenImagesManifest(*openimages(csv, CLASSES, IDS), image_size=16)


def test_truncated_jpeg_raises_data_error_naming_the_file(openimages: Make, backend: str) -> None:
    root, labels, classes = openimages(IMAGE_LABELS, CLASSES, IDS)
    path = root / f"{IDS[1]}.jpg"
    path.write_bytes(path.read_bytes()[:200])
    ds = OpenImagesManifest(root, labels, classes, image_size=16)
    with pytest.raises(DataError, match=str(path)):
        ds[1]


def test_labels_csv_without_positive_rows_is_an_error(openimages: Make, backend: str) -> None:
    csv = "ImageID,Source,LabelName,Confidence\n000002b66c9c498e,verification,/m/0k4j,0\n"
    with pytest.raises(DataError, match="no row with Confidence 1"):
        OpenImagesManifest(*openimages(csv, CLASSES, IDS[:1]), image_size=16)


def test_fractional_confidence_one_counts_as_positive(openimages: Make, backend: str) -> None:
    csv = "ImageID,Source,LabelName,Confidence\n000002b66c9c498e,x,/m/0k4j,1.0\n000002b66c9c498e,x,/m/09j2d,0.5\n"
    ds = OpenImagesManifest(*openimages(csv, CLASSES, IDS[:1]), image_size=16)
    assert ds[0]["labels"] == ["Car"]
