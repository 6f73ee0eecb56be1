"""Ablation bars: exact values, CIs and paper numbers from result files; missing results are empty slots, not bars."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.report import ablation_figures as af
from setok.io import DataError, write_json

PAPER_YAML = """\
setok:
  numbers:
    - {table: "6", row: a, column: fid.fid, value: 2.07, units: rFID}
    - {table: "6", row: c, column: fid.fid, value: 3.56, units: rFID}
    - {table: "5", row: a, column: tokens.mean, value: 25, units: tokens}
    - {table: "1", row: a, column: info.llm, value: "Vicuna-7B"}
    - {table: "13", row: a, column: fid.fid, value: 9.99, units: rFID}
semhitok:
  numbers:
    - {table: "2", row: a, column: fid.fid, value: 1.16, units: rFID}
"""


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Variants a, b, c: a and b have FID (a with a CI, b without), c has none; a has tokens.json, b has cost.json."""
    r = tmp_path / "results"
    write_json(r / "a/eval/fid.json", {"metrics": {"fid": 10.0}, "ci95": {"fid": [7.5, 14.0]}})
    write_json(r / "b/eval/fid.json", {"metrics": {"fid": 20.0}, "ci95": {}})
    (r / "c/eval").mkdir(parents=True)
    write_json(r / "a/tokenizer/tokens.json", {"mean": 24.5, "codebook_usage": 0.25, "per_image": {"x": 24}})
    write_json(r / "b/cost.json", {"gpu_hours": 1.5})
    return r


@pytest.fixture
def paper(tmp_path: Path) -> Path:
    path = tmp_path / "paper_numbers.yaml"
    path.write_text(PAPER_YAML, encoding="utf-8")
    return path


def test_load_paper_keeps_numbers_of_one_section_and_ignores_text(paper: Path) -> None:
    assert af.load_paper(paper, "setok") == {("a", "fid.fid"): 2.07, ("c", "fid.fid"): 3.56, ("a", "tokens.mean"): 25.0}
    assert af.load_paper(paper, "semhitok") == {("a", "fid.fid"): 1.16}
    # one table's numbers: a row's metric printed in two tables takes the asked table's value
    assert af.load_paper(paper, "setok", "13") == {("a", "fid.fid"): 9.99}
    assert af.load_paper(paper, "setok", "6") == {("a", "fid.fid"): 2.07, ("c", "fid.fid"): 3.56}
    assert af.load_paper(paper, "absent") == {}
    with pytest.raises(DataError, match="not found"):
        af.load_paper(paper.with_name("nope.yaml"), "setok")


def test_collect_returns_values_cis_and_paper_numbers(results: Path, paper: Path) -> None:
    rows = af.collect(results, ["a", "b", "c"], ["fid.fid", "tokens.mean", "tokens.codebook_usage_percent",
                                                 "cost.gpu_hours"], af.load_paper(paper, "setok"))
    assert rows == [
        af.Row("fid.fid", "a", 10.0, (7.5, 14.0), 2.07),
        af.Row("fid.fid", "b", 20.0, None, None),  # ci95 lacks fid
        af.Row("fid.fid", "c", None, None, 3.56),  # no result, but the paper has one
        af.Row("tokens.mean", "a", 24.5, None, 25.0),
        af.Row("tokens.mean", "b", None, None, None),
        af.Row("tokens.mean", "c", None, None, None),
        af.Row("tokens.codebook_usage_percent", "a", 25.0, None, None),
        af.Row("tokens.codebook_usage_percent", "b", None, None, None),
        af.Row("tokens.codebook_usage_percent", "c", None, None, None),
        af.Row("cost.gpu_hours", "a", None, None, None),
        af.Row("cost.gpu_hours", "b", 1.5, None, None),
        af.Row("cost.gpu_hours", "c", None, None, None),
    ]


def test_bad_inputs_are_one_line_errors(results: Path) -> None:
    with pytest.raises(DataError, match="expected benchmark.metric"):
        af.collect(results, ["a"], ["fid"], {})
    with pytest.raises(DataError, match=r"tokens.json: 'per_image' is dict, expected a number"):
        af.collect(results, ["a"], ["tokens.per_image"], {})
    write_json(results / "a/eval/bad.json", {"metrics": {"x": 1.0}, "ci95": {"x": [0.5]}})
    with pytest.raises(DataError, match=r"bad.json: ci95\['x'\] must be \[low, high\]"):
        af.collect(results, ["a"], ["bad.x"], {})


def test_direction_labels() -> None:
    assert [af.direction(m) for m in ("fid.fid", "recon.l1", "recon.L2", "recon.lpips", "imagenet.top1")] == [
        "lower is better"] * 4 + ["higher is better"]


def test_error_extents_are_value_minus_low_and_high_minus_value() -> None:
    assert af.error_extent(10.0, (7.5, 14.0)) == (2.5, 4.0)
    assert af.error_extent(10.0, (11.0, 14.0)) == (0.0, 4.0)  # value below its interval: no negative bar


