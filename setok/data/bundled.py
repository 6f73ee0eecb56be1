"""Real photographs shipped inside installed Python packages (scikit-image, scikit-learn, matplotlib), for CI.

The images and their hand-made labels are listed in ``setok/data/samples/labels.yaml``; files are located through
``importlib`` so that no site-packages path is hard-coded.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from torch import Tensor
from torch.utils.data import Dataset

from setok.data.sample import Sample, check_unique_ids
from setok.data.transforms import image_transform, load_tensor
from setok.io import DataError

LABELS_RESOURCE = "samples/labels.yaml"


@dataclass(frozen=True)
class BundledPhoto:
    """One entry of ``labels.yaml``.

    Attributes:
        id: Sample id.
        package: Importable package holding the file.
        path: File path relative to the package's root folder.
        labels: Visible objects, most salient first.
        cls: Class name (one of the file's ``classes``).
        license: License as stated by the package, or ``""``.
    """

    id: str
    package: str
    path: str
    labels: list[str]
    cls: str
    license: str


def package_root(package: str) -> Path:
    """Folder of an installed package, found with importlib.

    Args:
        package: Importable name such as ``"skimage"``.

    Returns:
        The package's root folder.

    Raises:
        DataError: The package is not installed (or is not a regular package).
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{LABELS_RESOURCE}: package {package!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def read_bundled_labels(text: str | None = None) -> tuple[list[str], list[BundledPhoto]]:
    """Parse and check ``labels.yaml``.

    Args:
        text: YAML text; ``None`` reads the file shipped with this package.

    Returns:
        The class vocabulary and the photo entries, in file order.

    Raises:
        DataError: An entry lacks a key, has an empty label list, names an unknown class, or repeats an id.
    """
    where = f"setok/data/{LABELS_RESOURCE}"
    if text is None:
        text = resources.files(__package__).joinpath(LABELS_RESOURCE).read_text(encoding="utf-8")
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DataError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not isinstance(
            data.get("images"), list):
        raise DataError(f"{where}: expected a mapping with lists 'classes' and 'images'")
    classes = [str(c) for c in data["classes"]]
    if len(set(classes)) != len(classes):
        raise DataError(f"{where}: 'classes' has duplicates")
    photos = []
    for n, entry in enumerate(data["images"]):
        keys = ("id", "package", "path", "labels", "class")
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise DataError(f"{where}: images[{n}] needs the keys {', '.join(keys)}")
        labels = entry["labels"]
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
            raise DataError(f"{where}: images[{n}] ({entry['id']}): labels must be a non-empty list of names")
        if entry["class"] not in classes:
            raise DataError(f"{where}: images[{n}] ({entry['id']}): class {entry['class']!r} is not in 'classes'")
        photos.append(BundledPhoto(str(entry["id"]), str(entry["package"]), str(entry["path"]), list(labels),
                                   str(entry["class"]), str(entry.get("license", ""))))
    check_unique_ids([p.id for p in photos], where)
    return classes, photos


class BundledPhotos(Dataset[Sample]):
    """The labelled real photographs of ``labels.yaml``, in file order.

    Attributes:
        classes: The class vocabulary of ``labels.yaml``.
        ids: Photo ids in dataset order.
        paths: Resolved image files.
        photos: The ``labels.yaml`` entries.
    """

    def __init__(self, *, image_size: int, limit: int | None = None, contrastive: bool = True) -> None:
        """Read ``labels.yaml`` and locate every file.

        Args:
            image_size: Side of the square output images.
            limit: Keep only the first ``limit`` photos.
            contrastive: Whether the labels feed the contrastive loss.

        Raises:
            ValueError: ``limit`` is below 1.
            DataError: ``labels.yaml`` is malformed, a package is not installed, or a file is missing.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"BundledPhotos: limit must be >= 1, got {limit}")
        self.classes, photos = read_bundled_labels()
        self.photos: list[BundledPhoto] = photos[:limit]
        self.paths: list[Path] = []
        for p in self.photos:
            path = package_root(p.package) / p.path
            if not path.is_file():
                raise DataError(f"{path}: bundled photo {p.id!r} not found in package {p.package!r}")
            self.paths.append(path)
        self.ids: list[str] = [p.id for p in self.photos]
        self._targets = [self.classes.index(p.cls) for p in self.photos]
        self.contrastive = contrastive
        self.image_size = image_size
        self._transform = image_transform(image_size)
        # The photos are a few files inside installed packages and the transform is deterministic: decode each once.
        self._images: dict[int, Tensor] = {}

    def __len__(self) -> int:
        """Return the number of photos."""
        return len(self.photos)

    def __getitem__(self, index: int) -> Sample:
        """Load photo ``index`` with its labels and class index."""
        if index not in self._images:
            self._images[index] = load_tensor(self.paths[index], self._transform)
        return Sample(
            id=self.ids[index],
            image=self._images[index].clone(),
            labels=list(self.photos[index].labels),
            label=self._targets[index],
            contrastive=self.contrastive,
        )
