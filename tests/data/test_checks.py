"""Layout checks of `python -m setok.data.checks` (datasets) and `python -m evaluation.layout_check` (benchmarks):
tiny official layouts built in tmp_path (ImageNet, COCO captions, LLaVA, webdataset, VQAv2), one-line errors naming
the dataset and the path, SHA256SUMS verification and --write-checksums."""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
import zstandard
from PIL import Image

from evaluation.layout_check import main  # the layout-check CLI with --benchmark (setok.data.checks: datasets)
from evaluation.registry import Benchmark, get
from setok.data.checksums import SUMS, read_sums
from setok.data.dataset_checks import DATASET_CHECKS, check_dataset
from setok.data.layout import sources
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]
SYNSETS = "n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n"


def image(path: Path, colour: tuple[int, int, int] = (200, 10, 10)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), colour).save(path, format="PNG" if path.suffix == ".png" else "JPEG")
    return path


def dump(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ official layouts


def imagenet(base: Path) -> dict[str, Any]:
    root = base / "imagenet/train"
    for wnid in ("n01443537", "n01440764"):
        image(root / wnid / f"{wnid}_1.JPEG")
    (base / "imagenet/LOC_synset_mapping.txt").write_text(SYNSETS)
    return {"kind": "imagenet", "root": str(root), "synsets": str(base / "imagenet/LOC_synset_mapping.txt"),
            "contrastive": False}


def coco_captions(base: Path) -> dict[str, Any]:
    root = base / "coco/train2017"
    for i in (9, 25):
        image(root / f"{i:012d}.jpg")
    ann = dump(base / "coco/annotations/captions_train2017.json", {
        "info": {}, "licenses": [],
        "images": [{"id": 9, "file_name": "000000000009.jpg"}, {"id": 25, "file_name": "000000000025.jpg"}],
        "annotations": [{"id": 1, "image_id": 9, "caption": "A plate of food."},
                        {"id": 2, "image_id": 25, "caption": "A giraffe."}],
    })
    return {"kind": "coco_captions", "root": str(root), "annotations": str(ann)}


def llava(base: Path) -> dict[str, Any]:
    root = base / "llava/images"
    image(root / "coco/train2017/000000033471.jpg")
    image(root / "coco/train2017/000000052846.jpg")
    image(root / "gqa/images/2354786.jpg")
    turns = [{"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A bus."}]
    ann = dump(base / "llava/llava_v1_5_mix665k.json", [
        {"id": "000000033471", "image": "coco/train2017/000000033471.jpg", "conversations": turns},
        {"id": "000000052846", "image": "coco/train2017/000000052846.jpg", "conversations": turns},
        {"id": "2354786", "image": "gqa/images/2354786.jpg", "conversations": turns},
        {"id": "sharegpt_1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    ])
    return {"kind": "llava", "root": str(root), "annotations": str(ann)}


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def webdataset(base: Path) -> dict[str, Any]:
    root = base / "coyo/coyo20m"
    root.mkdir(parents=True)
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 0)).save(jpeg, format="JPEG")
    for shard in range(2):
        with tarfile.open(root / f"{shard:05d}.tar", "w") as tar:
            key = f"{shard:05d}0000"
            add(tar, f"{key}.jpg", jpeg.getvalue())
            add(tar, f"{key}.txt", b"a green square")
            add(tar, f"{key}.json", b'{"url": "http://example.invalid/x.jpg"}')
    (root / "00000_stats.json").write_text("{}")
    return {"kind": "webdataset", "root": str(root), "contrastive": False}


def vqav2(base: Path) -> dict[str, Any]:
    questions = dump(base / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", {
        "data_subtype": "val2014",
        "questions": [{"question_id": 42000, "image_id": 42, "question": "What colour is the bus?"}],
    })
    annotations = dump(base / "vqav2/v2_mscoco_val2014_annotations.json", {"annotations": [
        {"question_id": 42000, "image_id": 42, "answer_type": "other", "question_type": "what color",
         "multiple_choice_answer": "red", "answers": [{"answer": "red", "answer_confidence": "yes", "answer_id": 1}]},
    ]})
    image(base / "coco/val2014/COCO_val2014_000000000042.jpg")
    return {"predictions": "vqav2.json", "annotations": str(annotations), "questions": str(questions),
            "images": str(base / "coco/val2014")}


LAYOUTS = {"imagenet": imagenet, "coco_captions": coco_captions, "llava_mix665k": llava, "coyo20m": webdataset}


def config(tmp_path: Path, datasets: dict[str, dict[str, Any]], benchmarks: dict[str, dict[str, Any]] | None = None,
           ) -> Path:
    """config/paper.yaml with ``datasets`` (and ``benchmarks``) entries replaced by the tmp_path layouts."""
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    raw["datasets"].update(datasets)
    raw["benchmarks"].update(benchmarks or {})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def check(tmp_path: Path, name: str, spec: dict[str, Any], *extra: str, benchmark: bool = False) -> int:
    cfg = config(tmp_path, {} if benchmark else {name: spec}, {name: spec} if benchmark else None)
    flag = "--benchmark" if benchmark else "--dataset"
    return main(["--config", str(cfg), flag, name, "--out", str(tmp_path / f"checked/{name}.json"), *extra])


def record(tmp_path: Path, name: str) -> dict[str, Any]:
    return json.loads((tmp_path / f"checked/{name}.json").read_text())


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------------ passing


def test_imagenet_layout_passes_and_the_record_lists_what_was_checked(tmp_path):
    spec = imagenet(tmp_path)
    assert check(tmp_path, "imagenet", spec) == 0
    root = tmp_path / "imagenet/train"
    assert record(tmp_path, "imagenet") == {
        "dataset": "imagenet", "kind": "imagenet", "checksums_verified": 0,
        "checked": [str(root), str(root / "n01440764/n01440764_1.JPEG"), str(root / "n01443537/n01443537_1.JPEG"),
                    spec["synsets"]],
    }


def test_coco_captions_layout_passes(tmp_path):
    spec = coco_captions(tmp_path)
    assert check(tmp_path, "coco_captions", spec) == 0
    rec = record(tmp_path, "coco_captions")
    assert (rec["dataset"], rec["kind"], rec["checksums_verified"]) == ("coco_captions", "coco_captions", 0)
    assert rec["checked"] == [spec["annotations"], spec["root"], str(Path(spec["root"]) / "000000000009.jpg"),
                              str(Path(spec["root"]) / "000000000025.jpg")]


def test_llava_layout_samples_one_image_per_image_folder(tmp_path):
    spec = llava(tmp_path)
    assert check(tmp_path, "llava_mix665k", spec) == 0
    root = Path(spec["root"])
    assert record(tmp_path, "llava_mix665k")["checked"] == [
        spec["annotations"], str(root), str(root / "coco/train2017/000000033471.jpg"),
        str(root / "gqa/images/2354786.jpg")]


def test_webdataset_layout_passes_with_its_first_shard_read(tmp_path):
    spec = webdataset(tmp_path)
    assert check(tmp_path, "coyo20m", spec) == 0
    assert record(tmp_path, "coyo20m") == {"dataset": "coyo20m", "kind": "webdataset", "checksums_verified": 0,
                                           "checked": [spec["root"], str(Path(spec["root"]) / "00000.tar")]}


def test_vqav2_benchmark_passes(tmp_path):
    spec = vqav2(tmp_path)
    assert check(tmp_path, "vqav2", spec, benchmark=True) == 0
    assert record(tmp_path, "vqav2") == {
        "dataset": "vqav2", "kind": "benchmark", "checksums_verified": 0,
        "checked": [spec["questions"], spec["annotations"], spec["images"],
                    str(Path(spec["images"]) / "COCO_val2014_000000000042.jpg")],
    }


# ------------------------------------------------------------------------------------------------ failing


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_missing_root_exits_2_naming_the_dataset_the_path_and_where_to_download(tmp_path, capsys, name):
    spec = LAYOUTS[name](tmp_path)
    spec["root"] = str(tmp_path / "nowhere" / name)
    assert check(tmp_path, name, spec) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: dataset {name}: {spec['root']} missing (expected ")
    assert err.endswith(f"and place it at {spec['root']}") and "; download " in err
    assert not (tmp_path / f"checked/{name}.json").exists()


def test_missing_root_through_the_real_command_line(tmp_path):
    spec = imagenet(tmp_path)
    spec["root"] = str(tmp_path / "absent/train")
    cfg = config(tmp_path, {"imagenet": spec})
    r = subprocess.run([sys.executable, "-m", "setok.data.checks", "--config", str(cfg), "--dataset", "imagenet",
                        "--out", str(tmp_path / "imagenet.json")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert f"error: dataset imagenet: {spec['root']} missing (expected class folders" in r.stderr
    assert "image-net.org" in r.stderr


def test_coco_json_without_annotations_key_is_named(tmp_path, capsys):
    spec = coco_captions(tmp_path)
    data = json.loads(Path(spec["annotations"]).read_text())
    del data["annotations"]
    dump(Path(spec["annotations"]), data)
    assert check(tmp_path, "coco_captions", spec) == 2
    err = one_line_error(capsys)
    assert f"dataset coco_captions: {spec['annotations']} malformed (no top-level key 'annotations')" in err
    assert "cocodataset.org" in err


def test_llava_record_without_conversations_is_named(tmp_path, capsys):
    spec = llava(tmp_path)
    data = json.loads(Path(spec["annotations"]).read_text())
    del data[2]["conversations"]
    dump(Path(spec["annotations"]), data)
    assert check(tmp_path, "llava_mix665k", spec) == 2
    assert f"{spec['annotations']} malformed (records[2] lacks 'conversations')" in one_line_error(capsys)


def test_llava_missing_image_folder_is_named(tmp_path, capsys):
    spec = llava(tmp_path)
    missing = Path(spec["root"]) / "gqa/images/2354786.jpg"
    missing.unlink()
    assert check(tmp_path, "llava_mix665k", spec) == 2
    err = one_line_error(capsys)
    assert f"dataset llava_mix665k: {missing} missing" in err and err.endswith(f"place it at {spec['root']}")


def test_empty_class_folder_and_flat_val_folder_are_errors(tmp_path):
    spec = imagenet(tmp_path)
    (Path(spec["root"]) / "n01443537/n01443537_1.JPEG").unlink()
    with pytest.raises(DataError, match=r"n01443537 has no images"):
        check_dataset("imagenet", spec)
    flat = tmp_path / "val"
    image(flat / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataError, match=r"val has no class folders .*sort them into <wnid>/ folders"):
        check_dataset("imagenet_val", {**spec, "root": str(flat)})


def test_class_folder_absent_from_the_synsets_file_is_named(tmp_path):
    spec = imagenet(tmp_path)
    image(Path(spec["root"]) / "n09999999/n09999999_1.JPEG")
    with pytest.raises(DataError, match=r"LOC_synset_mapping.txt has no entry for class folder n09999999"):
        check_dataset("imagenet", spec)


def test_webdataset_without_shards_or_with_a_broken_shard_fails(tmp_path):
    spec = webdataset(tmp_path)
    (Path(spec["root"]) / "00000.tar").write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(DataError, match=r"00000.tar malformed \(not a readable tar"):
        check_dataset("coyo20m", spec)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=rf"dataset coyo20m: {empty} has no .tar shards"):
        check_dataset("coyo20m", {**spec, "root": str(empty)})


def test_vqav2_questions_without_image_id_and_missing_image(tmp_path, capsys):
    spec = vqav2(tmp_path)
    (Path(spec["images"]) / "COCO_val2014_000000000042.jpg").unlink()
    assert check(tmp_path, "vqav2", spec, benchmark=True) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: benchmark vqav2: {spec['images']}/COCO_val2014_000000000042.jpg missing")
    assert "visualqa.org" in err
    dump(Path(spec["questions"]), {"questions": [{"question_id": 1, "question": "?"}]})
    assert check(tmp_path, "vqav2", spec, benchmark=True) == 2
    assert f"{spec['questions']} malformed (questions[0] lacks 'image_id')" in one_line_error(capsys)


def test_refcoco_release_needs_refs_of_the_configured_split(tmp_path):
    folder = tmp_path / "refcoco+"
    folder.mkdir()
    refs = [{"ref_id": 1, "ann_id": 5, "image_id": 9, "split": "train", "sentences": [{"sent_id": 1, "sent": "cat"}]}]
    (folder / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    dump(folder / "instances.json", {"images": [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg",
                                                 "height": 6, "width": 8}], "annotations": []})
    images = tmp_path / "coco/train2014"
    image(images / "COCO_train2014_000000000009.jpg")
    spec = {"kind": "refcoco", "root": str(images), "annotations": str(folder), "split": "train"}
    report = check_dataset("refcoco+", spec, write=True)
    assert report.checked[-1] == str(images / "COCO_train2014_000000000009.jpg")
    assert [rel for _, _, rel in read_sums(folder / SUMS)] == ["instances.json", "refs(unc).p"]
    assert report.checksums_verified == 2
    with pytest.raises(DataError, match=r"no ref in split 'val'; splits present: train"):
        check_dataset("refcoco+", {**spec, "split": "val"})


def test_text_corpus_first_line_is_read_through_zstd(tmp_path):
    path = tmp_path / "example_train_0.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(b'\n{"text": "hello", "meta": {}}\n'))
    assert check_dataset("slimpajama", {"kind": "text", "annotations": str(path)}).checked == [str(path)]
    path.write_bytes(zstandard.ZstdCompressor().compress(b'{"content": "hello"}\n'))
    with pytest.raises(DataError, match=r"malformed \(line 1 lacks 'text'\)"):
        check_dataset("slimpajama", {"kind": "text", "annotations": str(path)})


def test_openimages_needs_an_image_and_the_official_csv_headers(tmp_path):
    root = tmp_path / "openimages/train"
    root.mkdir(parents=True)
    labels, classes = tmp_path / "openimages/labels.csv", tmp_path / "openimages/classes.csv"
    labels.write_text("ImageID,Source,LabelName,Confidence\n000002b66c9c498e,xclick,/m/011k07,1\n")
    classes.write_text("/m/011k07,Tortoise\n")
    spec = {"kind": "openimages", "root": str(root), "labels": str(labels), "classes": str(classes)}
    with pytest.raises(DataError, match=r"openimages/train has no \.jpg images"):
        check_dataset("openimages", spec)
    Image.new("RGB", (4, 4)).save(root / "000002b66c9c498e.jpg")
    assert check_dataset("openimages", spec).checked[:2] == [str(root), str(root / "000002b66c9c498e.jpg")]
    labels.write_text("ImageID,Source,Label\n")
    with pytest.raises(DataError, match=r"malformed \(header lacks 'LabelName'\)"):
        check_dataset("openimages", spec)


def test_alpaca_records_need_instruction_and_output(tmp_path):
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps([{"instruction": "Add.", "input": "1+1", "output": "2"}]))
    assert check_dataset("alpaca", {"kind": "alpaca", "annotations": str(path)}).checked == [str(path)]
    path.write_text(json.dumps([{"instruction": "Add.", "input": "1+1", "output": "2"}, {"instruction": "x"}]))
    with pytest.raises(DataError, match=r"malformed \(records\[1\] lacks 'output'\)"):
        check_dataset("alpaca", {"kind": "alpaca", "annotations": str(path)})


# ---------------------------------------------------------------------------------------------- checksums


def test_sha256sums_verify_then_one_corrupt_byte_is_named(tmp_path, capsys):
    spec = coco_captions(tmp_path)
    ann, root = Path(spec["annotations"]), Path(spec["root"])
    first, second = root / "000000000009.jpg", root / "000000000025.jpg"
    (ann.parent / SUMS).write_text(f"{sha(ann)}  {ann.name}\n")
    (root / SUMS).write_text(f"{sha(first)}  {first.name}\n{sha(second)} *./{second.name}\n")
    assert check(tmp_path, "coco_captions", spec) == 0
    assert record(tmp_path, "coco_captions")["checksums_verified"] == 3

    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0x01
    second.write_bytes(bytes(data))
    assert check(tmp_path, "coco_captions", spec) == 2
    err = one_line_error(capsys)
    assert f"error: dataset coco_captions: {second} fails its checksum ({root / SUMS} line 2: expected sha256 " in err
    assert err.endswith(f"and place it at {second}")


def test_a_file_listed_in_sha256sums_but_absent_is_named(tmp_path):
    spec = imagenet(tmp_path)
    synsets = Path(spec["synsets"])
    (synsets.parent / SUMS).write_text(f"{sha(synsets)}  {synsets.name}\n{'0' * 64}  LOC_val_solution.csv\n")
    with pytest.raises(DataError, match=r"LOC_val_solution.csv missing \(expected a file .*SHA256SUMS lists on line 2"):
        check_dataset("imagenet", spec)


def test_write_checksums_round_trips_and_keeps_other_entries(tmp_path, capsys):
    spec = coco_captions(tmp_path)
    ann = Path(spec["annotations"])
    other = ann.parent / "instances_train2017.json"
    other.write_text("{}")
    sums = ann.parent / SUMS
    sums.write_text(f"{sha(other)}  {other.name}\n")

    assert check(tmp_path, "coco_captions", spec, "--write-checksums") == 0
    assert read_sums(sums) == [(1, sha(ann), ann.name), (2, sha(other), other.name)]
    assert not (Path(spec["root"]) / SUMS).exists()  # image folders are not hashed
    assert record(tmp_path, "coco_captions")["checksums_verified"] == 2

    assert check(tmp_path, "coco_captions", spec) == 0  # the pinned files verify on a plain check
    assert record(tmp_path, "coco_captions")["checksums_verified"] == 2
    ann.write_text(ann.read_text().replace("A giraffe.", "A giraffe!"))  # still valid JSON, one byte changed
    assert check(tmp_path, "coco_captions", spec) == 2
    assert f"{ann} fails its checksum ({sums} line 1" in one_line_error(capsys)


def test_write_checksums_for_a_benchmark_pins_questions_and_annotations_only(tmp_path):
    spec = vqav2(tmp_path)
    assert check(tmp_path, "vqav2", spec, "--write-checksums", benchmark=True) == 0
    sums = Path(spec["questions"]).parent / SUMS
    assert sorted(rel for _, _, rel in read_sums(sums)) == ["v2_OpenEnded_mscoco_val2014_questions.json",
                                                            "v2_mscoco_val2014_annotations.json"]
    assert not (Path(spec["images"]) / SUMS).exists()
    assert record(tmp_path, "vqav2")["checksums_verified"] == 2


def test_malformed_sha256sums_line_is_named(tmp_path):
    sums = tmp_path / SUMS
    sums.write_text(f"{'a' * 64}  ok.json\nnot-a-digest  x.json\n")
    with pytest.raises(DataError, match=rf"{sums}: line 2 is not '<sha256 hex>  <relative path>'"):
        read_sums(sums)


# ---------------------------------------------------------------------------------------------- coverage


def test_every_configured_dataset_and_benchmark_has_a_check_and_a_download_source():
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    table = sources()
    for name, spec in raw["datasets"].items():
        assert spec["kind"] in DATASET_CHECKS, name
        assert name in table["datasets"], name
    for name in raw["benchmarks"]:
        own_check = type(get(name)).check_layout.__func__ is not Benchmark.check_layout.__func__
        assert own_check and name in table["benchmarks"], name


def test_layout_check_needs_exactly_one_of_dataset_and_benchmark(tmp_path, capsys):
    cfg = config(tmp_path, {})
    with pytest.raises(SystemExit) as e:
        main(["--config", str(cfg), "--dataset", "imagenet", "--benchmark", "vqav2", "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--config", str(cfg), "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2 and "one of the arguments --dataset --benchmark is required" in capsys.readouterr().err
