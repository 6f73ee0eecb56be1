"""Regression baselines (evaluation.regression): a moved metric, a missing or extra result, a changed n or an empty
results folder each fail the check; the committed baselines cover every result the CI smoke DAG writes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import regression
from setok.io import read_json, write_json

ROOT = Path(__file__).resolve().parents[2]


def put_result(results: Path, variant: str, benchmark: str, metrics: dict[str, float], n: int | None = 4) -> Path:
    path = results / variant / "eval" / f"{benchmark}.json"
    write_json(path, {"benchmark": benchmark, "variant": variant, "metrics": metrics, "n": n,
                      "ci95": {k: [v - 1, v + 1] for k, v in metrics.items()}, "checkpoint": None,
                      "config_sha": "295e2baed92c", "git_sha": "0" * 40})
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A small results tree shaped like the smoke run's: rFID, POPE, and the tokenizer statistics."""
    root = tmp_path / "results"
    put_result(root, "hard_cluster", "fid", {"fid": 348.9}, n=21)
    put_result(root, "hard_cluster", "pope", {"accuracy": 50.0, "f1": 66.66666666666666})
    put_result(root, "semhitok", "fid", {"fid": 390.4}, n=21)
    write_json(root / "hard_cluster/tokenizer/tokens.json",
               {"mean": 21.0, "std": 11.18, "min": 1, "max": 32, "n": 21, "per_image": {"a": 1, "b": 32}})
    return root


@pytest.fixture
def baselines(results: Path, tmp_path: Path) -> Path:
    path = tmp_path / "baselines" / "smoke.json"
    assert regression.main(["write", "--results", str(results), "--baselines", str(path)]) == 0
    return path


