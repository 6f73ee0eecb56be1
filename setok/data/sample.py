"""The sample every dataset returns, and the collate function that batches samples."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import torch
from torch import Tensor
from torch.utils.data import default_collate

from setok.io import DataError


class Sample(TypedDict):
    """One image with its labels.

    Keys:
        id: Unique, filesystem-safe identifier of the image within its dataset.
        image: ``(3, S, S)`` float tensor with values in ``[0, 1]``.
        labels: Names of the objects in the image, most salient first; may be empty.
        label: Index into the dataset's ``classes`` or ``-1`` when the image has no class.
        contrastive: Whether ``labels`` should feed the concept-level contrastive loss.
    """

    id: str
    image: Tensor
    labels: list[str]
    label: int
    contrastive: bool


class Batch(TypedDict):
    """A batch of samples as produced by :func:`collate`.

    Keys:
        id: Sample ids, in batch order.
        image: ``(B, 3, S, S)`` float tensor.
        labels: Per-sample object label lists.
        label: ``(B,)`` long tensor of class indices (``-1``: none).
        contrastive: ``(B,)`` bool tensor.
    """

    id: list[str]
    image: Tensor
    labels: list[list[str]]
    label: Tensor
    contrastive: Tensor


def stack(tensors: Sequence[Tensor]) -> Tensor:
    """``torch.stack(tensors)``, built in shared memory when called in a DataLoader worker.

    torch's ``default_collate`` stacks straight into shared memory inside a worker; a plain ``torch.stack`` makes the
    worker copy the batch there again to send it (1.2 ms per 384-px float image, ~12% of a worker's time,
    benchmarks/loader_speed.py). Same values either way.

    Args:
        tensors: Tensors of one shape and dtype, e.g. ``B`` images ``(3, S, S)``.

    Returns:
        The ``(B, ...)`` stacked tensor.
    """
    return default_collate(list(tensors))


def collate(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a batch.

    Args:
        samples: Samples of equal image size.

    Returns:
        The batch: images stacked to ``(B, 3, S, S)``, ``label`` as a long tensor, ``contrastive`` as a bool
        tensor, ids and object labels kept as lists.

    Raises:
        ValueError: ``samples`` is empty or the images differ in shape.
    """
    if not samples:
        raise ValueError("collate: empty list of samples")
    shapes = {tuple(s["image"].shape) for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"collate: images of different shapes {sorted(shapes)} in one batch")
    return Batch(
        id=[s["id"] for s in samples],
        image=stack([s["image"] for s in samples]),
        labels=[list(s["labels"]) for s in samples],
        label=torch.tensor([s["label"] for s in samples], dtype=torch.long),
        contrastive=torch.tensor([s["contrastive"] for s in samples], dtype=torch.bool),
    )


def check_unique_ids(ids: Sequence[str], where: str) -> None:
    """Raise if two samples share an id.

    Args:
        ids: Sample ids.
        where: The file or folder the ids come from, for the message.

    Raises:
        DataError: An id occurs twice; the message names it and ``where``.
    """
    if len(set(ids)) == len(ids):
        return
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise DataError(f"{where}: two images share the id {i!r}")
        seen.add(i)
