"""Image captioning: CIDEr-D and BLEU-4 (x100) through pycocoevalcap, as ``COCOEvalCap`` computes them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.bootstrap import bootstrap_sums, means_with_ci95, percentile_interval
from evaluation.metrics.caption import caption_scores, corpus_bleu
from evaluation.readers.caption import read_captions
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import DataError

if TYPE_CHECKING:
    pass

FORMATS = """
references (--annotations): either
  * COCO captions annotations JSON (captions_val2014.json; Flickr30K converted to it):
      {"images": [{"id": 391895, ...}], "annotations": [{"image_id": 391895, "caption": "A man ..."}, ...]}
    scored images = the "images" list (COCOEvalCap's params['image_id']), each with >= 1 caption; or
  * a Karpathy split file (dataset_coco.json / dataset_flickr30k.json): {"images": [{"filename", "split",
    "sentences": [{"raw"}], ["cocoid"]}]}; the images of --split are scored with their "raw" sentences; image id =
    "cocoid", else the integer after the last "_" of the file stem (1000092795.jpg -> 1000092795).
predictions (--predictions): the COCO results format, a JSON list (or .jsonl):
    [{"image_id": 391895, "caption": "a man riding a bike"}, ...]
  exactly one caption per scored image, ids of the same type (int vs str) as the references'; missing, duplicate
  and extra ids are errors (COCOEvalCap would assert).

Scoring is pycocoevalcap's: PTBTokenizer (Java; lower-cased, punctuation tokens removed) on references and
predictions, then Cider() -- CIDEr-D (clipping, Gaussian length penalty sigma 6, x10) with document frequencies from
the references of the scored images -- and Bleu(4) ("closest" reference length, corpus-level). Reported x100:
cider = 100 * corpus CIDEr-D (the mean of the per-image scores), bleu4 = 100 * corpus BLEU-4.
Line breaks other than "\\n" inside a caption (\\r, \\v, \\f, U+2028, U+2029) are replaced by spaces before tokenizing;
pycocoevalcap replaces only "\\n", and Java would split the caption and shift every later caption.
Per-sample rows: {"image_id", "cider": per-image CIDEr-D x100, "bleu4": per-image sentence BLEU-4 x100,
"caption_tokens": the PTB-tokenized prediction}. The mean of row bleu4 is NOT corpus BLEU-4 (which pools n-gram
counts and lengths over images).
ci95 (default 1000 resamples over images): cider -- percentile bootstrap of the mean of the per-image scores with the
corpus IDF held fixed (the IDF is not re-estimated per resample); bleu4 -- corpus BLEU-4 recomputed from the resampled
images' pooled n-gram statistics. SPICE (needs a download) and METEOR are not computed."""


@register("cider")
class CiderBenchmark(Benchmark):
    """CIDEr-D and BLEU-4 of one caption per image against COCO-style references."""

    help = "Image captioning: CIDEr-D and BLEU-4 (x100, pycocoevalcap with the PTB tokenizer).\n" + FORMATS
    metrics = (
        Metric("cider", higher_is_better=True, help="CIDEr-D x100 (pycocoevalcap Cider)"),
        Metric("bleu4", higher_is_better=True, help="corpus BLEU-4 x100 (pycocoevalcap Bleu)"),
    )

    missing_annotations = "the reference captions"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--split`` (Karpathy layout only)."""
        parser.add_argument(
            "--split", default="test", help="Karpathy split to score when the references are a Karpathy file"
        )

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, split: str = "test", **opts: Any
    ) -> ScoreResult:
        refs, preds = read_captions(predictions, annotations, split)
        try:
            s = caption_scores(refs, preds)
        except ValueError as e:  # e.g. CIDEr's document frequencies are empty when every reference is blank
            raise DataError(f"{annotations}: cannot score captions ({e})") from None
        n_boot = n_bootstrap
        metrics, ci95 = means_with_ci95({"cider": s.cider_per_image}, scale=100.0, n_boot=n_boot, seed=seed)
        metrics = {"cider": 100.0 * s.cider, "bleu4": 100.0 * s.bleu4}  # the library's corpus values, not re-derived
        if n_boot > 0:
            # corpus BLEU of a resample depends on it through its summed statistics: resample counts, not a gather
            reps = bootstrap_sums(s.bleu_stats, lambda sums: corpus_bleu(sums[:, None, :]), n_boot=n_boot, seed=seed)
            ci95["bleu4"] = tuple(100.0 * x for x in percentile_interval(reps))  # type: ignore[assignment]
        rows = [
            {"image_id": i, "cider": 100.0 * float(c), "bleu4": 100.0 * float(b), "caption_tokens": t}
            for i, c, b, t in zip(s.ids, s.cider_per_image, s.bleu4_per_image, s.tokenized_predictions)
        ]
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