def check(results: Path, baselines: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = regression.main(["check", "--results", str(results), "--baselines", str(baselines)])
    out = capsys.readouterr()
    return code, out.out, out.err


def edit(path: Path, **changes: object) -> None:
    data = read_json(path)
    for key, value in changes.items():
        if key in data:
            data[key] = value
        else:
            data["metrics"][key] = value
    write_json(path, data)


def row(out: str, *cells: str) -> str:
    """The table row holding every one of ``cells`` as a column."""
    rows = [line for line in out.splitlines() if all(c in line.split() for c in cells)]
    assert len(rows) == 1, f"expected one row with {cells} in:\n{out}"
    return rows[0]


def test_write_then_check_on_the_same_tree_passes(results, baselines, capsys):
    code, out, _ = check(results, baselines, capsys)
    assert code == 0, out
    assert "passed: 8 values of 4 results" in out  # fid; accuracy, f1; fid; mean, std, min, max


def test_baseline_file_has_every_value_n_provenance_and_the_rule(baselines):
    data = read_json(baselines)
    assert data["results"]["hard_cluster"]["pope"] == {"n": 4, "metrics": {"accuracy": 50.0, "f1": 66.66666666666666}}
    assert data["results"]["hard_cluster"]["tokens"] == {"n": 21, "metrics": {"mean": 21.0, "std": 11.18, "min": 1.0,
                                                                              "max": 32.0}}
    assert {"git_sha", "config", "torch", "cpu", "cpu_capability", "date"} <= data["provenance"].keys()
    assert data["provenance"]["git_sha"] == ["0" * 40]
    assert data["tolerance"]["rule"] == regression.RULE and data["tolerance"]["tolerances"][-1]["match"] == "*"


def test_write_is_byte_for_byte_reproducible(results, baselines, tmp_path):
    again = tmp_path / "again.json"
    regression.main(["write", "--results", str(results), "--baselines", str(again)])
    assert again.read_bytes() == baselines.read_bytes()
    assert baselines.read_text() == json.dumps(json.loads(baselines.read_text()), indent=2, sort_keys=True,
                                               ensure_ascii=False) + "\n"


def test_metric_moved_beyond_tolerance_fails_and_the_table_names_it(results, baselines, capsys):
    edit(results / "hard_cluster/eval/pope.json", f1=60.0)
    code, out, _ = check(results, baselines, capsys)
    assert code == 1
    line = row(out, "hard_cluster", "pope", "f1")
    assert "66.6667" in line and "60" in line.split() and "-6.67" in line and "moved" in line
    assert "hard_cluster  fid" not in out and "accuracy" not in out  # only what moved is listed


def test_every_problem_is_in_one_table(results, baselines, capsys):
    edit(results / "hard_cluster/eval/pope.json", f1=60.0, n=5)
    (results / "semhitok/eval/fid.json").unlink()
    code, out, _ = check(results, baselines, capsys)
    assert code == 1
    assert "3 problem(s)" in out
    header = out.splitlines()[1].split()
    assert header == ["variant", "benchmark", "metric", "baseline", "now", "delta", "tolerance", "problem"]


def test_metric_moved_within_tolerance_passes(results, baselines, capsys):
    base = 348.9
    allowed = regression.tolerance("fid", "fid", regression.TOLERANCES).allowed(base)
    edit(results / "hard_cluster/eval/fid.json", fid=base + 0.5 * allowed)
    assert check(results, baselines, capsys)[0] == 0
    edit(results / "hard_cluster/eval/fid.json", fid=base + 2 * allowed)
    assert check(results, baselines, capsys)[0] == 1


@pytest.mark.parametrize(("key", "baseline", "now", "passes"), [
    ("coco_fid.fid", 393.22341890231485, 393.2334858944916, True),  # AVX2 instead of AVX-512 kernels (largest move)
    ("ma5k.l2", 0.08258499474249577, 0.08258481674827702, True),  # the same, pixel L2 of a generated edit
    ("fid.fid", 348.89716932639556, 347.95834084261395, False),  # SeTok without its positional encoding
    ("imagenet.top1", 14.285714285714285, 9.523809523809524, False),  # one of 21 images flips
    ("tokens.mean", 21.0, 21.047619047619047, False),  # one image of 21 gets one more token
])
def test_tolerance_passes_the_measured_kernel_noise_and_fails_a_real_change(key, baseline, now, passes):
    """The numbers of docs/regression.md: two smoke runs on different CPU kernel paths, and two SeTok variants."""
    benchmark, metric = key.split(".")
    allowed = regression.tolerance(benchmark, metric, regression.TOLERANCES).allowed(baseline)
    assert (abs(now - baseline) <= allowed) is passes


def test_tokenizer_statistics_are_compared(results, baselines, capsys):
    edit(results / "hard_cluster/tokenizer/tokens.json", mean=20.0)
    code, out, _ = check(results, baselines, capsys)
    assert code == 1 and "moved" in row(out, "hard_cluster", "tokens", "mean")


def test_changed_n_fails(results, baselines, capsys):
    edit(results / "hard_cluster/eval/pope.json", n=3)
    code, out, _ = check(results, baselines, capsys)
    assert code == 1 and "n changed" in row(out, "hard_cluster", "pope", "n")


def test_missing_result_fails_naming_the_file(results, baselines, capsys):
    (results / "semhitok/eval/fid.json").unlink()
    code, out, _ = check(results, baselines, capsys)
    assert code == 1
    assert f"missing: {results / 'semhitok/eval/fid.json'}" in row(out, "semhitok", "fid")


def test_missing_metric_fails(results, baselines, capsys):
    data = read_json(results / "hard_cluster/eval/pope.json")
    del data["metrics"]["f1"]
    write_json(results / "hard_cluster/eval/pope.json", data)
    code, out, _ = check(results, baselines, capsys)
    assert code == 1 and "metric missing" in row(out, "hard_cluster", "pope", "f1")


def test_result_without_baseline_fails_and_says_how_to_rewrite(results, baselines, capsys):
    extra = put_result(results, "no_pe", "fid", {"fid": 347.9}, n=21)
    code, out, _ = check(results, baselines, capsys)
    assert code == 1 and "run `make baselines`" in row(out, "no_pe", "fid")
    extra.unlink()
    edit(results / "hard_cluster/eval/pope.json", recall=100.0)  # a new metric of a baselined result
    code, out, _ = check(results, baselines, capsys)
    assert code == 1 and "run `make baselines`" in row(out, "hard_cluster", "pope", "recall")


def test_unknown_keys_of_a_result_are_ignored(results, baselines, capsys):
    data = read_json(results / "hard_cluster/eval/fid.json")
    write_json(results / "hard_cluster/eval/fid.json", {**data, "provenance": {"grader": "oracle", "subset": 21}})
    assert check(results, baselines, capsys)[0] == 0


@pytest.mark.parametrize("make", [lambda r: shutil.rmtree(r), lambda r: [shutil.rmtree(p) for p in r.iterdir()]],
                         ids=["absent", "empty"])
def test_absent_or_empty_results_fail_with_one_line(results, baselines, capsys, make):
    make(results)
    code, out, err = check(results, baselines, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {results}: ") and "make smoke" in err and len(err.splitlines()) == 1


def test_malformed_result_is_one_line_naming_the_file(results, baselines, capsys):
    (results / "hard_cluster/eval/pope.json").write_text('{"metrics": {"f1": "high"}}')
    code, _, err = check(results, baselines, capsys)
    assert code == 2 and err.startswith(f"error: {results / 'hard_cluster/eval/pope.json'}: ")
    assert len(err.splitlines()) == 1


def test_missing_baseline_file_is_one_line(results, tmp_path, capsys):
    code, _, err = check(results, tmp_path / "nothing.json", capsys)
    assert code == 2 and err == f"error: {tmp_path / 'nothing.json'}: file not found\n"


def test_malformed_baseline_file_is_one_line(results, baselines, capsys):
    data = read_json(baselines)
    del data["results"]["hard_cluster"]["pope"]["n"]
    write_json(baselines, data)
    code, _, err = check(results, baselines, capsys)
    assert code == 2 and err.startswith(f"error: {baselines}: not a baseline file") and len(err.splitlines()) == 1


def smoke_dag_results() -> set[tuple[str, str]]:
    """(variant, benchmark) of every result file `snakemake smoke` on config/ci.yaml writes (a dry run, no jobs)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(bin_dir / "snakemake"), "smoke", "-n", "--forceall", "--configfile", "config/ci.yaml"],
                       cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    end = r"(?=[\s,]|$)"
    files = set(re.findall(rf"results/([^/\s,]+)/eval/([^/\s,]+)\.json{end}", r.stdout))
    files |= {(v, "tokens") for v in re.findall(rf"results/([^/\s,]+)/tokenizer/tokens\.json{end}", r.stdout)}
    files |= {(v, "cost") for v in re.findall(rf"results/([^/\s,]+)/cost\.json{end}", r.stdout)}
    return files


def test_committed_baselines_cover_every_result_of_the_ci_smoke_dag():
    entries, _ = regression.load_baselines(ROOT / "reports/baselines/smoke.json")
    expected = smoke_dag_results()
    assert {"hard_cluster", "no_pe", "semhitok"} <= {v for v, _ in expected}  # the dry run was parsed
    assert set(entries) == expected, "run `make smoke && make baselines` and commit reports/baselines/smoke.json"
