"""python -m setok.calibrate_clustering on the CI model: its outputs, what the report page reads of them, the config
they produce for training and prediction, and its one-line errors on a malformed calibration config."""
from pathlib import Path

import pytest
import torch
import yaml

from evaluation.report import calibration as page
from setok.calibrate_clustering import calibrate, main
from setok.calibration.overlay import apply_overlay
from setok.config import config_sha, deep_merge, dump, load_config, resolve
from setok.model_file import write_model
from setok.modeling.build import build_setok, load_setok

ROOT = Path(__file__).resolve().parents[2]
SPLIT = {"tokenizer": {"calibration": {"batch_size": 8}}}  # the 21 photos of `make smoke` in three encoder batches


def ci_raw(*deltas: dict) -> dict:
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    for d in deltas:
        raw = deep_merge(raw, d)
    return raw


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibration")
    cfg = resolve(ci_raw(SPLIT), "hard_cluster")
    return cfg, out, calibrate(cfg, out, device=torch.device("cpu"))


def test_report_has_every_setting_and_what_the_report_page_reads(calibrated, tmp_path):
    cfg, out, report = calibrated
    grid = cfg.tokenizer.calibration.grid
    assert len(report["settings"]) == len(grid.kernel_c) * len(grid.min_seed_score) * len(grid.beta)
    for s in report["settings"]:
        assert s["min"] <= s["mean"] <= s["max"] and sum(s["histogram"]) == report["images"] == 21
        assert len(s["histogram"]) == cfg.tokenizer.clustering.max_tokens
    chosen = report["chosen"]
    best = min(abs(s["mean"] - report["target_tokens"]) for s in report["settings"])
    assert abs(chosen["mean"] - report["target_tokens"]) <= best + report["tolerance"]
    # uncalibrated (C 1, s_min 0.1, beta 1) 38% of the photos sit at the cap (32) or at 1 token; calibrated, under 10%
    assert chosen["max"] < cfg.tokenizer.clustering.max_tokens and chosen["degenerate"] < 0.1
    assert chosen["content"]["objects"]["spearman"] is not None  # the bundled photos list their objects
    assert len(chosen["per_image"]) == 21
    # the page's own reader accepts the file the command wrote, and builds its table and figure from it
    results = tmp_path / "results"
    (results / "hard_cluster").mkdir(parents=True)
    (results / "hard_cluster" / "calibration").symlink_to(out)
    md, png = tmp_path / "calibration.md", tmp_path / "figures" / "calibration.png"
    assert page.main(["--results", str(results), "--variants", "hard_cluster", "--md", str(md),
                      "--figure", str(png)]) == 0
    row = next(line for line in md.read_text().splitlines() if line.startswith("| hard_cluster |"))
    assert f"| {chosen['kernel_c']:g} | {chosen['min_seed_score']:g} | {chosen['beta']:g} |" in row
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_calibrated_values_reach_training_and_prediction(calibrated, tmp_path):
    """The overlay merged into results/{variant}/config.yaml (the resolve_config rule's step) is what the trainer's
    factory builds from and what the model file carries to every later consumer (load_setok)."""
    cfg, out, report = calibrated
    chosen = {k: report["chosen"][k] for k in ("kernel_c", "min_seed_score", "beta")}
    assert chosen != {k: getattr(cfg.tokenizer.clustering, k) for k in chosen}  # the calibration changed them
    resolved = tmp_path / "config.yaml"
    resolved.write_text(apply_overlay(dump(cfg), out / "clustering.yaml"))
    trained_cfg = load_config(resolved)  # as `python -m setok.train.tokenizer --config results/<v>/config.yaml`
    assert trained_cfg.tokenizer.calibration.calibrated is not None
    model, _ = build_setok(trained_cfg.tokenizer)
    assert {k: model.clustering[k] for k in chosen} == chosen
    write_model(tmp_path / "model.pt", family="setok", stage="tokenizer", weights=model.state_dict(),
                config=yaml.safe_load(resolved.read_text()), config_sha=config_sha(trained_cfg), step=0)
    predicted, _, _ = load_setok(tmp_path / "model.pt")
    assert {k: predicted.clustering[k] for k in chosen} == chosen


def test_a_rerun_writes_the_same_overlay_so_checkpoints_keep_their_config_sha(calibrated, tmp_path):
    cfg, out, _ = calibrated
    calibrate(cfg, tmp_path, device=torch.device("cpu"))
    assert (tmp_path / "clustering.yaml").read_bytes() == (out / "clustering.yaml").read_bytes()
    sha = [config_sha(load_config_text(apply_overlay(dump(cfg), d / "clustering.yaml"), tmp_path))
           for d in (out, tmp_path)]
    assert sha[0] == sha[1]


def load_config_text(text: str, where: Path):
    path = where / "resolved.yaml"
    path.write_text(text)
    return load_config(path)


def test_an_edited_clustering_value_without_calibration_is_rejected(calibrated):
    cfg, out, _ = calibrated
    raw = deep_merge(yaml.safe_load(apply_overlay(dump(cfg), out / "clustering.yaml")),
                     {"tokenizer": {"clustering": {"kernel_c": 123.0}}})
    with pytest.raises(Exception, match=r"tokenizer\.clustering\.kernel_c: 123\.0 differs from the calibrated"):
        resolve(raw)


@pytest.mark.parametrize("delta, message", [
    ({"grid": {"kernel_c": []}}, r"tokenizer\.calibration\.grid\.kernel_c: must list at least one value"),
    ({"grid": {"kernel_c": [1.0, -2.0]}}, r"tokenizer\.calibration\.grid\.kernel_c: every value must be > 0"),
    ({"grid": {"min_seed_score": [1.5]}}, r"tokenizer\.calibration\.grid\.min_seed_score: every value must be in"),
    ({"grid": {"beta": [1.0, 1.0]}}, r"tokenizer\.calibration\.grid\.beta: lists a value twice"),
    ({"images": 0}, r"tokenizer\.calibration\.images: must be >= 1"),
    ({"target_tokens": {"hard": 0.5}}, r"tokenizer\.calibration\.target_tokens\.hard: must be >= 1"),
    ({"target_tokens": {"medium": 3.0}}, r"tokenizer\.calibration\.target_tokens.*medium"),
    ({"grid": {"kernel_c": "1.0"}}, r"tokenizer\.calibration\.grid\.kernel_c: expected a list"),
])
def test_cli_rejects_a_malformed_calibration_config_naming_the_key(tmp_path, capsys, delta, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"tokenizer": {"calibration": delta}}))
    rc = main(["--config", str(ROOT / "config/paper.yaml"), "--config", str(ROOT / "config/ci.yaml"),
               "--config", str(bad), "--variant", "hard_cluster", "--out", str(tmp_path / "out")])
    assert rc == 2
    import re
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("variant", ["fixed_8", "semhitok"])
def test_cli_refuses_a_variant_without_calibration(tmp_path, capsys, variant):
    rc = main(["--config", str(ROOT / "config/paper.yaml"), "--config", str(ROOT / "config/ci.yaml"),
               "--variant", variant, "--out", str(tmp_path / "out")])
    assert rc == 2 and "tokenizer.calibration: nothing to calibrate" in capsys.readouterr().err
