"""Deterministic, order-independent splits by hash: the one helper behind every split of the project.

An item (a file stem, an image name, a person id, a capture source) goes to a split by a hash of
its own name, so its split does not depend on file order, on which other items exist, on the
machine or on a random generator: the same photo lands in the same split everywhere and when a
data set grows. Users:

* detection sets (:mod:`face_tracker_core.eval.detection_split`): :func:`hash_bucket` of
  ``"<set>/<file stem>"`` against a per-set percent table;
* attribute photos and people (:mod:`face_tracker_core.attributes`): :func:`split_items`,
  :func:`split_people` (:func:`hash_fraction` of ``"<salt>:<key>"``);
* identity people (:mod:`face_tracker_core.recognition.dataset`): ordered by :func:`hash_rank`;
* capture sources (:mod:`face_tracker_core.data.split`, method ``hash``): :func:`crc_fraction`.

Each rule's hash is part of its data sets' published splits, so none may change: the test
``test/test_splits.py`` pins the split of every file of ``../shared/data``.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Dict, Iterable, List, Sequence

__all__ = ["hash_fraction", "hash_bucket", "hash_rank", "crc_fraction", "pick_split", "split_of", "split_items",
           "split_people"]


def hash_fraction(key: str, salt: str = "") -> float:
    """Map ``key`` to a uniform-looking number in ``[0, 1)``: first 8 bytes of SHA-1 of ``"salt:key"``."""
    digest = hashlib.sha1(f"{salt}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def hash_bucket(key: str, buckets: int = 100) -> int:
    """Bucket ``0 .. buckets - 1`` of ``key``: its SHA-1's first 8 hex digits modulo ``buckets``."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


def hash_rank(key: str) -> str:
    """Sort key for a deterministic order of names: the SHA-1 hex digest of ``key``."""
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def crc_fraction(key: str) -> float:
    """Map ``key`` to ``[0, 1)`` by CRC-32 (cheap; used for capture-source groups)."""
    return zlib.crc32(key.encode("utf-8")) / 2 ** 32


def pick_split(value: float, shares: Sequence[float], names: Sequence[str], rest: str = "") -> str:
    """Split whose cumulative share first exceeds ``value``.

    Args:
        value: the item's hash value, in the same unit as ``shares`` (a fraction, or a bucket).
        shares: share of each split, in order (fractions of 1, or bucket counts).
        names: split names, same order as ``shares``.
        rest: split of values beyond the last share (default: the last name).

    Returns:
        The split name (the shares are summed in order, so the bounds are exactly those of a
        hand-written ``if value < a: ... elif value < a + b: ...`` chain).
    """
    acc = 0
    for name, share in zip(names, shares):
        acc += share
        if value < acc:
            return name
    return rest or names[-1]


def split_of(key: str, test_frac: float, val_frac: float = 0.0, salt: str = "split-v1") -> str:
    """``"test"`` for the first ``test_frac`` of the hash range, then ``"val"``, else ``"train"``."""
    return pick_split(hash_fraction(key, salt), (test_frac, val_frac), ("test", "val"), "train")


def split_items(keys: Iterable[str], test_frac: float = 0.2, val_frac: float = 0.0,
                salt: str = "split-v1") -> Dict[str, List[int]]:
    """Indices of ``keys`` per split: ``{"train": [...], "val": [...], "test": [...]}`` (ascending)."""
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
