"""environment.yml (conda, clusters) mirrors pyproject.toml's pinned dependencies and its `test` extra exactly."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def norm(req: str) -> str:
    name, _, ver = req.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={ver.strip()}"


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(norm(d) for d in deps) == sorted(norm(d) for d in pip if not d.startswith("-"))
    assert all("==" in d for d in deps), "every dependency is pinned"


def test_diffusers_is_a_test_dependency_only():
    """No module of the harness imports diffusers (the MAR schedule is hand-written, issue 18 item 11); a test
    cross-checks it against diffusers' DDPMScheduler, so diffusers is pinned in the `test` extra, which `make install`
    installs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(norm(d).startswith("diffusers==") for d in project["dependencies"])
    assert any(norm(d).startswith("diffusers==") for d in project["optional-dependencies"]["test"])
    assert '-e ".[test]"' in (ROOT / "Makefile").read_text()
    sources = [p for top in ("setok", "evaluation", "workflow") for p in (ROOT / top).rglob("*.py")]
    assert sources and not [p for p in sources if re.search(r"^\s*(import|from) diffusers", p.read_text(), re.M)]


def test_torch_pair_is_pinned_together_everywhere():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    constraints = (ROOT / "constraints.txt").read_text()
    for pkg in ("torch", "torchvision"):
        pin = next(d for d in deps if d.startswith(pkg + "=="))
        assert pin in constraints
