"""ImageNet in its class-folder layout: ``root/<wnid>/*.JPEG`` plus the official ``LOC_synset_mapping.txt``."""
from __future__ import annotations

import os
from pathlib import Path

from torch.utils.data import Dataset

from setok.data.sample import Sample, check_unique_ids
from setok.data.transforms import image_transform, load_tensor
from setok.io import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpeg", ".jpg", ".png")


def read_synsets(path: str | Path) -> dict[str, str]:
    """Read ``LOC_synset_mapping.txt`` (lines ``n01440764 tench, Tinca tinca``).

    Args:
        path: The synset mapping file.

    Returns:
        ``wnid -> class name``, the class name being the first comma-separated name.

    Raises:
        DataError: The file is missing, a line has no name, or a wnid appears twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: synset mapping file not found")
    names: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            wnid, _, rest = line.strip().partition(" ")
            name = rest.split(",")[0].strip()
            if not name:
                raise DataError(f"{path}: line {lineno} has no class name after the wnid ({line.strip()!r})")
            if wnid in names:
                raise DataError(f"{path}: line {lineno}: wnid {wnid} appears twice")
            names[wnid] = name
    return names


def _list_images(folder: str, limit: int | None) -> list[str]:
    """Image files under ``folder`` in ImageFolder order (sorted walk, sorted names), at most ``limit``."""
    files: list[str] = []
    for dirpath, _, fnames in sorted(os.walk(folder, followlinks=True)):
        for fname in sorted(fnames):
            if fname.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(dirpath, fname))
                if limit is not None and len(files) >= limit:
                    return files
    return files


class ImageNetFolder(Dataset[Sample]):
    """ImageNet-style class folders, classes in ``torchvision.datasets.ImageFolder`` order.

    Each non-hidden sub-folder of ``root`` is a class (sorted by folder name); its images (``.JPEG``, ``.jpg``,
    ``.jpeg``, ``.png``, any case, searched recursively like ImageFolder) are its samples. Other files are
    ignored. The sample id is the file name without extension (``n01440764_10026``), which is unique in the
    official release; duplicates are an error.

    Attributes:
        classes: Class names, one per class folder (first synset name, or the folder name without ``synsets``).
        wnids: Class folder names, aligned with ``classes``.
        ids: Sample ids in dataset order.
        paths: Image paths in dataset order.
        targets: Class index of each sample.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        image_size: int,
        synsets: str | Path | None = None,
        limit: int | None = None,
        contrastive: bool = False,
    ) -> None:
        """Scan ``root``.

        Args:
            root: Folder holding one sub-folder per class (``n01440764/``, ...).
            image_size: Side of the square output images.
            synsets: Optional ``LOC_synset_mapping.txt`` giving human-readable class names.
            limit: Keep only the first ``limit`` images after sorting by class folder, then path.
            contrastive: Whether the class names feed the contrastive loss (the paper: reconstruction only).

        Raises:
            ValueError: ``limit`` is below 1.
            DataError: ``root`` is missing or has no class folders, a class folder has no images, ``synsets``
                lacks a wnid, or two images share an id.
        """
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: ImageNet root folder not found")
        if limit is not None and limit < 1:
            raise ValueError(f"ImageNetFolder: limit must be >= 1, got {limit}")
        self.wnids: list[str] = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        if not self.wnids:
            raise DataError(f"{root}: no class folders (expected root/<wnid>/*.JPEG)")
        if synsets is not None:
            mapping = read_synsets(synsets)
            missing = [w for w in self.wnids if w not in mapping]
            if missing:
                raise DataError(f"{synsets}: no entry for class folder(s) {', '.join(missing[:5])}"
                                f"{' ...' if len(missing) > 5 else ''} of {root}")
            self.classes: list[str] = [mapping[w] for w in self.wnids]
        else:
            self.classes = list(self.wnids)
        self.paths: list[str] = []
        self.targets: list[int] = []
        for index, wnid in enumerate(self.wnids):
            remaining = None if limit is None else limit - len(self.paths)
            files = _list_images(str(root / wnid), remaining)
            if not files:
                raise DataError(f"{root / wnid}: class folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            self.paths += files
            self.targets += [index] * len(files)
            if limit is not None and len(self.paths) >= limit:
                break
        self.ids: list[str] = [os.path.splitext(os.path.basename(p))[0] for p in self.paths]
        check_unique_ids(self.ids, f"{root} (id = file name without extension)")
        self.contrastive = contrastive
        self.image_size = image_size
        self._transform = image_transform(image_size)

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        """Load image ``index``; its ``labels`` are ``[class name]``, its ``label`` the class index."""
        target = self.targets[index]
        return Sample(
            id=self.ids[index],
            image=load_tensor(self.paths[index], self._transform),
            labels=[self.classes[target]],
            label=target,
            contrastive=self.contrastive,
        )
