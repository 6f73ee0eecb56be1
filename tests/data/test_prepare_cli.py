"""`python -m setok.data.prepare`: the evaluation set for rFID and top-1, and one-line errors on bad images."""
import json
import subprocess
import sys
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, root: Path) -> Path:
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    raw["datasets"]["val"] = {"kind": "imagenet", "root": str(root), "synsets": None, "contrastive": False}
    raw["eval"].update({"dataset": "val", "fid_image_size": 16})
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(raw))
    return f


def imagenet_val(root: Path) -> None:
    for wnid, colour in (("n01", (255, 0, 0)), ("n02", (0, 0, 255))):
        (root / wnid).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), colour).save(root / wnid / f"{wnid}_{i}.JPEG")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "setok.data.prepare", *args], cwd=ROOT, capture_output=True,
                          text=True)


def test_prepare_writes_reference_images_labels_and_classes(tmp_path):
    imagenet_val(tmp_path / "val")
    r = run("--config", str(config(tmp_path, tmp_path / "val")), "--dataset", "val", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out/images").iterdir()) == [
        "n01_0.png", "n01_1.png", "n02_0.png", "n02_1.png"]
    assert Image.open(tmp_path / "out/images/n02_1.png").size == (16, 16)
    labels = [json.loads(x) for x in (tmp_path / "out/labels.jsonl").read_text().splitlines()]
    assert labels == [{"id": "n01_0", "label": 0}, {"id": "n01_1", "label": 0}, {"id": "n02_0", "label": 1},
                      {"id": "n02_1", "label": 1}]
    assert json.loads((tmp_path / "out/classes.json").read_text()) == ["n01", "n02"]


def test_corrupt_image_fails_with_its_path_in_one_line(tmp_path):
    imagenet_val(tmp_path / "val")
    bad = tmp_path / "val/n02/n02_1.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated JPEG
    r = run("--config", str(config(tmp_path, tmp_path / "val")), "--dataset", "val", "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_missing_dataset_root_fails_with_its_path(tmp_path):
    r = run("--config", str(config(tmp_path, tmp_path / "nowhere")), "--dataset", "val", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and str(tmp_path / "nowhere") in r.stderr and "Traceback" not in r.stderr


def test_images_only_at_another_size_for_a_variants_rfid(tmp_path):
    """SemHiTok-384's rFID references: the same images at 24 px here, and nothing else written."""
    imagenet_val(tmp_path / "val")
    r = run("--config", str(config(tmp_path, tmp_path / "val")), "--dataset", "val", "--out", str(tmp_path / "o"),
            "--size", "24", "--images-only")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["images"]
    assert len(list((tmp_path / "o/images").iterdir())) == 4
    assert Image.open(tmp_path / "o/images/n01_0.png").size == (24, 24)
