"""The learning tier's machinery (``evaluation.learning``): log windows, thresholds and the run plan, on hand-made
inputs. The learned values themselves are asserted by ``tests/learning`` after ``make learn``."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluation.learning import checks, plan, probes
from setok.config import load_config
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rules() -> str:
    """The shell commands of the CI plan (each training rule's command as Snakemake plans it from the stage table)."""
    snakemake = Path(sys.executable).parent / "snakemake"
    return subprocess.run([str(snakemake), "smoke", "-n", "-p", "--forceall", "--configfile", "config/ci.yaml"],
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout


def write_log(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_log_windows_average_the_first_and_last_tenth_of_the_steps_that_logged_the_key(tmp_path):
    # 20 steps: the windows are steps 1-2 and 19-20; "vis" is logged on odd steps only.
    rows = [{"step": s, "loss": float(s), **({"vis": 10.0 * s} if s % 2 else {})} for s in range(1, 21)]
    log = write_log(tmp_path / "train_log.jsonl", rows)
    assert probes.log_windows(log, "loss") == {"first": 1.5, "last": 19.5, "ratio": 1.5 / 19.5}
    assert probes.log_windows(log, "vis") == pytest.approx({"first": 10.0, "last": 190.0, "ratio": 10 / 190})


def test_log_windows_name_the_log_when_a_window_has_no_value(tmp_path):
    log = write_log(tmp_path / "train_log.jsonl", [{"step": s, "loss": 1.0} for s in range(1, 21)])
    with pytest.raises(DataError, match=r"train_log.jsonl: no 'vis' logged"):
        probes.log_windows(log, "vis")


def test_mean_image_mse_is_the_variance_around_the_mean_image():
    images = torch.tensor([0.0, 2.0]).view(2, 1, 1, 1).expand(2, 3, 4, 4)
    assert probes.mean_image_mse(images) == pytest.approx(1.0)


def test_a_check_compares_against_a_multiple_of_its_baseline():
    c = checks.Check("s", "reconstructs", "recon", "<=", 0.5, "mean", "the mean image")
    assert c.rule == "recon <= 0.5 x mean"
    assert c.passes({"recon": 0.05, "mean": 0.2}) and not c.passes({"recon": 0.11, "mean": 0.2})
    assert c.threshold({"recon": 0.0, "mean": 0.2}) == pytest.approx(0.1)
    absolute = checks.Check("s", "segments", "ciou", ">=", 0.5)
    assert absolute.rule == "ciou >= 0.5" and absolute.passes({"ciou": 0.5}) and not absolute.passes({"ciou": 0.49})


def test_a_stage_without_a_probe_fails_every_check_of_it():
    rows = checks.evaluate({})
    assert rows and not any(r["passed"] for r in rows) and all(r["value"] is None for r in rows)


def test_every_trainable_stage_of_both_families_is_checked():
    checked = {c.stage for c in checks.CHECKS}
    assert checked == set(plan.BY_NAME)
    assert len(plan.chain("setok")) == 4 and len(plan.chain("semhitok")) == 6


@pytest.mark.parametrize("stage", plan.STAGES, ids=lambda s: s.name)
def test_each_stage_runs_the_command_its_rule_runs(stage, tmp_path, rules):
    argv = plan.command(tmp_path, stage)
    module = argv[argv.index("-m") + 1]
    # The rule's shell line names the same trainer module and --stage.
    pattern = rf"-m {re.escape(module)}" + (rf" --stage {stage.stage}" if stage.stage else r" --config")
    assert re.search(pattern, rules), pattern
    variant = plan.FAMILY_VARIANT[stage.family]
    assert argv[argv.index("--config") + 1] == str(tmp_path / variant / "config.yaml")
    assert argv[argv.index("--out") + 1] == str(tmp_path / variant / stage.folder)
    if stage.init:
        assert argv[argv.index("--init") + 1] == str(plan.model_path(tmp_path, plan.BY_NAME[stage.init]))


def test_stage_inits_follow_the_rules_chains():
    inits = {s.name: s.init for s in plan.STAGES}
    assert inits["setok.stage2"] == "setok.mask_decoder"  # SeTokIM: Stage I -> mask decoder -> Stage II
    assert inits["semhitok.stage2"] == "semhitok.stage1"  # the unified MLLM has no mask decoder
    assert plan.model_path(Path("r"), plan.BY_NAME["semhitok.pixel_decoder"]) == Path("r/semhitok/tokenizer/model.pt")


def test_first_exchanges_are_the_first_question_and_answer_of_each_training_conversation():
    cfg = load_config([ROOT / "config/paper.yaml", ROOT / "config/ci.yaml", ROOT / "config/learn.yaml"],
                      "hard_cluster")
    rows = probes.first_exchanges(cfg, "stage2")
    questions = {(q, a) for _, q, _, a in rows}
    assert ("What is in the image?", "Astronaut, spacesuit, helmet.") in questions
    assert ("What is 2 + 3?", "2 + 3 = 5.") in questions  # a text-only conversation
    # The CI fixtures: 10 LLaVA conversations about an image, 1 without, 4 Alpaca instructions.
    assert sum(img is not None for _, _, img, _ in rows) == 10 and len(rows) == 15


def test_an_offset_check_needs_a_margin_over_its_baseline():
    c = checks.Check("s", "learned", "now", ">=", 1.0, "before", "the initial model", offset=0.4)
    assert c.rule == "now >= before + 0.4"
    assert c.passes({"now": 0.8, "before": 0.4}) and not c.passes({"now": 0.79, "before": 0.4})


def test_a_run_stopped_early_is_checked_on_the_stages_it_ran():
    probe = {"recon_mse": 0.05, "mean_image_mse": 0.2, "contrastive_first": 4.0, "contrastive_last": 1.0,
             "top1": 0.3, "top1_chance": 0.1, "tokens_flat_vs_photos": 12.0, "tokens_photos_spread": 31.0}
    rows = checks.evaluate({"setok.tokenizer": probe}, complete=False)
    assert {r["stage"] for r in rows} == {"setok.tokenizer"} and all(r["passed"] for r in rows)
    assert len(rows) == sum(c.stage == "setok.tokenizer" for c in checks.CHECKS)
    worse = checks.evaluate({"setok.tokenizer": probe | {"recon_mse": 0.11}}, complete=False)
    assert [r["check"] for r in worse if not r["passed"]] == ["reconstructs its training photos"]


def test_the_figure_smooths_with_a_trailing_mean_over_a_twentieth_of_the_run():
    from evaluation.learning.report import smooth

    values = [float(v) for v in range(1, 41)]  # window 2
    assert smooth(values)[:4] == [1.0, 1.5, 2.5, 3.5]
    assert smooth([5.0, 7.0]) == [5.0, 7.0]  # shorter than 20 points: no smoothing
