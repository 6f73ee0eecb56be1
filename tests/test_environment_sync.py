"""environment.yml (conda, clusters) mirrors pyproject.toml's pinned dependencies exactly."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def norm(req: str) -> str:
    name, _, ver = req.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={ver.strip()}"


def test_environment_yml_mirrors_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(norm(d) for d in deps) == sorted(norm(d) for d in pip if not d.startswith("-"))
    assert all("==" in d for d in deps), "every dependency is pinned"


def test_torch_pair_is_pinned_together_everywhere():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    constraints = (ROOT / "constraints.txt").read_text()
    for pkg in ("torch", "torchvision"):
        pin = next(d for d in deps if d.startswith(pkg + "=="))
        assert pin in constraints
