"""Training loss curves: log de-duplication, per-key series, one panel per loss key, malformed lines named file:line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from evaluation.report import training_figures as tf
from setok.io import DataError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_log(path: Path, rows: list[dict[str, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# A resumed run: steps 2 and 3 were logged, the job died, it resumed from step 1's checkpoint and logged 2, 3, 4 again.
STAGE1_ROWS = [
    {"step": 1, "lr": 0.001, "seconds": 0.5, "text": 10.0, "vis": 1.0, "eoi": 0.75, "loss": 11.75},
    {"step": 2, "lr": 0.0009, "seconds": 0.6, "text": 9.0, "loss": 9.0},
    {"step": 3, "lr": 0.0006, "seconds": 0.9, "text": 8.0, "vis": 0.5, "eoi": 0.25, "loss": 8.75},
    {"step": 2, "lr": 0.0009, "seconds": 0.3, "text": 7.0, "vis": 0.125, "loss": 7.125},
    {"step": 3, "lr": 0.0006, "seconds": 0.6, "text": 6.0, "loss": 6.0},
    {"step": 4, "lr": 0.0001, "seconds": 0.8, "text": 5.0, "vis": 0.0625, "eoi": 0.5, "loss": 5.5625},
]


def test_read_log_keeps_the_last_row_of_each_step_and_splits_the_losses(tmp_path: Path) -> None:
    log = tf.read_log(write_log(tmp_path / "train_log.jsonl", STAGE1_ROWS))
    assert log.steps == [1, 2, 3, 4]
    assert list(log.series) == ["loss", "text", "vis", "eoi"]  # total first; lr, seconds, step are not losses
    assert log.series["loss"] == tf.Series([1, 2, 3, 4], [11.75, 7.125, 6.0, 5.5625])
    assert log.series["text"] == tf.Series([1, 2, 3, 4], [10.0, 7.0, 6.0, 5.0])
    # "vis" is missing on the surviving step-3 row; only the re-logged step-2 row has it
    assert log.series["vis"] == tf.Series([1, 2, 4], [1.0, 0.125, 0.0625])
    # "eoi" was logged at the first step 3, but that row was replaced by the resumed one, which lacks it
    assert log.series["eoi"] == tf.Series([1, 4], [0.75, 0.5])


def test_the_gpu_memory_column_is_not_a_loss(tmp_path: Path) -> None:
    rows = [{"step": 1, "lr": 0.1, "seconds": 1.0, "loss": 2.0, "max_memory_gb": 71.2},
            {"step": 2, "lr": 0.1, "seconds": 2.0, "loss": 1.5, "max_memory_gb": 71.4}]
    assert list(tf.read_log(write_log(tmp_path / "train_log.jsonl", rows)).series) == ["loss"]


def test_a_malformed_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n\n{"step": 2, "loss": 1.\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:3: malformed log line"):
        tf.read_log(path)
    path.write_text('{"step": 1, "loss": 2.0}\n{"loss": 1.0}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:2: .*'step'"):
        tf.read_log(path)
    path.write_text('{"step": 1, "loss": "high"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:1: .*non-numeric value for loss"):
        tf.read_log(path)


def test_cli_malformed_line_exits_2_with_one_line_naming_file_and_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "results/a/tokenizer/train_log.jsonl"
    write_log(path, [{"step": 1, "loss": 1.0}])
    with path.open("a") as f:
        f.write("{not json\n")
    assert tf.main(["--results", str(tmp_path / "results"), "--variants", "a", "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {path}:2: malformed log line, not valid JSON (Expecting property name enclosed in double "
                   "quotes)"]


def test_plot_stage_has_one_panel_per_loss_key_over_the_variants(tmp_path: Path) -> None:
    a = tf.read_log(write_log(tmp_path / "a.jsonl", STAGE1_ROWS))
    b = tf.read_log(write_log(tmp_path / "b.jsonl", [{"step": 1, "loss": 3.0, "text": 2.0, "aux": 1.0}]))
    colours = tf.variant_colours(["a", "b"])
    fig = tf.plot_stage("stage1", {"a": a, "b": b}, colours)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "text", "vis", "eoi", "aux"]
    loss_ax = fig.axes[0]
    assert [line.get_label() for line in loss_ax.get_lines()] == ["a", "b"]
    assert [line.get_color() for line in loss_ax.get_lines()] == [colours["a"], colours["b"]]
    assert list(loss_ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    assert [line.get_label() for line in fig.axes[4].get_lines()] == ["b"]  # only b logged "aux"


def test_log_scale_only_for_positive_values_spanning_more_than_two_decades() -> None:
    assert tf.wants_log_scale([1000.0, 5.0])
    assert not tf.wants_log_scale([100.0, 1.0])  # exactly two decades
    assert not tf.wants_log_scale([1000.0, 0.0])
    assert not tf.wants_log_scale([])
    assert tf.wants_log_scale([1000.0, float("nan"), 1.0])


def test_cli_writes_a_figure_per_stage_and_the_overview(tmp_path: Path, capsys, monkeypatch) -> None:
    results = tmp_path / "results"
    write_log(results / "a/stage1/train_log.jsonl", STAGE1_ROWS)
    write_log(results / "a/stage1/mask_decoder/train_log.jsonl",
              [{"step": s, "loss": 10.0 ** -s, "dice": 0.5} for s in range(1, 5)])
    write_log(results / "b/tokenizer/train_log.jsonl", [{"step": s, "loss": 2.0 / s, "rec": 1.0 / s} for s in (1, 2)])
    write_log(results / "b/stage1/train_log.jsonl", [{"step": 1, "loss": 3.0, "text": 3.0}])
    titles: dict[str, list[str]] = {}
    real_save = tf.save_figure

    def recording_save(fig, path: Path) -> None:
        titles[path.name] = [ax.get_title() for ax in fig.axes]
        titles[path.name + ":yscale"] = [ax.get_yscale() for ax in fig.axes]
        real_save(fig, path)

    monkeypatch.setattr(tf, "save_figure", recording_save)
    out = tmp_path / "fig"
    code = tf.main(["--results", str(results), "--variants", "a", "nothing", "b", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == f"warning: {results / 'nothing'}: no train_log.jsonl found, variant skipped"
    names = ["loss_tokenizer.png", "loss_stage1.png", "loss_stage1_mask_decoder.png", "loss_curves.png"]
    assert captured.out.split() == [str(out / n) for n in names]
    for n in names:
        data = (out / n).read_bytes()
        assert data.startswith(PNG_MAGIC)
        with Image.open(out / n) as im:
            im.verify()
    assert titles["loss_tokenizer.png"] == ["loss", "rec"]
    assert titles["loss_stage1.png"] == ["loss", "text", "vis", "eoi"]
    assert titles["loss_stage1_mask_decoder.png"] == ["loss", "dice"]
    assert titles["loss_stage1_mask_decoder.png:yscale"] == ["log", "linear"]  # 1e-1 .. 1e-4
    assert titles["loss_curves.png"] == ["tokenizer", "stage1", "stage1/mask_decoder"]


def test_cli_without_any_log_exits_2(tmp_path: Path, capsys) -> None:
    (tmp_path / "results/a/eval").mkdir(parents=True)
    assert tf.main(["--results", str(tmp_path / "results"), "--variants", "a", "--out", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "no train_log.jsonl" in err[-1]
    assert not (tmp_path / "fig").exists()
