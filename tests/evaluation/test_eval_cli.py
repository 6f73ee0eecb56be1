"""The ``python -m evaluation`` contract, run as a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from evaluation.results import RESULT_KEYS

Cli = Callable[..., subprocess.CompletedProcess[str]]
Files = tuple[Path, Path]


def test_cli_scores_imagenet_fixture_into_result_json_and_samples(
    imagenet_files: Files, cli: Cli, tmp_path: Path
) -> None:
    preds, refs = imagenet_files
    out = tmp_path / "res" / "R.json"
    proc = cli(
        "score",
        "imagenet",
        "--predictions",
        preds,
        "--annotations",
        refs,
        "--out",
        out,
        "--variant",
        "setok",
        "--checkpoint",
        "ckpt/last.pt",
        "--config-sha",
        "abc123",
        "--bootstrap",
        "200",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert set(result) == set(RESULT_KEYS)
    assert result["benchmark"] == "imagenet" and result["variant"] == "setok"
    assert result["metrics"] == {"top1": 50.0, "top5": 75.0} and result["n"] == 4
    assert set(result["ci95"]) == {"top1", "top5"} and all(
        len(v) == 2 for v in result["ci95"].values()
    )
    assert result["checkpoint"] == "ckpt/last.pt" and result["config_sha"] == "abc123"
    assert result["git_sha"] is None or len(result["git_sha"]) == 40
    samples = [
        json.loads(x)
        for x in (tmp_path / "res" / "R.samples.jsonl").read_text().splitlines()
    ]
    assert len(samples) == 4
    # The metric is re-derivable from the samples.
    assert 100 * np.mean([s["top5"] for s in samples]) == result["metrics"]["top5"]


def test_cli_missing_ids_give_one_line_error_and_exit_2(
    imagenet_files: Files, cli: Cli, tmp_path: Path
) -> None:
    preds, refs = imagenet_files
    preds.write_text("".join(x + "\n" for x in preds.read_text().splitlines()[:2]))
    out = tmp_path / "R.json"
    proc = cli(
        "score", "imagenet", "--predictions", preds, "--annotations", refs, "--out", out
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        f"error: {preds}: missing predictions"
    )
    assert "Traceback" not in proc.stderr and not out.exists()


def test_cli_scoring_is_deterministic_to_the_byte(
    imagenet_files: Files, cli: Cli, tmp_path: Path
) -> None:
    preds, refs = imagenet_files
    outs = [tmp_path / "one.json", tmp_path / "two.json"]
    for out in outs:
        assert (
            cli(
                "score",
                "imagenet",
                "--predictions",
                preds,
                "--annotations",
                refs,
                "--out",
                out,
                "--seed",
                "7",
            ).returncode
            == 0
        )
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert (tmp_path / "one.samples.jsonl").read_bytes() == (
        tmp_path / "two.samples.jsonl"
    ).read_bytes()


def test_cli_list_prints_registered_benchmarks(cli: Cli) -> None:
    proc = cli("list")
    assert proc.returncode == 0
    names = [line.split("\t")[0] for line in proc.stdout.splitlines()]
    assert {"fid", "imagenet"} <= set(names)


def test_cli_score_help_documents_the_benchmark_formats(cli: Cli) -> None:
    proc = cli("score", "fid", "--help")
    assert proc.returncode == 0
    assert (
        "'mu'" in proc.stdout
        and "'features'" in proc.stdout
        and "folder of images" in proc.stdout
    )


def test_cli_scores_fid_from_feature_npz_without_inception(
    cli: Cli, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 8)), rng.normal(size=(40, 8)) + 1.0
    np.savez(tmp_path / "pred.npz", features=a)
    np.savez(tmp_path / "ref.npz", mu=b.mean(0), sigma=np.cov(b, rowvar=False))
    out = tmp_path / "fid.json"
    proc = cli(
        "score",
        "fid",
        "--predictions",
        tmp_path / "pred.npz",
        "--annotations",
        tmp_path / "ref.npz",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    from evaluation.metrics.fid import fid_from_features

    result = json.loads(out.read_text())
    assert result["metrics"]["fid"] == fid_from_features(a, b)
    assert result["ci95"] == {} and result["n"] == 30
    rows = [
        json.loads(x) for x in (tmp_path / "fid.samples.jsonl").read_text().splitlines()
    ]
    assert [r["index"] for r in rows] == list(range(30))
    assert rows[3]["feature_norm"] == pytest.approx(
        float(np.linalg.norm(a[3])), rel=1e-12
    )


def test_cli_fid_bootstrap_needs_features_on_both_sides(
    cli: Cli, tmp_path: Path
) -> None:
    np.savez(
        tmp_path / "pred.npz", features=np.random.default_rng(0).normal(size=(5, 4))
    )
    np.savez(tmp_path / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))
    proc = cli(
        "score",
        "fid",
        "--predictions",
        tmp_path / "pred.npz",
        "--annotations",
        tmp_path / "ref.npz",
        "--out",
        tmp_path / "x.json",
        "--bootstrap",
        "10",
    )
    assert proc.returncode == 2 and proc.stderr.strip() == (
        f"error: {tmp_path / 'ref.npz'}: FID bootstrap needs features (an image folder or 'features' .npz)"
    )


def test_cli_fid_rejects_an_npz_without_known_arrays(cli: Cli, tmp_path: Path) -> None:
    np.savez(tmp_path / "pred.npz", other=np.zeros(3))
    np.savez(tmp_path / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))
    proc = cli(
        "score",
        "fid",
        "--predictions",
        tmp_path / "pred.npz",
        "--annotations",
        tmp_path / "ref.npz",
        "--out",
        tmp_path / "x.json",
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == f"error: {tmp_path / 'pred.npz'}: needs 'features' or 'mu' + 'sigma', found ['other']\n"
    )
