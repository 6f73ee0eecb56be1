"""Every trainable stage of both families learned (``make learn``): each check of ``evaluation.learning.checks``
re-evaluated from the measured values in ``reports/learning.json``, by stage, so a failure names the stage and claim."""
from __future__ import annotations

import pytest

from evaluation.learning import checks, plan


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: f"{c.stage}: {c.name}")
def test_stage_meets_its_threshold(learning: dict, check: checks.Check) -> None:
    probe = learning["stages"][check.stage]["probe"]
    value, threshold = probe[check.value], check.threshold(probe)
    assert check.passes(probe), f"{check.stage}: {check.name}: {check.value} = {value:.4g}, needs {check.op} " \
                                f"{threshold:.4g} ({check.rule}; {check.about})"


def test_every_stage_was_trained_and_probed(learning: dict) -> None:
    assert set(learning["stages"]) == set(plan.BY_NAME)
    assert all(row["passed"] for row in learning["checks"]), [r for r in learning["checks"] if not r["passed"]]
