"""The DAG runs the calibration for real: `snakemake results/hard_cluster/config.yaml` on config/ci.yaml plans
resolve_calibration_config -> prepare_data -> calibrate_clustering -> resolve_config, and the resolved config every
training job and every later consumer reads holds the calibrated clustering values."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

from setok.config import config_sha, load_config, resolve
from setok.configtools import deep_merge

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_resolved_config_of_a_calibrated_variant_holds_the_calibrated_values(tmp_path):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "snakemake"), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
                        "results/hard_cluster/config.yaml", "results/semhitok/config.yaml", "--configfile",
                        str(ROOT / "config/paper.yaml"), str(ROOT / "config/ci.yaml")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    cal = tmp_path / "results/hard_cluster/calibration"
    report = yaml.safe_load((cal / "report.json").read_text())  # JSON is YAML
    chosen = {k: report["chosen"][k] for k in ("kernel_c", "min_seed_score", "beta")}
    assert yaml.safe_load((cal / "clustering.yaml").read_text())["tokenizer"]["clustering"] == chosen
    cfg = load_config(tmp_path / "results/hard_cluster/config.yaml")
    assert {k: getattr(cfg.tokenizer.clustering, k) for k in chosen} == chosen
    assert cfg.tokenizer.calibration.calibrated is not None
    # the calibration read the config before calibration, which differs only there
    before = load_config(cal / "config.yaml")
    assert before.tokenizer.calibration.calibrated is None and config_sha(before) == report["config_sha"]
    raw = deep_merge(yaml.safe_load((ROOT / "config/paper.yaml").read_text()),
                     yaml.safe_load((ROOT / "config/ci.yaml").read_text()))
    assert config_sha(before) == config_sha(resolve(raw, "hard_cluster"))
    # the hash a scoring job records is the trained config's (python -m setok.config sha)
    resolved = str(tmp_path / "results/hard_cluster/config.yaml")
    sha = subprocess.run([sys.executable, "-m", "setok.config", "sha", resolved],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    assert sha == config_sha(cfg) != config_sha(before)
    # SemHiTok is not calibrated: its resolved config is the config as given
    assert not (tmp_path / "results/semhitok/calibration").exists()
    assert load_config(tmp_path / "results/semhitok/config.yaml") == resolve(raw, "semhitok")
