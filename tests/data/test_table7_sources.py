"""SeTok Table 7's training sets in their release layouts (tests/fixtures/training, written by make_fixtures.py):
ALLaVA-4V, ShareGPT4V, LLaVA-CC3M-Pretrain-595K, Visual Genome, Open Images image-level labels, RefCOCO. Each reader
gives known samples; a malformed file or a missing image is one error naming the file; the layout checks name what
is missing; paper.yaml's entries validate and reach the stages Table 7 puts them in (paper-notes S20, S21)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from setok.config import ConfigError, DataSource, deep_merge, load_config, resolve
from setok.data.dataset_checks import check_dataset
from setok.data.multimodal import ImageRef, Turn
from setok.data.sources import build_multimodal_source
from setok.data.sources.visual_genome import crop_box
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures/training"

# the paper.yaml entries, pointed at the fixtures
ENTRIES = {
    "allava_caption_laion": {"kind": "llava", "root": FIX / "allava",
                             "annotations": FIX / "allava/allava_laion/ALLaVA-Caption-LAION-4V.json"},
    "allava_caption_vflan": {"kind": "llava", "root": FIX / "allava",
                             "annotations": FIX / "allava/allava_vflan/ALLaVA-Caption-VFLAN-4V.json"},
    "allava_instruct_laion": {"kind": "llava", "root": FIX / "allava",
                              "annotations": FIX / "allava/allava_laion/ALLaVA-Instruct-LAION-4V.json"},
    "allava_instruct_vflan": {"kind": "llava", "root": FIX / "allava",
                              "annotations": FIX / "allava/allava_vflan/ALLaVA-Instruct-VFLAN-4V.json"},
    "sharegpt4v": {"kind": "llava", "root": FIX / "sharegpt4v/data", "limit": 80000,
                   "annotations": FIX / "sharegpt4v/sharegpt4v_instruct_gpt4-vision_cap100k.json"},
    "llava_cc3m_595k": {"kind": "llava", "root": FIX / "llava_cc3m_595k/images",
                        "annotations": FIX / "llava_cc3m_595k/chat.json"},
    "visual_genome": {"kind": "visual_genome", "root": FIX / "visual_genome",
                      "annotations": FIX / "visual_genome/region_descriptions.json", "max_regions": 8},
    "openimages_pairs": {"kind": "openimages", "root": FIX / "openimages/train",
                         "labels": FIX / "openimages/oidv7-train-annotations-human-imagelabels.csv",
                         "classes": FIX / "openimages/oidv7-class-descriptions.csv"},
    "refcoco": {"kind": "refcoco", "root": FIX / "coco/train2014", "annotations": FIX / "refcoco/refcoco",
                "split": "train", "split_by": "unc"},
}


def spec(name: str, **changes: object) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in {**ENTRIES[name], **changes}.items()}


def read(name: str, **changes: object) -> list:
    return build_multimodal_source(DataSource(**spec(name, **changes)), name=name)


def test_allava_caption_and_instruct_resolve_images_relative_to_the_allava_folder() -> None:
    caps = read("allava_caption_laion")
    assert [s.id for s in caps] == ["allava_caption_laion:allava_laion_cap_astronaut",
                                    "allava_caption_laion:allava_laion_cap_camera",
                                    "allava_caption_laion:allava_laion_cap_grace_hopper"]
    assert caps[0].task == "conversation"
    assert caps[0].turns == (
        Turn("user", (ImageRef(FIX / "allava/allava_laion/images/astronaut.jpeg"),
                      "Please depict the image in words.")),
        Turn("assistant", ("The image shows astronaut, spacesuit, helmet.",)))
    vflan = read("allava_instruct_vflan")
    assert [s.images[0].path for s in vflan] == [FIX / "allava/allava_vflan/images/images_191task_1k/cat+chelsea.jpg",
                                                 FIX / "allava/allava_vflan/images/images_191task_1k/coffee+coffee.jpg"]
    assert vflan[0].turns[1] == Turn("assistant", ("The most prominent object is the cat.",))
    assert len(read("allava_caption_vflan")) == 2 and len(read("allava_instruct_laion")) == 3


def test_sharegpt4v_files_name_images_in_the_release_folders() -> None:
    gpt4v = read("sharegpt4v")
    folders = [s.images[0].path.parent.relative_to(FIX / "sharegpt4v/data").as_posix() for s in gpt4v]
    assert folders == ["coco/train2017", "sam/images", "llava/llava_pretrain/images/00000", "wikiart/images",
                       "share_textvqa/images", "web-celebrity/images", "web-landmark/images"]
    assert gpt4v[0].turns[0].content[1] == "What do you see happening in this image?"
    mix = read("sharegpt4v", annotations=FIX / "sharegpt4v/sharegpt4v_mix665k_cap23k_coco-ap9k_lcs3k_sam9k_div2k.json")
    assert [len(s.turns) for s in mix] == [4, 4, 4, 2] and mix[-1].images == []
    assert mix[0].turns[3] == Turn("assistant", ("coins",))
    captioner = read("sharegpt4v", annotations=FIX / "sharegpt4v/share-captioner_coco_lcs_sam_1246k_1107.json")
    assert len(captioner) == 7
    assert len(read("sharegpt4v", limit=2)) == 2


def test_llava_cc3m_595k_puts_the_image_where_its_trailing_tag_is() -> None:
    s = read("llava_cc3m_595k")
    assert [x.id for x in s] == [f"llava_cc3m_595k:GCC_train_00258258{k}" for k in (5, 6, 7)]
    assert s[0].turns == (
        Turn("user", ("Provide a brief description of the given image.",
                      ImageRef(FIX / "llava_cc3m_595k/images/GCC_train_002582585.jpg"))),
        Turn("assistant", ("lunar surface in a photo .",)))


def test_visual_genome_regions_become_rounds_with_boxes_in_the_centre_crop() -> None:
    s = read("visual_genome")
    assert [x.id for x in s] == ["visual_genome:1", "visual_genome:2", "visual_genome:3"]
    assert [x.task for x in s] == ["caption"] * 3
    # image 1 is 96 x 64: the crop is x in [16, 80]; the central half [24, 72] x [16, 48] -> [8, 56] / 64; the repeat
    # and the 4 x 4 corner outside the crop are left out; the left half is 2/3 inside: [0, 32] x [0, 64]
    prompt = "Please provide a short description for this region: {}"
    assert s[0].turns == (
        Turn("user", (ImageRef(FIX / "visual_genome/VG_100K_2/1.jpg"), prompt.format("[0.12, 0.25, 0.88, 0.75]"))),
        Turn("assistant", ("the cat",)),
        Turn("user", (prompt.format("[0.00, 0.00, 0.50, 1.00]"),)),
        Turn("assistant", ("the left half",)))
    assert s[1].images[0].path == FIX / "visual_genome/VG_100K/2.jpg"
    assert s[2].turns[0].content[1] == prompt.format("[0.18, 0.25, 0.80, 0.75]")  # 81 x 64: crop x in [8.5, 72.5]
    assert len(read("visual_genome", max_regions=1)[0].turns) == 2


@pytest.mark.parametrize("box, expected", [
    ((0, 0, 100, 50), (0.0, 0.0, 1.0, 1.0)),        # wide image: the crop is x in [25, 75]
    ((0, 0, 40, 50), None),                          # 15 of 40 columns inside: less than half
    ((30, 10, 20, 20), (0.1, 0.2, 0.5, 0.6)),
    ((30, 10, 0, 20), None),                         # empty box
])
def test_crop_box_of_a_100_by_50_image(box: tuple, expected: tuple | None) -> None:
    assert crop_box(*box, width=100, height=50) == expected


def test_openimages_labels_give_a_caption_and_a_text_to_image_sample_per_image() -> None:
    s = read("openimages_pairs")
    assert len(s) == 8
    first = FIX / "openimages/train/0000000000000000.jpg"
    assert s[0].id == "openimages_pairs:cap0000000000000000" and s[0].task == "caption"
    assert s[0].turns == (Turn("user", (ImageRef(first),)), Turn("assistant", ("A photo of astronaut and spacesuit.",)))
    assert s[1].task == "generation" and s[1].turns[0].content == ("A photo of astronaut and spacesuit.",)
    assert s[3].turns[0].content == ("A photo of man and video camera.",)  # its third label has Confidence 0


def test_refcoco_reads_the_refs_file_split_by_names() -> None:
    unc = read("refcoco")
    assert [x.turns[0].content[1] for x in unc] == [f"Please segment the object {k} (unc)." for k in (1, 2, 3)]
    google = read("refcoco", split_by="google")
    assert [x.turns[0].content[1] for x in google] == [f"Please segment the object {k} (google)." for k in (4, 5, 6)]
    assert unc[0].images[0].path == FIX / "coco/train2014/COCO_train2014_000000000001.jpg"


def test_refcoco_folder_with_two_refs_files_and_no_split_by_is_refused() -> None:
    with pytest.raises(DataError, match=r"refcoco: holds refs\(google\)\.p, refs\(unc\)\.p; set the source's "
                                        r"split_by to pick one$"):
        read("refcoco", split_by=None)


# ------------------------------------------------------------------------------------------ malformed / missing


def copy(tmp_path: Path, folder: str) -> Path:
    return Path(shutil.copytree(FIX / folder, tmp_path / folder))


def test_allava_record_without_conversations_names_the_file(tmp_path: Path) -> None:
    root = copy(tmp_path, "allava")
    path = root / "allava_laion/ALLaVA-Caption-LAION-4V.json"
    rows = json.loads(path.read_text())
    del rows[1]["conversations"]
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=rf"^{path}: sample 'allava_laion_cap_camera' has no 'conversations' list$"):
        read("allava_caption_laion", root=root, annotations=path)


def test_sharegpt4v_missing_image_names_the_file_and_the_image(tmp_path: Path) -> None:
    root = copy(tmp_path, "sharegpt4v")
    (root / "data/web-landmark/images/hubble_deep_field.jpg").unlink()
    path = root / "sharegpt4v_instruct_gpt4-vision_cap100k.json"
    with pytest.raises(DataError, match=rf"^{path}: 1 image\(s\) not found, first {root}/data/web-landmark/images/"
                                        r"hubble_deep_field\.jpg$"):
        read("sharegpt4v", root=root / "data", annotations=path)


def test_visual_genome_errors_name_the_file(tmp_path: Path) -> None:
    root = copy(tmp_path, "visual_genome")
    regions = root / "region_descriptions.json"
    (root / "VG_100K/3.jpg").unlink()
    with pytest.raises(DataError, match=rf"^{regions}: 1 image\(s\) not found, first {root}/VG_100K/3\.jpg$"):
        read("visual_genome", root=root, annotations=regions)
    data = json.loads(regions.read_text())
    del data[0]["regions"][1]["phrase"]
    regions.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"^{regions}: image 1 has a region without phrase, x, y, width, height$"):
        read("visual_genome", root=root, annotations=regions)
    (root / "image_data.json").unlink()
    with pytest.raises(DataError, match=rf"^{root}/image_data\.json: Visual Genome image_data\.json \(beside "
                                        r"region_descriptions\.json\) not found$"):
        read("visual_genome", root=root, annotations=regions)


# ------------------------------------------------------------------------------------------ layout checks


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_layout_check_passes_on_the_release_layout(name: str) -> None:
    report = check_dataset(name, spec(name))
    assert report.checked and all(Path(p).exists() for p in report.checked)


def test_layout_check_of_visual_genome_names_the_missing_file(tmp_path: Path) -> None:
    root = copy(tmp_path, "visual_genome")
    (root / "image_data.json").unlink()
    with pytest.raises(DataError, match=rf"^dataset visual_genome: {root}/image_data\.json missing \(expected Visual "
                                        r"Genome region_descriptions\.json .*\); download Visual Genome v1\.2 from "
                                        r"visualgenome\.org"):
        check_dataset("visual_genome", spec("visual_genome", root=root, annotations=root / "region_descriptions.json"))


def test_layout_check_of_visual_genome_names_the_missing_image_folder(tmp_path: Path) -> None:
    root = copy(tmp_path, "visual_genome")
    shutil.rmtree(root / "VG_100K_2")
    with pytest.raises(DataError, match=rf"^dataset visual_genome: {root}/VG_100K_2/1\.jpg missing \(expected "
                                        r"VG_100K/ \(images\.zip\) and VG_100K_2/ \(images2\.zip\) under root\)"):
        check_dataset("visual_genome", spec("visual_genome", root=root, annotations=root / "region_descriptions.json"))


def test_layout_check_of_a_malformed_region_file_names_it(tmp_path: Path) -> None:
    root = copy(tmp_path, "visual_genome")
    regions = root / "region_descriptions.json"
    regions.write_text(json.dumps([{"id": 1, "regions": [{"phrase": "x", "x": 0, "y": 0, "width": 1}]}]))
    with pytest.raises(DataError, match=rf"^dataset visual_genome: {regions} malformed \(the first non-empty regions"
                                        r"\[0\] lacks 'height'\)"):
        check_dataset("visual_genome", spec("visual_genome", root=root, annotations=regions))


def test_layout_check_of_allava_names_the_missing_image(tmp_path: Path) -> None:
    root = copy(tmp_path, "allava")
    (root / "allava_laion/images/astronaut.jpeg").unlink()
    with pytest.raises(DataError, match=rf"^dataset allava_caption_laion: {root}/allava_laion/images/astronaut\.jpeg "
                                        r"missing .*; download huggingface\.co/datasets/FreedomIntelligence/ALLaVA-4V"):
        check_dataset("allava_caption_laion", spec("allava_caption_laion", root=root,
                                                   annotations=root / "allava_laion/ALLaVA-Caption-LAION-4V.json"))


def test_layout_check_of_refcoco_wants_split_by_when_the_folder_has_two_refs_files() -> None:
    with pytest.raises(ConfigError, match=r"^datasets\.refcoco\.split_by: not set and .*refcoco holds "
                                          r"refs\(google\)\.p, refs\(unc\)\.p"):
        check_dataset("refcoco", spec("refcoco", split_by=None))
    report = check_dataset("refcoco", spec("refcoco", split_by="google"))
    assert str(FIX / "refcoco/refcoco/refs(google).p") in report.checked


# ------------------------------------------------------------------------------------------ config


def paper() -> dict:
    return yaml.safe_load((ROOT / "config/paper.yaml").read_text())


def test_paper_config_puts_table7_sets_in_setokim_stages_and_keeps_the_llava_setting() -> None:
    cfg = load_config(ROOT / "config/paper.yaml")
    stage1, stage2 = cfg.train_stage1.sources, cfg.train_stage2.sources
    for name in ("allava_caption_laion", "allava_caption_vflan", "llava_cc3m_595k", "visual_genome",
                 "openimages_pairs"):
        assert name in stage1 and name not in stage2
    for name in ("allava_instruct_laion", "allava_instruct_vflan", "sharegpt4v", "refcoco", "refcoco+", "refcocog"):
        assert name in stage2 and name not in stage1
    assert "llava_pretrain" not in stage1  # LLaVA-595K is the CC3M file (S21)
    assert cfg.datasets["llava_pretrain"].annotations.endswith("blip_laion_cc_sbu_558k.json")
    assert cfg.datasets["llava_cc3m_595k"].annotations.endswith("chat.json")
    assert {k: v.split_by for k, v in cfg.datasets.items() if v.kind == "refcoco"} == {
        "refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
    for variant in ("setok_llava", "semhitok_llava", "semhitok_t7_semantic"):  # LLaVA-1.5's 558K / 665K exactly
        v = resolve(paper(), variant)
        assert v.train_stage1.sources == ["llava_pretrain"] and v.train_stage2.sources == ["llava_mix665k"]


@pytest.mark.parametrize("entry, message", [
    ({"visual_genome": {"max_regions": 0}}, r"^datasets\.visual_genome\.max_regions: must be an integer >= 1, got 0$"),
    ({"refcoco": {"split_by": "umc"}}, r"^datasets\.refcoco\.split_by: "),
    ({"sharegpt4v": {"annotations": None}}, r"^datasets\.sharegpt4v\.annotations: required for a source of kind"),
    ({"visual_genome": {"regions": 3}}, r"^datasets\.visual_genome\.regions: unknown key"),
])
def test_config_rejects_a_malformed_entry_naming_the_key(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(deep_merge(paper(), {"datasets": entry}))
