"""The cider / flickr30k / coco_caption benchmarks: hand-computed CIDEr-D and BLEU-4, agreement with pycocoevalcap's own
``COCOEvalCap`` pipeline, the Karpathy layout, and one-line input errors. Needs Java (the PTB tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.caption import caption_scores, corpus_bleu, ptb_tokenize
from evaluation.registry import get, score
from setok.io import DataError

# Four images with several references each: punctuation, capitals, contractions, short and long predictions
# (brevity penalty) and one prediction sharing nothing with its references.
REFERENCES: dict[int, list[str]] = {
    391895: ["A man with a red helmet on a small moped on a dirt road.", "Man riding a motor bike on a dirt road."],
    522418: ["A woman wearing a net on her head cutting a cake.", "A woman cutting a large white sheet cake."],
    184613: ["A child holding a flowered umbrella and petting a yak.", "A young man holding an umbrella."],
    318219: ["A young boy standing in front of a computer keyboard.", "A little boy wearing headphones."],
}
PREDICTIONS: dict[int, str] = {
    391895: "A man riding a motorbike on a dirt road!",
    522418: "A woman cutting a cake.",
    184613: "Kids don't like yaks, do they?",
    318219: "A young boy in front of a keyboard.",
}


def _coco_refs(path: Path, refs: dict[Any, list[str]]) -> Path:
    anns = [{"image_id": i, "caption": c} for i, caps in refs.items() for c in caps]
    for k, a in enumerate(anns):
        a["id"] = k
    path.write_text(json.dumps({"images": [{"id": i} for i in refs], "annotations": anns}))
    return path


def _preds(path: Path, preds: dict[Any, str]) -> Path:
    path.write_text(json.dumps([{"image_id": i, "caption": c} for i, c in preds.items()]))
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return _preds(tmp_path / "preds.json", PREDICTIONS), _coco_refs(tmp_path / "captions_val2014.json", REFERENCES)


def test_identical_captions_score_cider_1000_and_a_wrong_one_scores_0(tmp_path: Path) -> None:
    # Two images, one 4-word reference each, no n-gram shared between images: every n-gram has df = 1, so
    # idf = log(2) - log(1) > 0 for all of them; an identical caption has cosine 1 for n = 1..4 and no length
    # penalty, so CIDEr-D = 10 * mean(1, 1, 1, 1) / 1 reference = 10 -> 1000 after x100.
    refs = _coco_refs(tmp_path / "r.json", {1: ["A cat sits down."], 2: ["The dog runs fast!"]})
    same = score("cider", _preds(tmp_path / "p.json", {1: "a cat sits down", 2: "the dog runs fast"}), refs)
    assert same.metrics["cider"] == pytest.approx(1000.0, abs=1e-9)
    # BLEU-4 = 1 up to BleuScorer's epsilons: 1 - (1e-9 / 8) * (1 + 1/2 + 1/3 + 1/4 + ... ) ~ 1 - 3.9e-10.
    assert same.metrics["bleu4"] == pytest.approx(100.0, abs=1e-6)
    # Image 1 now says image 2's caption: it shares no n-gram with "a cat sits down" -> CIDEr 0; image 2 keeps 10.
    wrong = score("cider", _preds(tmp_path / "p.json", {1: "the dog runs fast", 2: "the dog runs fast"}), refs)
    assert [r["cider"] for r in wrong.rows] == pytest.approx([0.0, 1000.0], abs=1e-9)
    assert wrong.metrics["cider"] == pytest.approx(500.0, abs=1e-9)
    # Corpus BLEU-4 pools counts: matches 4/8 unigrams, 3/6 bigrams, 2/4 trigrams, 1/2 4-grams -> (1/2^4)^(1/4) = 0.5,
    # lengths 8 vs 8 -> no brevity penalty. The per-image sentence BLEU of image 1 is ~0 instead.
    assert wrong.metrics["bleu4"] == pytest.approx(50.0, abs=1e-6)
    assert wrong.rows[0]["bleu4"] < 1e-10


def _official(refs_path: Path, preds_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run pycocoevalcap's COCOEvalCap.evaluate() on the files (METEOR and SPICE stubbed: SPICE needs a download)."""
    import pycocoevalcap.eval as cap_eval
    from pycocotools.coco import COCO

    class _Skip:
        def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
            return 0.0, [0.0] * len(gts)

        def method(self) -> str:
            return "skipped"

    monkeypatch.setattr(cap_eval, "Meteor", _Skip)
    monkeypatch.setattr(cap_eval, "Spice", _Skip)
    coco = COCO(str(refs_path))
    evaluator = cap_eval.COCOEvalCap(coco, coco.loadRes(str(preds_path)))
    evaluator.evaluate()
    return {"eval": evaluator.eval, "per_image": evaluator.imgToEval}