def test_figure_draws_no_bar_for_a_missing_result_and_ci_error_bars(results: Path, paper: Path) -> None:
    metrics = ["fid.fid", "tokens.mean"]
    rows = af.collect(results, ["a", "b", "c"], metrics, af.load_paper(paper, "setok"))
    fig = af.plot(rows, metrics, ["a", "b", "c"], "Table 6")
    assert [ax.get_title() for ax in fig.axes] == metrics
    assert [ax.get_ylabel() for ax in fig.axes] == ["lower is better", "higher is better"]
    fid_ax, tok_ax = fig.axes
    # bars only where there is a result: a=10 at x=0, b=20 at x=1, none for c
    bars = [(p.get_x() + p.get_width() / 2, p.get_height()) for p in fid_ax.patches]
    assert bars == [(0.0, 10.0), (1.0, 20.0)]
    assert [(p.get_x() + p.get_width() / 2, p.get_height()) for p in tok_ax.patches] == [(0.0, 24.5)]
    # the missing slots are labelled with a dash at their positions
    assert [(t.get_position()[0], t.get_text()) for t in fid_ax.texts] == [(2, af.DASH)]
    assert [t.get_position()[0] for t in tok_ax.texts] == [1, 2]
    # one error bar (a's), from value - (value - low) = low to value + (high - value) = high
    (container,) = [c for c in fid_ax.containers if c.get_label() == "95% CI"]
    (segments,) = [lc.get_segments() for lc in container.lines[2]]
    np.testing.assert_allclose(np.asarray(segments), [[[0.0, 10.0 - 2.5], [0.0, 10.0 + 4.0]]])
    assert not [c for c in tok_ax.containers if c.get_label() == "95% CI"]  # tokens.json has no CI
    # paper ticks sit at the variants' positions, including c's empty slot
    (paper_line,) = [ln for ln in fid_ax.get_lines() if ln.get_label() == "paper"]
    assert list(paper_line.get_xdata()) == [0, 2] and list(paper_line.get_ydata()) == [2.07, 3.56]
    assert [t.get_text() for t in fid_ax.get_xticklabels()] == ["a", "b", "c"]


def test_cli_writes_the_png(results: Path, paper: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "fig/ablation.png"
    code = af.main(["--results", str(results), "--variants", "a", "b", "c", "--metrics", "fid.fid", "tokens.mean",
                    "--paper", str(paper), "--paper-section", "setok", "--title", "SeTok ablations", "--out", str(out)])
    assert code == 0
    assert capsys.readouterr().out.split() == [str(out)]
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert af.main(["--results", str(results), "--variants", "a", "--metrics", "fid", "--out", str(out)]) == 2
    assert "expected benchmark.metric" in capsys.readouterr().err


def test_a_marked_value_is_labelled_on_its_bar_its_tick_and_in_the_footer(tmp_path: Path) -> None:
    r = tmp_path / "results"
    limited = {"grader": None, "subset": [{"kept": 8, "of": 50000, "unit": "images", "by": "eval.limit = 8"}],
               "shortcuts": []}
    write_json(r / "a/eval/fid.json", {"metrics": {"fid": 10.0}, "ci95": {"fid": [7.5, 14.0]}, "provenance": limited})
    write_json(r / "b/eval/fid.json", {"metrics": {"fid": 20.0}, "ci95": {},
                                       "provenance": {"grader": None, "subset": [], "shortcuts": []}})
    rows = af.collect(r, ["a", "b"], ["fid.fid"], {})
    assert [len(row.marks) for row in rows] == [1, 0]
    fig = af.plot(rows, ["fid.fid"], ["a", "b"], "Table 6")
    ax = fig.axes[0]
    # the symbol sits above a's error bar (its CI's high end), none above b's bar
    assert [(t.get_position(), t.get_text()) for t in ax.texts] == [((0, 14.0), "ˢ")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["aˢ", "b"]
    (footer,) = [t for t in fig.texts if t is not fig._suptitle]  # the title is one of the figure's texts
    assert footer.get_text().splitlines() == ["Marked values are not a model's measured benchmark score:",
                                              "ˢ fid: subset, 8 of 50000 images (eval.limit = 8)"]
    clean = af.plot(af.collect(r, ["b"], ["fid.fid"], {}), ["fid.fid"], ["b"], "Table 6")
    assert [t for t in clean.texts if t is not clean._suptitle] == [] and list(clean.axes[0].texts) == []


def test_the_cli_draws_a_marked_figure_without_missing_glyphs(tmp_path: Path) -> None:
    import warnings

    r = tmp_path / "results"
    every = {"grader": {"name": "precomputed", "model": None, "file": "g.json", "judges_predictions": False},
             "subset": [{"kept": 5, "of": 14, "unit": "subtasks", "by": "subtasks option"}], "shortcuts": ["s"]}
    write_json(r / "a/eval/mmvet.json", {"metrics": {"score": 100.0}, "ci95": {}, "provenance": every})
    out = tmp_path / "fig.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        assert af.main(["--results", str(r), "--variants", "a", "--metrics", "mmvet.score", "--out", str(out)]) == 0
    with Image.open(out) as im:
        assert im.format == "PNG"
