"""Deterministic train / val / test split of the detection sets, by file name.

A file's split depends only on its set name and file stem (SHA-1 hash), never on the order of
files on disk, the machine or a random seed, so the held-out photos of the model card stay
held-out for every later training run and on every machine.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Tuple

#: percent of each set held out as (test, val); the rest is train. ``noface`` keeps a larger
#: test share so that "<= 0.05 false faces per image" is measured on 40 scenes, not 25.
SPLIT_PERCENT: Dict[str, Tuple[int, int]] = {
    "facemask": (25, 10),
    "celeba_one_face": (30, 10),
    "noface": (40, 10),
    "dlib_faces": (100, 0),  # too few photos to train on: test only
}
DEFAULT_PERCENT = (25, 10)


def hash_bucket(set_name: str, file_name: str) -> int:
    """Bucket 0..99 of a file: SHA-1 of ``"<set>/<file stem>"``."""
    stem = os.path.splitext(os.path.basename(file_name))[0]
    digest = hashlib.sha1(f"{set_name}/{stem}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100


def split_of(set_name: str, file_name: str) -> str:
    """``"test"``, ``"val"`` or ``"train"`` for one file of one detection set.

    Args:
        set_name: folder name under ``detection/`` (``facemask``, ``celeba_one_face``, ``noface``...).
        file_name: image or annotation file name (only the stem counts).
    """
    test, val = SPLIT_PERCENT.get(set_name, DEFAULT_PERCENT)
    b = hash_bucket(set_name, file_name)
    if b < test:
        return "test"
    if b < test + val:
        return "val"
    return "train"
