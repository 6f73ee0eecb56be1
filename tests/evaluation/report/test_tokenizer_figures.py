"""Token-mask overlay (Figure 6): regions coloured per token, boundaries between tokens drawn black."""
import numpy as np

from evaluation.report.tokenizer_figures import overlay


def test_overlay_marks_token_boundaries_and_keeps_one_colour_per_token():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    assignment = np.array([[0, 1], [0, 1]])  # left half token 0, right half token 1 (2x2 patches of 4x4 px)
    out = overlay(image, assignment, alpha=0.5)
    assert (out[:, 4] == 0).all()  # the first column of token 1 borders token 0
    assert (out[:, :4] == out[0, 0]).all()  # token 0's region is one colour
    assert (out[:, 5:] == out[0, 7]).all() and not (out[0, 0] == out[0, 7]).all()
    assert (overlay(image, np.zeros((2, 2), dtype=int)) != 0).all()  # one token: no boundary at all


def test_rank_frequency_gives_shares_of_the_used_codes_and_table9_usage():
    import pytest

    from evaluation.report.semhitok_figures import rank_frequency

    freq, usage = rank_frequency(np.array([0, 3, 1, 0, 4, 0, 0, 0]))
    np.testing.assert_allclose(freq, [0.5, 0.375, 0.125])
    assert usage == 3 / 8
    from setok.io import DataError

    with pytest.raises(DataError, match="no code was chosen"):
        rank_frequency(np.zeros(4))


def test_code_maps_relabel_codes_in_order_of_first_appearance():
    from evaluation.report.semhitok_figures import compact

    codes = np.array([[900, 7, 7], [16383, 900, 7]])
    assert compact(codes).tolist() == [[0, 1, 1], [2, 0, 1]]


def test_semhitok_figures_from_result_files(tmp_path):
    from PIL import Image

    from evaluation.report.semhitok_figures import main

    images = tmp_path / "images"
    images.mkdir()
    rec = tmp_path / "results/semhitok/tokenizer"
    (rec / "recon").mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (16, 16), (40 * i, 100, 200)).save(images / f"im{i}.png")
        Image.new("RGB", (16, 16), (40 * i, 90, 190)).save(rec / "recon" / f"im{i}.png")
    np.savez(rec / "codes.npz", flat_counts=np.array([5, 0, 2, 1]),
             **{"map/im0": np.array([[3, 3], [1, 0]]), "map/im1": np.array([[2, 2], [2, 2]])})
    out = tmp_path / "fig"
    assert main(["--results", str(tmp_path / "results"), "--images", str(images), "--variants", "semhitok",
                 "--out", str(out)]) == 0
    for name in ("codebook_usage", "code_maps", "reconstructions"):
        png = Image.open(out / f"{name}.png")
        assert png.size[0] > 100 and np.asarray(png.convert("L")).std() > 0  # a drawn figure, not a blank page


BUNDLED = {"grader": None, "subset": [], "shortcuts": [
    "evaluated on the bundled images (datasets.bundled.kind = bundled), not ImageNet val"]}


def captured(monkeypatch, module):
    """Figures ``module`` would save, kept open for inspection instead."""
    figs = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path: figs.append(fig))
    return figs


def footer(fig):
    return [t.get_text() for t in fig.texts if t is not fig._suptitle]


def test_token_counts_of_a_stand_in_evaluation_set_are_marked(tmp_path, monkeypatch):
    from evaluation.report import tokenizer_figures as figures
    from setok.io import write_json

    write_json(tmp_path / "a/tokenizer/tokens.json", {"per_image": {"x": 3, "y": 5}, "provenance": BUNDLED})
    write_json(tmp_path / "b/tokenizer/tokens.json", {"per_image": {"x": 4, "y": 4}})  # from before provenance
    figs = captured(monkeypatch, figures)
    figures.token_counts(tmp_path, ["a", "b"], tmp_path / "out")
    (fig,) = figs
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a§", "b"]
    assert footer(fig) == ["Marked values are not a model's measured benchmark score:\n§ tokens: shortcut: evaluated "
                           "on the bundled images (datasets.bundled.kind = bundled), not ImageNet val"]


def test_codebook_usage_of_a_stand_in_evaluation_set_is_marked(tmp_path, monkeypatch):
    from evaluation.report import semhitok_figures
    from setok.io import write_json

    for v, prov in (("a", BUNDLED), ("b", {"grader": None, "subset": [], "shortcuts": []})):
        (tmp_path / v / "tokenizer").mkdir(parents=True)
        np.savez(tmp_path / v / "tokenizer/codes.npz", flat_counts=np.array([5, 0, 2, 1]))
        write_json(tmp_path / v / "tokenizer/tokens.json", {"codebook_usage": 0.75, "provenance": prov})
    figs = captured(monkeypatch, semhitok_figures)
    semhitok_figures.codebook_usage(tmp_path, ["a", "b"], tmp_path / "out")
    (fig,) = figs
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a (usage 75.0%§)", "b (usage 75.0%)"]
    assert len(footer(fig)) == 1 and "§ tokens: shortcut: evaluated on the bundled images" in footer(fig)[0]