def test_scores_equal_the_official_coco_eval_cap_pipeline(
    files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    preds, refs = files
    ours = score("cider", preds, refs, n_bootstrap=0)
    official = _official(refs, preds, monkeypatch)
    assert ours.metrics["cider"] == pytest.approx(100 * official["eval"]["CIDEr"], rel=1e-12)
    assert ours.metrics["bleu4"] == pytest.approx(100 * official["eval"]["Bleu_4"], rel=1e-12)
    for row in ours.rows:
        assert row["cider"] == pytest.approx(100 * official["per_image"][row["image_id"]]["CIDEr"], rel=1e-12)
        assert row["bleu4"] == pytest.approx(100 * official["per_image"][row["image_id"]]["Bleu_4"], rel=1e-12)
    # Pinned values of this fixture (pycocoevalcap 1.2, CoreNLP 3.4.1): a change in the pipeline shows up here.
    assert ours.metrics["cider"] == pytest.approx(PINNED_CIDER, rel=1e-9)
    assert ours.metrics["bleu4"] == pytest.approx(PINNED_BLEU4, rel=1e-9)


PINNED_CIDER = 237.19848787674823
PINNED_BLEU4 = 37.090640808465345


def test_ptb_tokenizer_lowercases_splits_contractions_and_drops_punctuation() -> None:
    out = ptb_tokenize({7: ["Kids don't like yaks, do they?", "A man -- on a moped..."]})
    assert out == {7: ["kids do n't like yaks do they", "a man on a moped"]}


def test_carriage_return_in_a_caption_does_not_shift_later_captions() -> None:
    # pycocoevalcap alone would return {1: ['a'], 2: ['dog']}: Java ends the line at "\r".
    assert ptb_tokenize({1: ["a\rdog"], 2: ["the cat"], 3: ["x\u2028y"]}) == {1: ["a dog"], 2: ["the cat"], 3: ["x y"]}


def test_corpus_bleu_from_statistics_equals_pycocoevalcap_corpus_bleu() -> None:
    s = caption_scores(REFERENCES, PREDICTIONS)
    # Short predictions ("a woman cutting a cake": 5 tokens, closest reference 8): the corpus has 29 tokens against
    # 33 closest-reference tokens, so the corpus brevity penalty exp(1 - 33/29) applies.
    assert (s.bleu_stats[:, 0].sum(), s.bleu_stats[:, 1].sum()) == (29, 33)
    assert float(corpus_bleu(s.bleu_stats)) == pytest.approx(s.bleu4, rel=1e-12)
    # Vectorised over replicates: resampling every image once each (any order) gives the corpus value again.
    idx = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
    np.testing.assert_allclose(corpus_bleu(s.bleu_stats[idx]), [s.bleu4, s.bleu4], rtol=1e-12)


def test_cider_interval_resamples_per_image_scores_with_fixed_idf(files: tuple[Path, Path]) -> None:
    result = score("cider", *files, n_bootstrap=300, seed=5)
    per_image = np.array([r["cider"] for r in result.rows])
    assert result.metrics["cider"] == pytest.approx(per_image.mean(), rel=1e-12)
    _, ci = means_with_ci95({"cider": per_image}, n_boot=300, seed=5)
    assert result.ci95["cider"] == pytest.approx(ci["cider"])
    lo, hi = result.ci95["bleu4"]
    assert lo <= result.metrics["bleu4"] <= hi and lo < hi


def test_karpathy_layout_scores_the_split_with_ids_from_file_names(tmp_path: Path, files: tuple[Path, Path]) -> None:
    images = [
        {"filename": f"COCO_val2014_{i:012d}.jpg", "split": "test", "sentences": [{"raw": c} for c in caps]}
        for i, caps in REFERENCES.items()
    ]
    images.append({"filename": "COCO_val2014_000000000001.jpg", "split": "val", "sentences": [{"raw": "x"}]})
    karpathy = tmp_path / "dataset_coco.json"
    karpathy.write_text(json.dumps({"images": images, "dataset": "coco"}))
    via_karpathy = score("coco_caption", files[0], karpathy, n_bootstrap=0)
    via_coco = score("cider", *files, n_bootstrap=0)
    assert via_karpathy.metrics == via_coco.metrics and via_karpathy.n == 4
    with pytest.raises(DataError, match=r"no images in split 'testB'.*'test': 4"):
        score("flickr30k", files[0], karpathy, split="testB")


def test_aliases_share_the_scorer() -> None:
    from evaluation.suite.cider import CiderBenchmark

    assert all(isinstance(get(n), CiderBenchmark) for n in ("cider", "flickr30k", "coco_caption"))
    assert type(get("flickr30k")).score is CiderBenchmark.score
    assert "Flickr30K" in get("flickr30k").summary and "COCO" in get("coco_caption").summary


@pytest.mark.parametrize(
    ("preds", "match"),
    [
        ({i: c for i, c in PREDICTIONS.items() if i != 184613}, r"preds.json: missing captions for 1 of 4 .*184613"),
        ({**PREDICTIONS, 5: "extra"}, r"preds.json: 1 image ids are not in .*: 5"),
        ({str(i): c for i, c in PREDICTIONS.items()}, r"missing captions for 4 of 4 .*differ only in type"),
    ],
)
def test_prediction_coverage_errors_are_one_line_naming_the_file(
    tmp_path: Path, files: tuple[Path, Path], preds: dict[Any, str], match: str
) -> None:
    with pytest.raises(DataError, match=match) as e:
        score("cider", _preds(tmp_path / "preds.json", preds), files[1])
    assert "\n" not in str(e.value)


def test_duplicate_predictions_and_captionless_images_are_errors(tmp_path: Path, files: tuple[Path, Path]) -> None:
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps([{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]))
    with pytest.raises(DataError, match=r"dup.json: 1 image ids have more than one caption: 1"):
        score("cider", dup, files[1])
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"images": [{"id": 1}, {"id": 2}], "annotations": [{"image_id": 1, "caption": "a"}]}))
    with pytest.raises(DataError, match=r"bare.json: 1 images have no caption annotation: 2"):
        score("cider", files[0], bare)
