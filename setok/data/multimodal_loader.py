"""Loading the images of :class:`~setok.data.multimodal.MultimodalSample` records for a DataLoader.

Images are read and transformed in the DataLoader workers; tokenization with the frozen SeTok happens on the
training device (``setok.train.mllm_batch``). Referring-segmentation samples are letterboxed
(:mod:`setok.data.geometry`) and carry their region's coverage map; every other image is centre-cropped as SeTok saw
its training images.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from setok.data.geometry import letterbox_image, letterbox_mask, region_array
from setok.data.multimodal import MultimodalSample
from setok.data.sample import stack
from setok.data.transforms import image_transform
from setok.io import load_image


@dataclass
class RawBatch:
    """A micro-batch before tokenization.

    Attributes:
        samples: the ``B`` samples.
        images: ``(N, 3, S, S)`` every image of every sample, in sample order then reading order.
        regions: ``(N, S, S)`` object coverage in [0, 1] (zeros for images without a region).
        has_region: ``(N,)`` bool.
        owner: ``(N,)`` index of the sample each image belongs to.
    """

    samples: list[MultimodalSample]
    images: Tensor
    regions: Tensor
    has_region: Tensor
    owner: Tensor


class MultimodalDataset(Dataset[tuple[MultimodalSample, list[Tensor], list[Tensor | None]]]):
    """The samples of all sources of a stage, concatenated in source order (indices as the mixture sampler's)."""

    def __init__(self, sources: Sequence[Sequence[MultimodalSample]], *, image_size: int) -> None:
        self.samples = [s for src in sources for s in src]
        self.image_size = image_size
        self.transform = image_transform(image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[MultimodalSample, list[Tensor], list[Tensor | None]]:
        sample = self.samples[i]
        images, regions = [], []
        for ref in sample.images:
            img = load_image(ref.path)
            if sample.task == "segment":
                images.append(letterbox_image(img, self.image_size))
                regions.append(None if ref.region is None else letterbox_mask(region_array(ref.region),
                                                                              self.image_size))
            else:
                images.append(self.transform(img))
                regions.append(None)
        return sample, images, regions


def collate_multimodal(items: list[tuple[MultimodalSample, list[Tensor], list[Tensor | None]]]) -> RawBatch:
    """Stack the images of a micro-batch (see :class:`RawBatch`)."""
    samples = [s for s, _, _ in items]
    images = [img for _, imgs, _ in items for img in imgs]
    regions = [r for _, _, rs in items for r in rs]
    owner = [k for k, (_, imgs, _) in enumerate(items) for _ in imgs]
    size = images[0].shape[-1] if images else 1
    return RawBatch(
        samples=samples,
        images=stack(images) if images else torch.zeros(0, 3, size, size),
        regions=stack([torch.zeros(size, size) if r is None else r for r in regions])
        if regions else torch.zeros(0, size, size),
        has_region=torch.tensor([r is not None for r in regions], dtype=torch.bool),
        owner=torch.tensor(owner, dtype=torch.long),
    )
