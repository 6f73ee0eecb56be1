"""Image-text tar shards as img2dataset writes them (``--output_format webdataset``): SemHiTok's COYO-700M subsets and
MidJourney-style data.

``root/00000.tar, 00001.tar, ...``, each holding per sample ``<key>.jpg`` (or .png / .webp / .jpeg), ``<key>.txt``
(the caption) and ``<key>.json`` (metadata). The trainers sample indices with a step-based sampler, so this is a
MAP-style dataset: the tar headers are read once (never extracted) into a compact index of ``(shard, offset, size)``
per image (int32 + 2 x int64 = 20 bytes, plus the caption's offset and size, 16 bytes: ~36 bytes an image, 1.8 GB for
50M images), cached under ``$SETOK_CACHE/shards/`` (default ``~/.cache/setok/shards/``) keyed by the shard names, sizes
and modification times, so a rerun does not re-scan thousands of shards.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from setok.data.sample import Sample
from setok.data.transforms import image_transform
from setok.io import DataError, atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def cache_dir() -> Path:
    return Path(os.environ.get("SETOK_CACHE", Path.home() / ".cache" / "setok")) / "shards"


def scan_shard(path: Path) -> tuple[list[str], list[tuple[int, int]], dict[str, tuple[int, int]]]:
    """Read one tar's headers: image keys in member order, their ``(offset, size)``, and each key's caption.

    Raises:
        DataError: not a tar file, or truncated.
    """
    keys, spans, captions = [], [], {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                key, ext = os.path.splitext(m.name)
                if ext.lower() in IMAGE_SUFFIXES:
                    keys.append(key)
                    spans.append((m.offset_data, m.size))
                elif ext == ".txt":
                    captions[key] = (m.offset_data, m.size)
    except (tarfile.ReadError, EOFError) as e:
        raise DataError(f"{path}: not a readable tar shard ({e})") from None
    return keys, spans, captions


class ImageShards(Dataset[Sample]):
    """Map-style dataset over a folder of img2dataset tar shards.

    Attributes:
        shards: the shard paths, sorted. ids: ``<shard stem>/<key>`` per image, in shard order. classes: [] (no
        class labels: captions are not object labels; see :meth:`caption`).
    """

    classes: list[str] = []

    def __init__(self, root: str | Path, *, image_size: int, limit: int | None = None,
                 contrastive: bool = False) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: shard folder not found")
        self.shards = sorted(root.glob("*.tar"))
        if not self.shards:
            raise DataError(f"{root}: no .tar shards (expected img2dataset's webdataset output: 00000.tar, ...)")
        self.transform = image_transform(image_size)
        self.contrastive = contrastive
        index = self._load_index()
        n = len(index["shard"]) if limit is None else min(limit, len(index["shard"]))
        self.shard = index["shard"][:n]  # (N,) int32
        self.span = index["span"][:n]  # (N, 2) int64 offset, size
        self.caption_span = index["caption"][:n]  # (N, 2) int64, -1 when absent
        self.keys = index["key"][:n]  # (N,) str
        if n == 0:
            raise DataError(f"{root}: the shards hold no images ({', '.join(IMAGE_SUFFIXES)})")
        self.ids = [f"{self.shards[s].stem}/{k}" for s, k in zip(self.shard.tolist(), self.keys.tolist())]
        self._files: dict[int, object] = {}
        self._pid = os.getpid()

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        for p in self.shards:
            st = p.stat()
            h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def _load_index(self) -> dict[str, np.ndarray]:
        cached = cache_dir() / f"{self._fingerprint()}.npz"
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as z:
                return {k: z[k] for k in ("shard", "span", "caption", "key")}
        shard, spans, caps, keys = [], [], [], []
        for i, path in enumerate(self.shards):
            k, s, c = scan_shard(path)
            shard += [i] * len(k)
            spans += s
            caps += [c.get(key, (-1, -1)) for key in k]
            keys += k
        index = {"shard": np.asarray(shard, dtype=np.int32), "span": np.asarray(spans, dtype=np.int64).reshape(-1, 2),
                 "caption": np.asarray(caps, dtype=np.int64).reshape(-1, 2), "key": np.asarray(keys, dtype=str)}
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **index)
        return index

    def __len__(self) -> int:
        return len(self.ids)

    def _read(self, shard: int, offset: int, size: int) -> bytes:
        if self._pid != os.getpid():  # a DataLoader worker: never share file offsets with the parent
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            if len(self._files) >= 8:  # a small pool of open shards per worker
                self._files.pop(next(iter(self._files))).close()
            f = self._files[shard] = open(self.shards[shard], "rb")
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise DataError(f"{self.shards[shard]}: truncated ({size} bytes expected at offset {offset})")
        return data

    def caption(self, index: int) -> str:
        """The sample's ``<key>.txt`` caption ("" when the shard has none)."""
        offset, size = self.caption_span[index].tolist()
        if offset < 0:
            return ""
        return self._read(int(self.shard[index]), offset, size).decode("utf-8").strip()

    def __getitem__(self, index: int) -> Sample:
        shard = int(self.shard[index])
        offset, size = self.span[index].tolist()
        data = self._read(shard, offset, size)
        try:
            with Image.open(io.BytesIO(data)) as im:
                image = self.transform(im)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"{self.shards[shard]}: image {self.keys[index]} cannot be decoded ({e})") from None
        return Sample(id=self.ids[index], image=image, labels=[], label=-1, contrastive=self.contrastive)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

