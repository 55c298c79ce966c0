"""Deterministic, order-independent train/validation/test splits.

Each item (an image name, a person id) goes to a split by a hash of its own name, so the split
does not depend on file order, on which other files exist, or on a random generator: the same
photo lands in the same split on every machine and when the data set grows (the same command
scales from the 417-photo sample to full CelebA).
"""

from __future__ import annotations

import hashlib
from typing import Dict, Iterable, List

__all__ = ["hash_fraction", "split_of", "split_items", "split_people"]


def hash_fraction(key: str, salt: str = "") -> float:
    """Map ``key`` to a uniform-looking number in ``[0, 1)`` (SHA-1 of ``salt:key``)."""
    digest = hashlib.sha1(f"{salt}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_of(key: str, test_frac: float, val_frac: float = 0.0, salt: str = "split-v1") -> str:
    """``"test"`` for the first ``test_frac`` of the hash range, then ``"val"``, else ``"train"``."""
    h = hash_fraction(key, salt)
    if h < test_frac:
        return "test"
    if h < test_frac + val_frac:
        return "val"
    return "train"


def split_items(keys: Iterable[str], test_frac: float = 0.2, val_frac: float = 0.0,
                salt: str = "split-v1") -> Dict[str, List[int]]:
    """Indices of ``keys`` per split: ``{"train": [...], "val": [...], "test": [...]}``."""
    out: Dict[str, List[int]] = {"train": [], "val": [], "test": []}
    for i, k in enumerate(keys):
        out[split_of(k, test_frac, val_frac, salt)].append(i)
    return out


def split_people(people: Iterable[str], holdout_frac: float, salt: str = "people-v1") -> Dict[str, List[str]]:
    """Split person ids into ``{"seen": [...], "heldout": [...]}`` (sorted).

    ``heldout`` people are never shown to any pre-training, so transfer experiments on them measure
    generalisation to new faces.
    """
    out: Dict[str, List[str]] = {"seen": [], "heldout": []}
    for p in sorted(set(people)):
        out["heldout" if hash_fraction(p, salt) < holdout_frac else "seen"].append(p)
    return out
