"""Referring-segmentation metrics with LISA's definitions: cIoU and gIoU over binary masks.

Reproduces dvlab-research/LISA ``train_ds.py::validate`` with ``utils/utils.py::intersectionAndUnionGPU`` (K = 2,
``ignore_index = 255``; the foreground class, index 1, is the one reported):

* per sample: intersection ``I`` and union ``U = |pred| + |target| - I`` of the foreground, after pixels marked
  ignore (255 in the target) are removed from both prediction and target (``output[target == 255] = 255``, and
  ``histc`` over ``[0, 1]`` skips 255);
* per-sample IoU ``I / (U + 1e-5)``, plus 1.0 when ``U == 0`` (empty target and empty prediction: "no-object target");
* cIoU ``= sum(I) / (sum(U) + 1e-10)`` over the split (``intersection_meter.sum / (union_meter.sum + 1e-10)``);
* gIoU ``= sum(IoU) / (N + 1e-5)`` (``AverageMeter.all_reduce`` divides the summed per-sample IoUs by
  ``count + 1e-5``).

All epsilons are LISA's, so values agree with its printout to float precision (LISA accumulates in float32 on the GPU;
here everything is float64 from exact integer pixel counts). Values are fractions; the benchmark reports percent.
Written by hand because no installed library implements LISA's bookkeeping (the per-sample 1.0 for empty unions and
its epsilons); pycocotools only supplies mask decoding in the reader.
"""

from __future__ import annotations

import numpy as np

from evaluation.bootstrap import DEFAULT_RESAMPLES, bootstrap_statistic, percentile_interval

SAMPLE_EPS = 1e-5  # intersection_i / (union_i + 1e-5) in validate()
CIOU_EPS = 1e-10  # intersection_meter.sum / (union_meter.sum + 1e-10)
COUNT_EPS = 1e-5  # AverageMeter.all_reduce: avg = sum / (count + 1e-5)


def intersection_union(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> tuple[int, int]:
    """Foreground intersection and union pixel counts of one sample (``intersectionAndUnionGPU``, class 1).

    Args:
        pred: ``(H, W)`` predicted mask; nonzero is foreground (LISA thresholds logits at 0 before this).
        target: ``(H, W)`` reference mask; nonzero is foreground.
        ignore: Optional ``(H, W)`` mask of pixels excluded from both (LISA's 255 label).

    Returns:
        ``(intersection, union)`` as Python ints.

    Raises:
        ValueError: The shapes differ.
    """
    p, t = np.asarray(pred) != 0, np.asarray(target) != 0
    if p.shape != t.shape or (ignore is not None and np.shape(ignore) != t.shape):
        shapes = [p.shape, t.shape] + ([np.shape(ignore)] if ignore is not None else [])
        raise ValueError(f"mask shapes differ: {' vs '.join(str(s) for s in shapes)}")
    if ignore is not None:
        keep = np.asarray(ignore) == 0
        p, t = p & keep, t & keep
    inter = int(np.count_nonzero(p & t))
    return inter, int(np.count_nonzero(p)) + int(np.count_nonzero(t)) - inter


def sample_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """LISA's per-sample IoU: ``I / (U + 1e-5)``, and 1.0 where ``U == 0``.

    Args:
        intersection: ``(n,)`` foreground intersections.
        union: ``(n,)`` foreground unions.

    Returns:
        ``(n,)`` float64 IoUs in ``[0, 1]``.
    """
    i = np.asarray(intersection, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    return i / (u + SAMPLE_EPS) + (u == 0)


def ciou(intersection: np.ndarray, union: np.ndarray) -> float:
    """Cumulative IoU over a split: ``sum(I) / (sum(U) + 1e-10)`` (0 when every union is empty)."""
    return float(np.sum(intersection, dtype=np.float64) / (np.sum(union, dtype=np.float64) + CIOU_EPS))


def giou(ious: np.ndarray) -> float:
    """Generalised IoU over a split: ``sum(IoU_i) / (N + 1e-5)`` with LISA's per-sample IoUs."""
    v = np.asarray(ious, dtype=np.float64)
    return float(v.sum() / (v.size + COUNT_EPS))


def ciou_giou_ci95(
    intersection: np.ndarray,
    union: np.ndarray,
    *,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap 95% intervals of cIoU (ratio of resampled sums) and gIoU, from the same resamples.

    Args:
        intersection: ``(n,)`` per-sample intersections.
        union: ``(n,)`` per-sample unions.
        n_boot: Resamples over samples (>= 1).
        seed: Seed of :func:`evaluation.bootstrap.bootstrap_statistic`.

    Returns:
        ``{"ciou": (lo, hi), "giou": (lo, hi)}`` as fractions.
    """
    i = np.asarray(intersection, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    iou = sample_iou(i, u)
    n = i.size

    def stat(idx: np.ndarray) -> np.ndarray:  # idx: (b, n) -> (b, 2)
        return np.stack([i[idx].sum(1) / (u[idx].sum(1) + CIOU_EPS), iou[idx].sum(1) / (n + COUNT_EPS)], axis=1)

    reps = bootstrap_statistic(n, stat, n_boot=n_boot, seed=seed)
    return {"ciou": percentile_interval(reps[:, 0]), "giou": percentile_interval(reps[:, 1])}
