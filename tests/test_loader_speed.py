"""Known answers for ``benchmarks/loader_speed.py``: the generated set's two layouts hold the same JPEGs, our readers
return exactly the references' tensors on them, the timing counts what it says, and the need is read correctly
from docs/scaling.md and docs/cluster.md."""
from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:  # ``loaders``, as ``python benchmarks/loader_speed.py`` finds it
    sys.path.insert(0, str(ROOT / "benchmarks"))

from loaders.data import SIZES, make_items, prepare, write_folders, write_shards  # noqa: E402
from loaders.need import Plan, node_cpus, planned  # noqa: E402
from loaders.readers import same_outputs, time_loader  # noqa: E402

from setok.data.image_shards import ImageShards  # noqa: E402
from setok.io import DataError  # noqa: E402


@pytest.fixture(scope="module")
def items() -> list:
    return make_items(6, classes=3, seed=1)


def test_items_are_deterministic_jpegs_of_imagenet_sizes(items):
    again = make_items(6, classes=3, seed=1)
    assert [i.jpeg for i in again] == [i.jpeg for i in items]
    assert [i.wnid for i in items] == ["n01440764", "n01440765", "n01440766"] * 2
    assert [i.stem for i in items][:2] == ["n01440764_0", "n01440765_1"]
    sizes = {wh for wh, _ in SIZES}
    for i in items:
        with Image.open(io.BytesIO(i.jpeg)) as im:
            assert im.format == "JPEG" and im.size in sizes


def test_shards_follow_img2dataset_and_hold_the_folder_bytes(items, tmp_path, monkeypatch):
    monkeypatch.setenv("SETOK_CACHE", str(tmp_path / "cache"))
    folders = write_folders(items, tmp_path / "imagenet")
    shards = write_shards(items, tmp_path / "shards", per_shard=4)
    assert sorted(p.name for p in shards.iterdir()) == ["00000.tar", "00001.tar"]
    with tarfile.open(shards / "00001.tar") as tar:
        assert tar.getnames() == ["000010000.jpg", "000010000.txt", "000010000.json",
                                  "000010001.jpg", "000010001.txt", "000010001.json"]
    ds = ImageShards(shards, image_size=16)
    assert ds.ids == ["00000/000000000", "00000/000000001", "00000/000000002", "00000/000000003",
                      "00001/000010000", "00001/000010001"]
    assert ds.caption(5) == "a photo of n01440766"
    for n, item in enumerate(items):
        offset, size = ds.span[n].tolist()
        assert ds._read(int(ds.shard[n]), offset, size) == item.jpeg
        assert (folders / item.wnid / f"{item.stem}.JPEG").read_bytes() == item.jpeg


def test_our_readers_return_the_references_tensors(items, tmp_path, monkeypatch):
    monkeypatch.setenv("SETOK_CACHE", str(tmp_path / "cache"))
    write_folders(items, tmp_path / "imagenet")
    write_shards(items, tmp_path / "shards", per_shard=4)
    folders_ok, shards_ok = same_outputs(tmp_path / "imagenet", tmp_path / "shards", size=48, count=6)
    assert folders_ok is True
    pytest.importorskip("webdataset")
    assert shards_ok is True


def test_prepare_reuses_a_set_and_refuses_another(tmp_path, monkeypatch):
    calls = []
    import loaders.data as data

    real = data.make_items
    monkeypatch.setattr(data, "make_items", lambda n, **kw: calls.append(n) or real(n, **kw))
    stats = prepare(tmp_path, images=2, classes=2, per_shard=2)
    assert stats["images"] == 2 and stats["mean_kb"] > 0 and calls == [2]
    assert prepare(tmp_path, images=2, classes=2, per_shard=2) == stats and calls == [2]
    with pytest.raises(FileExistsError, match="other arguments"):
        prepare(tmp_path, images=3, classes=2, per_shard=2)


def test_time_loader_counts_after_the_first_batch_and_stops_at_the_limit():
    batches = [{"image": torch.zeros(4, 3, 2, 2)} for _ in range(5)]
    rate = time_loader(lambda: batches, images=12)
    assert (rate.images, rate.total_images) == (8, 12)
    tuples = [(torch.zeros(3, 3, 2, 2), ["a"] * 3) for _ in range(2)]
    assert time_loader(lambda: tuples, images=100).images == 3  # a loader that ends early


THROUGHPUT = """\
### Throughput and GPU-hours

| stage | steps x batch | GPUs | positions/s/GPU | samples/s/GPU | frozen SeTok share of time |
|---|---|---|---|---|---|
| tokenizer | 100,000 x 512 | 64 | 114,725 | 160.00 | 0% |
| tokenizer (skewed clusters) | 100,000 x 512 | 64 | 61,959 | 80.00 | 0% |
| stage1 | 60,000 x 1,024 | 64 | 9,206 | 1,204.50 | 0% |

after the table
"""

