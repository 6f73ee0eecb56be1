"""The four loaders under test and their timing.

Ours are built as the trainers build them (``setok/train/tokenizer.py``, ``setok/train/semhitok.py``): the dataset,
a :class:`~setok.train.schedule.StepBatchSampler` (a seeded permutation, so random access), ``collate`` and
``num_workers``. The references read the same files with the same transform
(:func:`setok.data.transforms.image_transform`): ``torchvision.datasets.ImageFolder`` (shuffled) on the class
folders and ``webdataset.WebDataset(shards).decode("pil").to_tuple(...)`` (streamed in shard order) on the shards.
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from setok.data import collate
from setok.data.image_shards import ImageShards
from setok.data.imagenet import ImageNetFolder
from setok.data.transforms import image_transform
from setok.train.schedule import StepBatchSampler

Loader = Iterable[Any]


def _ours(dataset: ImageNetFolder | ImageShards, *, batch: int, workers: int) -> DataLoader:
    sampler = StepBatchSampler(num_samples=len(dataset), batch_size=batch, micro_batch_size=batch,
                               steps=len(dataset) // batch, seed=0)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers)


def ours_folders(root: Path, *, size: int, batch: int, workers: int) -> DataLoader:
    """Our ImageNet reader in the trainers' DataLoader; batches are dicts with ``image`` ``(B, 3, size, size)``."""
    return _ours(ImageNetFolder(root, image_size=size), batch=batch, workers=workers)


def ours_shards(root: Path, *, size: int, batch: int, workers: int) -> DataLoader:
    """Our img2dataset shard reader in the trainers' DataLoader (its index is built before this returns)."""
    return _ours(ImageShards(root, image_size=size), batch=batch, workers=workers)


def torchvision_folders(root: Path, *, size: int, batch: int, workers: int) -> DataLoader:
    """``torchvision.datasets.ImageFolder`` with our transform, shuffled; batches are ``(images, targets)``."""
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(str(root), transform=image_transform(size))
    return DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                      generator=torch.Generator().manual_seed(0))


def _keep(x: Any) -> Any:
    return x


def webdataset_shards(root: Path, *, size: int, batch: int, workers: int) -> DataLoader:
    """``webdataset.WebDataset`` on the shards, decoded to PIL, our transform mapped over the image; batches are
    ``(images, captions)``.

    Raises:
        ImportError: webdataset is not installed (pyproject's ``test`` extra pins it).
    """
    import webdataset as wds

    urls = [str(p) for p in sorted(root.glob("*.tar"))]
    dataset = (wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("pil")
               .to_tuple("jpg;jpeg;png;webp", "txt").map_tuple(image_transform(size), _keep))
    return DataLoader(dataset, batch_size=batch, num_workers=workers)


def images_of(batch: Any) -> torch.Tensor:
    """The ``(B, 3, S, S)`` images of a batch of any of the four loaders."""
    return batch["image"] if isinstance(batch, dict) else batch[0]


@dataclass(frozen=True)
class Rate:
    """One timed pass: ``images`` timed after the first batch in ``seconds`` of wall clock, and the CPU time of
    the main process and of the finished workers over the whole pass, first batch and worker start included."""

    images: int
    seconds: float
    cpu_seconds: float
    total_images: int

    @property
    def per_second(self) -> float:
        """Images per second of wall clock, after the first batch."""
        return self.images / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU milliseconds per image, workers included."""
        return 1000.0 * self.cpu_seconds / self.total_images


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_loader(make: Callable[[], Loader], images: int) -> Rate:
    """Iterate a fresh loader from ``make`` for ``images`` images (or until it ends) and time it.

    The wall clock starts when the first batch has arrived (worker start-up, the dataset's first open files) and
    stops after the last; the CPU clock covers the whole pass including the workers, which have exited when the
    iterator is deleted.
    """
    cpu0 = _cpu()
    loader = make()
    it = iter(loader)
    seen = images_of(next(it)).shape[0]
    first, start = seen, time.perf_counter()
    for batch in it:
        seen += images_of(batch).shape[0]
        if seen >= images:
            break
    seconds = time.perf_counter() - start
    del it, loader  # joins the workers, so their CPU time is in RUSAGE_CHILDREN
    return Rate(images=seen - first, seconds=seconds, cpu_seconds=_cpu() - cpu0, total_images=seen)


def same_outputs(folders: Path, shards: Path, *, size: int, count: int) -> tuple[bool, bool | None]:
    """Whether our readers return exactly the references' image tensors for the first ``count`` images.

    Returns:
        ``(folders agree, shards agree)``; the second is None without webdataset.
    """
    from torchvision.datasets import ImageFolder

    ours, theirs = ImageNetFolder(folders, image_size=size), ImageFolder(str(folders), transform=image_transform(size))
    folders_ok = all(torch.equal(ours[i]["image"], theirs[i][0]) for i in range(count))
    try:
        import webdataset  # noqa: F401
    except ImportError:
        return folders_ok, None
    stream = iter(webdataset_shards(shards, size=size, batch=1, workers=0).dataset)
    mine = ImageShards(shards, image_size=size)
    shards_ok = all(torch.equal(mine[i]["image"], next(stream)[0]) for i in range(count))
    return folders_ok, shards_ok
