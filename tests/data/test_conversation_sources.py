"""The unified MLLM's sources in their release layouts (SemHiTok Sec. 4.1, paper-notes H8): ShareGPT conversations as
JSON lines or parquet folders (Magpie), OpenOrca's parquet, EMOVA-style parquet with the images inside the rows
(unpacked by ``setok.data.parquet_to_llava``), the ``tasks`` filter (MidJourney-style pairs as text-to-image only)
and the paper's mixture shares."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from setok.config import ConfigError, DataSource
from setok.data.checks import main as check_main
from setok.data.parquet_to_llava import convert
from setok.data.sources import build_multimodal_source
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/training"


def conv(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": who, "value": text} for who, text in turns]


def parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="JPEG")
    return buf.getvalue()


def read(kind: str, **kw: object) -> list:
    return build_multimodal_source(DataSource(kind=kind, **kw), name="src")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- ShareGPT conversations


def test_parquet_folder_is_read_in_file_name_order_without_an_image_root(tmp_path):
    folder = tmp_path / "data"
    parquet(folder / "train-00001-of-00002.parquet", [{"uuid": "b", "conversations": conv(("human", "Q2"),
                                                                                            ("gpt", "A2"))}])
    parquet(folder / "train-00000-of-00002.parquet", [
        {"uuid": "a", "conversations": conv(("human", "Q0"), ("gpt", "A0"), ("human", "Q1"), ("gpt", "A1"))}])
    samples = read("llava", annotations=str(folder))
    assert [s.id for s in samples] == ["src:0", "src:1"]  # Magpie has no 'id' column: row numbers
    assert [(t.role, t.content) for t in samples[0].turns] == [
        ("user", ("Q0",)), ("assistant", ("A0",)), ("user", ("Q1",)), ("assistant", ("A1",))]
    assert samples[1].turns[0].content == ("Q2",)
    assert all(s.task == "conversation" and not s.images for s in samples)


def test_json_lines_and_a_leading_system_turn_folded_into_the_first_question(tmp_path):
    path = tmp_path / "evol.jsonl"
    rows = [{"id": "x", "conversations": conv(("system", "Be brief."), ("human", "Why?"), ("gpt", "Because."))},
            {"id": "y", "conversations": conv(("system", "  "), ("human", "Hi"), ("gpt", "Hello"))}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    samples = read("llava", annotations=str(path))
    assert [t.content for t in samples[0].turns] == [("Be brief.\n\nWhy?",), ("Because.",)]
    assert [t.content for t in samples[1].turns] == [("Hi",), ("Hello",)]  # an empty system prompt adds nothing


@pytest.mark.parametrize(("rows", "message"), [
    ([{"id": "p", "image": "a.jpg", "conversations": conv(("human", "<image>\nQ"), ("gpt", "A"))}],
     r"sample 'p' names image 'a.jpg' but the source has no root"),
    ([{"id": "p", "conversations": conv(("system", "S"), ("gpt", "A"))}],
     r"sample 'p': a system turn must be followed by a human turn"),
    ([{"id": "p", "conversations": ["not a turn"]}], r"sample 'p' turn 0 is not a"),
])
def test_malformed_records_are_named(tmp_path, rows, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(DataError, match=message):
        read("llava", annotations=str(path))


def test_images_inside_parquet_rows_point_to_the_converter(tmp_path):
    path = parquet(tmp_path / "emova.parquet", [{"id": "e", "image": {"bytes": jpeg((1, 2, 3)), "path": None},
                                                  "conversations": conv(("human", "Q"), ("gpt", "A"))}])
    with pytest.raises(DataError, match=r"emova.parquet: sample 'e' stores its image inside the file; unpack it "
                                        r"with python -m setok.data.parquet_to_llava"):
        read("llava", annotations=str(path), root=str(tmp_path))


def test_parquet_without_conversations_is_named(tmp_path):
    path = parquet(tmp_path / "x.parquet", [{"text": "t"}])
    with pytest.raises(DataError, match=r"x.parquet: parquet without column\(s\) conversations \(has text\)"):
        read("llava", annotations=str(path))


# ---------------------------------------------------------------------------------------------------- OpenOrca


def test_openorca_system_prompt_then_question_then_response(tmp_path):
    path = parquet(tmp_path / "1M-GPT4-Augmented.parquet", [
        {"id": "flan.1", "system_prompt": "", "question": " What is 7 x 6? ", "response": "42 "},
        {"id": "niv.2", "system_prompt": "You are a helpful assistant.", "question": "Hi?", "response": "Hello."},
    ])
    samples = read("openorca", annotations=str(path))
    assert [s.id for s in samples] == ["src:flan.1", "src:niv.2"]
    assert [(t.role, t.content) for t in samples[0].turns] == [("user", ("What is 7 x 6?",)),
                                                               ("assistant", ("42",))]
    assert samples[1].turns[0].content == ("You are a helpful assistant.\n\nHi?",)


def test_openorca_without_a_response_column_is_named(tmp_path):
    path = parquet(tmp_path / "orca.parquet", [{"id": "1", "question": "q"}])
    with pytest.raises(DataError, match=r"orca.parquet: parquet without column\(s\) response"):
        read("openorca", annotations=str(path))


# ------------------------------------------------------------------------------------------------ tasks filter


def test_tasks_keep_the_generation_half_of_caption_pairs_then_the_limit():
    coco = {"kind": "coco_captions", "root": str(FIXTURES / "coco/train2017"),
            "annotations": str(FIXTURES / "coco/annotations/captions_train2017.json")}
    both = read(**coco)
    gen = read(**coco, tasks=["generation"])
    assert {s.task for s in both} == {"caption", "generation"} and len(both) == 2 * len(gen)
    assert [s.id for s in gen] == [s.id for s in both if s.task == "generation"]
    assert all(s.turns[1].content[0] == s.images[0] for s in gen)  # the image is what the assistant draws
    assert [s.id for s in read(**coco, tasks=["generation"], limit=3)] == [s.id for s in gen[:3]]
    with pytest.raises(ConfigError, match=r"datasets.src.tasks: no sample of \['segment'\]"):
        read(**coco, tasks=["segment"])


# ------------------------------------------------------------------------------------- parquet_to_llava


def emova_release(base: Path) -> tuple[Path, list[bytes]]:
    pics = [jpeg((200, 0, 0)), jpeg((0, 200, 0))]
    png = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(png, format="PNG")
    pics.append(png.getvalue())
    parquet(base / "a/train-0.parquet", [
        {"id": "s1", "image": {"bytes": pics[0], "path": None}, "conversations": conv(("human", "<image>\nQ"),
                                                                                       ("gpt", "A"))},
        {"id": "t", "image": None, "conversations": conv(("human", "Hi"), ("gpt", "Hello"))},
    ])
    parquet(base / "b/train-0.parquet", [
        {"id": "s1", "image": {"bytes": pics[1], "path": None}, "conversations": conv(("human", "Q"), ("gpt", "A"))},
        {"id": "s3", "image": {"bytes": pics[2], "path": "x.png"}, "conversations": conv(("human", "Q"),
                                                                                          ("gpt", "A"))},
    ])
    return base, pics


def test_parquet_to_llava_writes_the_stored_bytes_and_a_json_the_llava_reader_reads(tmp_path):
    release, pics = emova_release(tmp_path / "release")
    out, images = tmp_path / "emova.json", tmp_path / "images"
    assert convert(release, images, out) == 4
    records = json.loads(out.read_text())
    # the two subsets reuse id s1: those records get file and row; unique ids stay
    assert [r["id"] for r in records] == ["a/train-0:0", "t", "b/train-0:0", "s3"]
    assert [r.get("image") for r in records] == ["a/train-0/0.jpg", None, "b/train-0/0.jpg", "b/train-0/1.png"]
    assert [(images / r["image"]).read_bytes() for r in records if "image" in r] == pics  # no re-encoding
    samples = read("llava", annotations=str(out), root=str(images))
    assert [len(s.images) for s in samples] == [1, 0, 1, 1]
    assert samples[0].turns[0].content[0].path == images / "a/train-0/0.jpg"
    # rerunnable: the same JSON, images kept
    stamp = (images / "a/train-0/0.jpg").stat().st_mtime_ns
    assert convert(release, images, out) == 4
    assert json.loads(out.read_text()) == records and (images / "a/train-0/0.jpg").stat().st_mtime_ns == stamp
    assert convert(release, images, tmp_path / "two.json", limit=2) == 2


def test_parquet_to_llava_names_the_row_whose_bytes_are_not_an_image(tmp_path):
    parquet(tmp_path / "r/x.parquet", [{"id": "ok", "image": {"bytes": jpeg((1, 1, 1)), "path": None},
                                        "conversations": conv(("human", "Q"), ("gpt", "A"))},
                                       {"id": "bad", "image": {"bytes": b"not an image", "path": None},
                                        "conversations": conv(("human", "Q"), ("gpt", "A"))}])
    with pytest.raises(DataError, match=r"x.parquet: row 1: the image bytes are not a JPEG, PNG, WebP, GIF or BMP"):
        convert(tmp_path / "r", tmp_path / "images", tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_the_emova_fixture_is_the_converters_output_of_its_parquet(tmp_path):
    convert(FIXTURES / "emova/parquet", tmp_path / "images", tmp_path / "emova_sft.json")
    assert json.loads((tmp_path / "emova_sft.json").read_text()) == \
        json.loads((FIXTURES / "emova/emova_sft.json").read_text())
    for rec in json.loads((FIXTURES / "emova/emova_sft.json").read_text()):
        if "image" in rec:
            assert (tmp_path / "images" / rec["image"]).read_bytes() == \
                (FIXTURES / "emova/images" / rec["image"]).read_bytes()


# --------------------------------------------------------------------------------------------- layout checks


@pytest.mark.parametrize("name", ["magpie", "openorca", "evol_instruct", "emova_sft", "midjourney_gen"])
def test_the_ci_fixtures_pass_their_layout_checks(tmp_path, name):
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    ci = yaml.safe_load((ROOT / "config/ci.yaml").read_text())["datasets"][name]
    raw["datasets"][name] = {k: (str(ROOT / v) if isinstance(v, str) and v.startswith("tests/") else v)
                             for k, v in ci.items()}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert check_main(["--config", str(cfg), "--dataset", name, "--out", str(tmp_path / "rec.json")]) == 0


def test_a_parquet_without_its_column_fails_its_layout_check_in_one_line(tmp_path, capsys):
    path = parquet(tmp_path / "orca.parquet", [{"id": "1", "question": "q"}])
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    raw["datasets"]["openorca"] = {"kind": "openorca", "annotations": str(path)}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert check_main(["--config", str(cfg), "--dataset", "openorca", "--out", str(tmp_path / "rec.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"dataset openorca: {path} malformed (no column 'response')" in err
    assert "huggingface.co/datasets/Open-Orca/OpenOrca" in err


# ------------------------------------------------------------------------------------------- the paper's mix


def test_semhitok_stages_draw_the_papers_shares():
    """Stage I 3.5M text : 10M caption pairs : 12M MidJourney-style; Stage II 1M text : 4M MidJourney-style : 4M
    understanding (EMOVA + LLaVA-SFT), whatever the sizes of the downloaded copies (here the CI fixtures)."""
    from setok.config import load_config
    from setok.train.mllm import stage_data

    cfg = load_config([str(ROOT / "config/paper.yaml"), str(ROOT / "config/ci.yaml")], "semhitok")
    _, p1 = stage_data(cfg, cfg.train_stage1)
    text1, cc, mj = p1[0] + p1[1], p1[2], p1[3]
    assert text1 == pytest.approx(3.5 / 25.5, abs=1e-4)
    assert cc / mj == pytest.approx(10 / 12) and text1 + cc + mj == pytest.approx(1.0)
    _, p2 = stage_data(cfg, cfg.train_stage2)
    assert p2[0] + p2[1] == pytest.approx(1 / 9, abs=1e-4)
    assert p2[2] == pytest.approx(4 / 9, abs=1e-4) and p2[3] + p2[4] == pytest.approx(4 / 9, abs=1e-4)
