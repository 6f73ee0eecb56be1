"""Every benchmark of both papers is reachable from the CLI and documents its formats in --help."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import cli, registry

ROOT = Path(__file__).resolve().parents[2]
PAPER_BENCHMARKS = {
    # SeTok (Tables 1-6, 11, 13, 14) and SemHiTok (understanding, generation, reconstruction tables)
    "fid", "imagenet", "flickr30k", "vqav2", "gqa", "okvqa", "vizwiz", "pope", "mme", "mmvet", "coco_fid",
    "magicbrush", "evr", "ma5k", "refcoco+", "refcocog", "reasonseg", "seed", "mmbench", "mmmu", "mjhq_fid",
    "genai_bench",
}


def test_every_paper_benchmark_is_registered():
    assert PAPER_BENCHMARKS <= set(registry.names())


# A metric's one-line help names its unit or scale (Metric.help: "One line on what the number is (unit included)").
UNIT = re.compile(r"percent|points|\(raw\)|\bx100\b|\b0-1\b|\b0-100\b|\[0, 1\] scale")
# Distances and error rates (FID, pixel L1/L2, LPIPS) are lower-is-better; so is POPE's yes_ratio (a bias, 50 is
# balanced; the scorer ranks fewer "yes" as better). Every other paper metric is an accuracy or a similarity.
LOWER_IS_BETTER = re.compile(r"^(fid|l1|l2|lpips|yes_ratio)(_|$)")


def score_help(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``python -m evaluation score <name> --help`` prints (in-process)."""
    with pytest.raises(SystemExit) as done:
        cli.main(["score", name, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(PAPER_BENCHMARKS))
def test_score_help_documents_the_prediction_format_and_every_metric(name, capsys):
    bench = registry.get(name)
    text = score_help(name, capsys)
    assert "predictions" in text.lower() and "--predictions" in text and bench.metrics
    names = [m.name for m in bench.metrics]
    assert len(set(names)) == len(names), f"{name}: a metric is declared twice"
    for m in bench.metrics:
        # the --help text names every metric the scorer declares, as written to the result JSON
        assert re.search(rf"(?<![\w<]){re.escape(m.name)}(?![\w>])", text), f"{name}: --help never names {m.name}"
        assert m.help.strip() and UNIT.search(m.help), f"{name}.{m.name}: help {m.help!r} states no unit"
        assert m.higher_is_better == (not LOWER_IS_BETTER.match(m.name)), f"{name}.{m.name}: direction"


def test_cli_help_runs_for_a_benchmark():
    r = subprocess.run([sys.executable, "-m", "evaluation", "score", "refcoco+", "--help"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "segmentation" in r.stdout and "--predictions" in r.stdout
