"""The RefCOCO training reader loads the downloaded refs pickle without running code."""
import pickle
from pathlib import Path

import pytest

from setok.data.sources.refcoco import read_refcoco
from setok.io import DataError


class _Evil:
    def __reduce__(self):  # what a tampered refs file would hold: a call on load
        return (print, ("pwned",))


def test_a_pickle_that_needs_a_class_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps([{"split": "train", "x": _Evil()}]))
    (tmp_path / "instances.json").write_text('{"images": [], "annotations": []}')
    with pytest.raises(DataError, match=r"refs\(unc\)\.p: cannot read refs pickle \(refusing to load builtins.print"):
        read_refcoco(tmp_path, tmp_path, split="train")


def test_a_plain_refs_pickle_is_read_and_filtered_by_split(tmp_path: Path) -> None:
    refs = [{"split": "val", "ann_id": 1, "image_id": 1, "sentences": [{"sent_id": 7, "sent": "x"}]}]
    (tmp_path / "refs(umd).p").write_bytes(pickle.dumps(refs, protocol=2))
    (tmp_path / "instances.json").write_text('{"images": [], "annotations": []}')
    with pytest.raises(DataError, match="no ref in split 'train'"):
        read_refcoco(tmp_path, tmp_path, split="train")