CLUSTER = """\
| rules | nodes x GPUs | CPUs per node | memory per node | time limit |
|---|---|---|---|---|
| `train_tokenizer`, `train_semantic_codebook` | 1 x 8 | 72 | 256 GB | 48 h |
| `train_stage1` (SeTokIM) | 8 x 4 | 48 | 512 GB | 48 h |
"""


def test_need_reads_the_planned_pace_and_the_node(tmp_path):
    (tmp_path / "scaling.md").write_text(THROUGHPUT)
    plan = planned(tmp_path / "scaling.md", "tokenizer")
    assert plan == Plan(stage="tokenizer", batch=512, per_gpu=160.0)
    assert plan.step_seconds == 0.4 and plan.per_worker(8) == 20.0
    assert planned(tmp_path / "scaling.md", "stage1") == Plan(stage="stage1", batch=1024, per_gpu=1204.5)
    with pytest.raises(DataError, match=r"scaling.md: no row 'stage2'"):
        planned(tmp_path / "scaling.md", "stage2")
    (tmp_path / "cluster.md").write_text(CLUSTER)
    assert node_cpus(tmp_path / "cluster.md") == (8, 72)
    assert node_cpus(tmp_path / "cluster.md", "train_stage1") == (4, 48)
    with pytest.raises(DataError, match="no row for `train_stage2`"):
        node_cpus(tmp_path / "cluster.md", "train_stage2")


def test_the_repositorys_docs_give_the_tokenizer_stage_of_the_paper_config():
    from setok.config import load_config

    cfg = load_config([str(ROOT / "config" / "paper.yaml")])
    plan = planned(ROOT / "docs" / "scaling.md", "tokenizer")
    assert plan.batch == cfg.train_tokenizer.batch_size and plan.per_gpu > 0
    gpus, cpus = node_cpus(ROOT / "docs" / "cluster.md")
    assert gpus == 8 and cpus >= gpus * (cfg.train_tokenizer.num_workers + 1)


def test_verdict_and_table_known_answers():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import loader_speed

    plan = Plan(stage="tokenizer", batch=512, per_gpu=160.0)
    assert loader_speed.verdict(plan, rate=25.0, workers=8, label="x") == (
        "- x: 8 workers x 25.0 img/s = 200 img/s per GPU against 160.0 needed: yes (+25%)")
    assert loader_speed.verdict(plan, rate=10.0, workers=8, label="x").endswith("NO (-50%)")
    row = {"what": "ImageNet folders", "ours": "A", "theirs": "B", "workers": 1, "ours_rate": 50.0,
           "theirs_rate": 40.0, "ours_cpu": 8.0, "theirs_cpu": 9.25}
    assert loader_speed.table([row]).splitlines()[-1] == (
        "| ImageNet folders | A | B | 1 | 50.0 | 40.0 | 1.25 | 8.0 | 9.2 |")


def test_need_compares_the_one_worker_rate_with_the_plan(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import loader_speed

    (tmp_path / "scaling.md").write_text(THROUGHPUT)
    (tmp_path / "cluster.md").write_text(CLUSTER)
    rows = [{"what": "ImageNet folders", "workers": 0, "ours_rate": 99.0, "ours_cpu": 1.0},
            {"what": "ImageNet folders", "workers": 1, "ours_rate": 25.0, "ours_cpu": 10.0},
            {"what": "img2dataset shards", "workers": 2, "ours_rate": 80.0, "ours_cpu": 5.0}]
    text = loader_speed.need(rows, scaling=tmp_path / "scaling.md", cluster=tmp_path / "cluster.md", workers=8,
                             semhitok_batch=256, semhitok_size=256, size=384)
    lines = text.splitlines()
    assert lines[1].startswith("Need on one 8-GPU node (72 CPUs, docs/cluster.md: 9 per GPU = 8 data workers")
    assert lines[2].endswith("160.00 img/s per GPU = 0.40 s per step; 1,280 img/s per node, 20.0 img/s per worker")
    assert lines[3].endswith("80.00 img/s per GPU = 0.80 s per step; 640 img/s per node, 10.0 img/s per worker")
    assert lines[4] == ("- ImageNetFolder at 384 px, measured wall clock, num_workers=1: 8 workers x 25.0 img/s = "
                        "200 img/s per GPU against 160.0 needed: yes (+25%)")
    assert lines[5].endswith("8 workers x 100.0 img/s = 800 img/s per GPU against 160.0 needed: yes (+400%)")
    assert lines[6].endswith("at the measured 40.0 img/s (at 384 px) keep up with any step of 0.10 s or more.")
