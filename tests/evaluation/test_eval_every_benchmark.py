"""Every benchmark of both papers is reachable from the CLI and documents its formats in --help."""
import subprocess
import sys
from pathlib import Path

import pytest

from evaluation import registry

ROOT = Path(__file__).resolve().parents[2]
PAPER_BENCHMARKS = {
    # SeTok (Tables 1-6, 11, 13, 14) and SemHiTok (understanding, generation, reconstruction tables)
    "fid", "imagenet", "flickr30k", "vqav2", "gqa", "okvqa", "vizwiz", "pope", "mme", "mmvet", "coco_fid",
    "magicbrush", "evr", "ma5k", "refcoco+", "refcocog", "reasonseg", "seed", "mmbench", "mmmu", "mjhq_fid",
    "genai_bench",
}


def test_every_paper_benchmark_is_registered():
    assert PAPER_BENCHMARKS <= set(registry.names())


@pytest.mark.parametrize("name", sorted(PAPER_BENCHMARKS))
def test_score_help_documents_the_prediction_format(name):
    bench = registry.get(name)
    assert "predictions" in bench.help.lower() and bench.metrics
    assert all(m.help or m.name for m in bench.metrics)


def test_cli_help_runs_for_a_benchmark():
    r = subprocess.run([sys.executable, "-m", "evaluation", "score", "refcoco+", "--help"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "segmentation" in r.stdout and "--predictions" in r.stdout
