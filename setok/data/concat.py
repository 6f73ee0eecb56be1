"""Several datasets as one, with a merged class vocabulary so that ``label`` stays meaningful."""
from __future__ import annotations

import bisect
from collections.abc import Sequence

from torch.utils.data import ConcatDataset, Dataset

from setok.data.sample import Sample


class LabelledConcat(ConcatDataset[Sample]):
    """``torch.utils.data.ConcatDataset`` that also merges ``classes`` and ``ids``.

    ``classes`` is the union of the parts' classes in first-seen order (equal names share one index); each
    sample's ``label`` is re-indexed into it (``-1`` stays ``-1``). ``ids`` are the parts' ids, concatenated;
    they are unique only if the parts' ids do not collide.

    Attributes:
        classes: Merged class names.
        ids: Sample ids in dataset order.
    """

    def __init__(self, datasets: Sequence[Dataset[Sample]]) -> None:
        """Concatenate ``datasets`` (each with ``classes`` and ``ids`` attributes).

        Args:
            datasets: The parts, in order.

        Raises:
            ValueError: ``datasets`` is empty.
        """
        super().__init__(datasets)
        self.classes: list[str] = []
        index: dict[str, int] = {}
        self._remap: list[list[int]] = []
        for d in self.datasets:
            remap = []
            for name in getattr(d, "classes", []):
                if name not in index:
                    index[name] = len(self.classes)
                    self.classes.append(name)
                remap.append(index[name])
            self._remap.append(remap)
        self.ids: list[str] = [i for d in self.datasets for i in d.ids]

    def __getitem__(self, idx: int) -> Sample:
        """Sample ``idx`` with its ``label`` re-indexed into the merged ``classes``."""
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"index {idx} out of range for a dataset of length {len(self)}")
            idx += len(self)
        part = bisect.bisect_right(self.cumulative_sizes, idx)
        local = idx - (self.cumulative_sizes[part - 1] if part else 0)
        sample = self.datasets[part][local]
        if sample["label"] >= 0:
            sample["label"] = self._remap[part][sample["label"]]
        return sample
