"""Image-editing metrics of the MagicBrush evaluation script, as pure functions over arrays and embeddings.

Reproduces ``evaluation/image_eval.py`` of osu-nlp-group/MagicBrush:

* ``eval_distance``: L1 is ``torch.nn.L1Loss`` (mean absolute difference over every channel and pixel) and L2 is
  ``torch.nn.MSELoss`` (mean *squared* difference, no square root) between the generated image, resized to the target
  image's size, and the target, both as ``[0, 1]`` floats (``ToTensor``). Each image gets its own mean; the benchmark
  value is the plain mean over images (so a large image weighs as much as a small one).
* ``eval_clip_i`` / ``eval_clip_t``: ``1 - scipy.spatial.distance.cosine(u, v)`` of the (unnormalised) embeddings,
  which scipy clips to ``[-1, 1]``; averaged over images.

No model and no file I/O here: embeddings come from :mod:`evaluation.features.embedders`, images from
:mod:`evaluation.readers.editing`.
"""

from __future__ import annotations

import numpy as np

PIXEL_MAX = 255.0


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """``uint8`` pixels ``(H, W, C)`` as float64 in ``[0, 1]`` (what ``torchvision``'s ``ToTensor`` computes)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {a.dtype}")
    return a.astype(np.float64) / PIXEL_MAX


def _same_shape(generated: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.asarray(generated, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if g.shape != t.shape:
        raise ValueError(f"generated {g.shape} and target {t.shape} differ; resize the generated image first")
    if g.size == 0:
        raise ValueError("empty image")
    return g, t


def l1_distance(generated: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute difference of one image pair (``nn.L1Loss`` in ``eval_distance``).

    Args:
        generated: Generated image in ``[0, 1]``, already resized to the target's size, any shape.
        target: Target image in ``[0, 1]``, same shape.

    Returns:
        ``mean(|generated - target|)`` over every element.
    """
    g, t = _same_shape(generated, target)
    return float(np.abs(g - t).mean())


def l2_distance(generated: np.ndarray, target: np.ndarray) -> float:
    """Mean squared difference of one image pair (``nn.MSELoss`` in ``eval_distance``; no square root).

    Args:
        generated: Generated image in ``[0, 1]``, already resized to the target's size.
        target: Target image in ``[0, 1]``, same shape.

    Returns:
        ``mean((generated - target) ** 2)`` over every element.
    """
    g, t = _same_shape(generated, target)
    return float(np.square(g - t).mean())


def cosine_similarities(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two embedding matrices, clipped to ``[-1, 1]``.

    ``1 - scipy.spatial.distance.cosine(u, v)`` as in MagicBrush's ``eval_clip_i`` / ``eval_clip_t``: the embeddings
    are used as the model returns them (the cosine normalises them), and scipy clips the distance to ``[0, 2]``.

    Args:
        a: ``(n, d)`` embeddings (e.g. of the generated images).
        b: ``(n, d)`` embeddings (of the targets, or of the captions' texts).

    Returns:
        ``(n,)`` float64 similarities.

    Raises:
        ValueError: Shapes differ, or a row has zero norm or a non-finite value (the cosine is undefined).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"need two (n, d) arrays of the same shape, got {a.shape} and {b.shape}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    bad = ~(np.isfinite(na) & np.isfinite(nb) & (na > 0) & (nb > 0))
    if bad.any():
        raise ValueError(f"cosine undefined for rows {np.flatnonzero(bad).tolist()[:5]} (zero or non-finite norm)")
    return np.clip(np.einsum("nd,nd->n", a, b) / (na * nb), -1.0, 1.0)
