"""Train/val/test split by *source*, so no frame leaks across splits.

Splitting image files after augmentation would put variants of one photo (and near-identical
consecutive webcam frames) in train and test alike, and the test score would measure memory.
Whole groups of :attr:`Sample.source_id` are assigned to one split instead; see
:mod:`.dataset` for how ids are given (content hash, augmentation provenance, capture sessions).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import defaultdict
from typing import Dict, List, Mapping, Sequence, Tuple

from ..errors import DataError
from ..splits import crc_fraction, pick_split
from .dataset import Sample, write_manifest

log = logging.getLogger(__name__)

SPLIT_NAMES: Tuple[str, ...] = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float], names: Sequence[str]) -> List[float]:
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} fractions for {len(names)} splits {tuple(names)}")
    fr = [float(f) for f in fractions]
    if any(f < 0 for f in fr) or sum(fr) <= 0:
        raise ValueError(f"split fractions {fr} must be >= 0 with a positive sum")
    total = sum(fr)
    return [f / total for f in fr]


def group_by_source(samples: Sequence[Sample]) -> Dict[str, List[Sample]]:
    """``{source_id: [samples...]}``; samples without an id are their own source (their path)."""
    groups: Dict[str, List[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.source_id or "path:" + s.image_path].append(s)
    return dict(groups)


def split_samples(samples: Sequence[Sample], fractions: Sequence[float] = (0.8, 0.1, 0.1),
                  names: Sequence[str] = SPLIT_NAMES, seed: int = 0,
                  method: str = "greedy") -> Dict[str, List[Sample]]:
    """Assign whole source groups to splits.

    Args:
        samples: the dataset (originals and/or augmented variants).
        fractions: wanted share of *images* per split (normalised to sum 1).
        names: split names.
        seed: shuffles the groups (``greedy``) or salts the hash (``hash``).
        method: ``"greedy"``: groups in a seeded random order go to the split furthest below its
            target, which hits the fractions closely and gives every non-empty split at least one
            group when there are enough groups. ``"hash"``: a group's split depends only on its id
            and the seed, so adding new captures later never moves an old frame to another split
            (fractions are met only on average).

    Returns:
        ``{name: [samples...]}`` (each list sorted by image path).

    Raises:
        ValueError: bad fractions or method.
    """
    fr = _check_fractions(fractions, names)
    groups = group_by_source(samples)
    keys = sorted(groups)
    out: Dict[str, List[Sample]] = {n: [] for n in names}
    if method == "hash":
        for k in keys:
            out[pick_split(crc_fraction(f"{seed}|{k}"), fr, names)].extend(groups[k])
    elif method == "greedy":
        rng = random.Random(seed)
        rng.shuffle(keys)
        total = sum(len(g) for g in groups.values())
        targets = [f * total for f in fr]
        counts = [0] * len(names)
        wanted = [i for i, f in enumerate(fr) if f > 0]
        for n, k in enumerate(keys):
            size = len(groups[k])
            empty = [i for i in wanted if counts[i] == 0]
            if empty and len(keys) - n <= len(empty):
                idx = empty[0]  # the last groups go to splits that are still empty
            else:
                idx = max(wanted, key=lambda i: (targets[i] - counts[i]) / max(targets[i], 1e-9))
            out[names[idx]].extend(groups[k])
            counts[idx] += size
    else:
        raise ValueError(f"split method must be 'greedy' or 'hash', not '{method}'")
    for n in names:
        out[n].sort(key=lambda s: s.image_path)
    check_no_leak(out)
    log.info("split: %s", ", ".join(f"{n} {len(v)} images/{len(group_by_source(v))} sources" for n, v in out.items()))
    return out


def find_leaks(splits: Mapping[str, Sequence[Sample]]) -> Dict[str, List[str]]:
    """``{source_id: [split names...]}`` for every source found in more than one split."""
    where: Dict[str, set] = defaultdict(set)
    for name, samples in splits.items():
        for s in samples:
            where[s.source_id or "path:" + s.image_path].add(name)
    return {k: sorted(v) for k, v in where.items() if len(v) > 1}


def check_no_leak(splits: Mapping[str, Sequence[Sample]]) -> None:
    """Raise :class:`DataError` if a source appears in two splits (names up to 10 of them)."""
    leaks = find_leaks(splits)
    if leaks:
        items = ", ".join(f"{k} in {'+'.join(v)}" for k, v in list(leaks.items())[:10])
        raise DataError(f"{len(leaks)} sources leak across splits: {items}")


def write_splits(splits: Mapping[str, Sequence[Sample]], out_dir: str, meta: Mapping = None) -> Dict[str, str]:
    """Write ``<out_dir>/<name>.jsonl`` manifests and ``_split.json`` (counts + ``meta``).

    Returns:
        ``{name: manifest path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {n: write_manifest(v, os.path.join(out_dir, f"{n}.jsonl")) for n, v in splits.items()}
    summary = {n: {"images": len(v), "faces": sum(len(s.boxes) for s in v),
                   "negatives": sum(1 for s in v if s.negative), "sources": len(group_by_source(v))}
               for n, v in splits.items()}
    with open(os.path.join(out_dir, "_split.json"), "w", encoding="utf-8") as fh:
        json.dump({"splits": summary, **dict(meta or {})}, fh, indent=1)
    return paths


def load_splits(out_dir: str, names: Sequence[str] = SPLIT_NAMES) -> Dict[str, List[Sample]]:
    """Read the manifests written by :func:`write_splits` (missing ones are empty lists)."""
    from .dataset import read_manifest

    out = {}
    for n in names:
        p = os.path.join(out_dir, f"{n}.jsonl")
        out[n] = read_manifest(p) if os.path.isfile(p) else []
    if not any(out.values()):
        raise DataError(f"{out_dir}: no split manifests ({', '.join(n + '.jsonl' for n in names)})")
    return out
