"""The learned values of ``make learn``: these tests read the report it wrote (``--learning-report``) and run only
when that option is given, so ``make test`` (which trains nothing for minutes) deselects them."""
from __future__ import annotations

from pathlib import Path

import pytest

from setok.io import read_json


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--learning-report"):
        return
    here = Path(__file__).parent
    deselected = [item for item in items if here in Path(item.path).parents]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item not in deselected]


@pytest.fixture(scope="session")
def learning(request: pytest.FixtureRequest) -> dict:
    """``reports/learning.json`` as ``make learn`` wrote it (a missing file fails, it never skips)."""
    return read_json(Path(request.config.getoption("--learning-report")))
