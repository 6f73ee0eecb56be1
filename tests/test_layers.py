"""Which way imports run (docs/design.md §2): each rule is a set of packages a layer must never import.

Read from the source with ``ast`` (no module is imported), so a violation names the file and line; imports inside
functions count too, since a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer (a folder of the repository) -> packages it must not import, with the reason shown on failure
RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "setok": (("evaluation", "workflow"), "a model, reader or trainer knows no metric, task or table"),
    "setok/modeling": (("setok.train", "setok.data.checks", "evaluation"), "a model knows no trainer or file layout"),
    "evaluation/metrics": (("torch", "setok.modeling", "setok.train", "evaluation.predict"),
                           "metrics are pure functions over plain data"),
    "evaluation/report": (("torch", "setok.modeling", "setok.train", "evaluation.predict"),
                          "tables read result JSON and paper numbers only"),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import in ``path``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def violations(layer: str, banned: tuple[str, ...]) -> list[str]:
    """``file:line imports module`` for every import under ``layer`` of a banned package (or one of its modules)."""
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in imports(path):
            if any(module == b or module.startswith(b + ".") for b in banned):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


@pytest.mark.parametrize("layer", sorted(RULES))
def test_imports_run_one_way(layer: str) -> None:
    banned, why = RULES[layer]
    bad = violations(layer, banned)
    assert not bad, f"{layer} must not import {', '.join(banned)} ({why}):\n" + "\n".join(bad)


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from evaluation.metrics.mme import x\n    return x\n")
    assert imports(module) == [(1, "os"), (4, "evaluation.metrics.mme")]
