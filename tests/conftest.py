"""Options shared by the whole suite."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--learning-report", default=None,
                     help="learning.json written by `make learn`: run tests/learning against it")
