"""Identity photo folders, the deterministic identity split, verification pairs and a face cache.

Layout: ``root/<person>/<photo>.jpg`` (``../shared/data/identity/celeba``: 228 people, <= 15
photos each, in-the-wild, not aligned).

**Identity split** (documented in ``docs/model_cards/embedder.md``): people are ordered by
``sha1("face_tracker:" + folder name)`` and taken in that order: the first ``verify`` (50) people
give the verification pairs (and the threshold calibration), the next ``identify`` (40) the
open-set identification test (first 20 enrolled, next 20 never enrolled), the next ``val`` (10)
the validation pairs watched during training, and all the others (128 for CelebA) are the only
people the trainable embedders ever see. The order depends only on the names, so adding people
later never moves an existing person to another split.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from ..splits import hash_rank

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".jfif")
SPLITS = ("verify", "identify", "val", "train")
DEFAULT_SPLIT_SIZES = {"verify": 50, "identify": 40, "val": 10}


def list_identities(root: str) -> Dict[str, List[str]]:
    """``{person: [photo paths, sorted]}`` for a folder-per-person tree (people with >= 1 photo).

    Raises:
        DataError: ``root`` is not a folder or holds no person folder with images.
    """
    if not os.path.isdir(root):
        raise DataError(f"{root}: not a folder (expected one sub-folder of photos per person)")
    out: Dict[str, List[str]] = {}
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not os.path.isdir(d):
            continue
        photos = sorted(os.path.join(d, f) for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTS))
        if photos:
            out[name] = photos
    if not out:
        raise DataError(f"{root}: no person folders with images ({', '.join(IMAGE_EXTS)})")
    return out


def _rank(name: str) -> str:
    return hash_rank(f"face_tracker:{name}")


def split_identities(names: Sequence[str], sizes: Optional[Dict[str, int]] = None) -> Dict[str, List[str]]:
    """Deterministic person split (see module docstring).

    Args:
        names: person ids.
        sizes: people per held-out split (``verify``, ``identify``, ``val``); ``train`` gets the rest.
            Scaled down proportionally when there are fewer than twice as many people.

    Returns:
        ``{"verify": [...], "identify": [...], "val": [...], "train": [...]}`` (each sorted by rank).
    """
    sizes = dict(DEFAULT_SPLIT_SIZES if sizes is None else sizes)
    order = sorted(names, key=_rank)
    held = sum(sizes.values())
    if held * 2 > len(order):  # small sets: keep half for training
        f = len(order) / (2.0 * held)
        sizes = {k: max(1, int(v * f)) for k, v in sizes.items()}
    out, i = {}, 0
    for k in ("verify", "identify", "val"):
        out[k] = order[i:i + sizes.get(k, 0)]
        i += sizes.get(k, 0)
    out["train"] = order[i:]
    return out


@dataclass(frozen=True)
class Pair:
    """One verification pair (paths of two photos), ``same`` person or not, LFW-style ``fold``."""

    a: str
    b: str
    same: bool
    fold: int


def make_pairs(people: Dict[str, List[str]], folds: int = 10, pos_per_fold: int = 300,
               neg_per_fold: int = 300, seed: int = 0) -> List[Pair]:
    """LFW-style pairs: people are dealt round-robin to ``folds`` folds (no person in two folds),
    then each fold draws positive pairs (two photos of one person) and negative pairs (two people of
    that fold) uniformly without repetition.

    Args:
        people: ``{person: photos}`` (e.g. the ``verify`` split).
        folds: number of folds (10 as in LFW).
        pos_per_fold, neg_per_fold: pairs per fold (fewer when the fold has fewer).
        seed: RNG seed (the pairs are a pure function of the arguments).
    """
    names = sorted(people, key=_rank)
    fold_people: List[List[str]] = [names[i::folds] for i in range(folds)]
    rng = random.Random(seed)
    out: List[Pair] = []
    for k, members in enumerate(fold_people):
        pos = [(a, b) for n in members for a, b in itertools.combinations(people[n], 2)]
        rng.shuffle(pos)
        pos = pos[:pos_per_fold]
        neg = set()
        pairs_of_people = list(itertools.combinations(members, 2))
        tries = 0
        while len(neg) < neg_per_fold and pairs_of_people and tries < 100 * neg_per_fold:
            tries += 1
            p, q = rng.choice(pairs_of_people)
            neg.add((rng.choice(people[p]), rng.choice(people[q])))
        out += [Pair(a, b, True, k) for a, b in pos]
        out += [Pair(a, b, False, k) for a, b in sorted(neg)]
    return out


def save_pairs(pairs: Sequence[Pair], path: str) -> None:
    """CSV ``fold,same,a,b`` (paths as given)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "same", "a", "b"])
        for p in pairs:
            w.writerow([p.fold, int(p.same), p.a, p.b])


def load_pairs(path: str) -> List[Pair]:
    """Read a CSV written by :func:`save_pairs`.

    Raises:
        DataError: missing file or malformed row (file and line in the message).
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: pairs file not found")
    out = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f), 1):
            if i == 1 and row and row[0] == "fold":
                continue
            try:
                fold, same, a, b = row
                out.append(Pair(a, b, bool(int(same)), int(fold)))
            except ValueError as exc:
                raise DataError(f"{path}:{i}: expected 'fold,same,a,b' ({exc})") from exc
    return out


# ------------------------------------------------------------------------------------------------
# Face cache: detection and landmarks are the slow, embedder-independent part; do them once.
# ------------------------------------------------------------------------------------------------

def default_cache_dir() -> str:
    """``$FACE_TRACKER_CACHE`` or ``runs/cache/recognition`` under the current folder."""
    return os.environ.get("FACE_TRACKER_CACHE", os.path.join("runs", "cache", "recognition"))


class FaceCache:
    """Detections (all boxes, main face first) and 5-point landmarks (main face) per photo, in JSON.

    The file name carries the finder's description, so switching the ``default`` detector gives
    a fresh cache instead of stale boxes. Entries are keyed by absolute path + size + mtime.

    Args:
        finder: a :class:`~face_tracker_core.recognition.faces.FaceFinder`.
        cache_dir: folder for the JSON file (``None``: :func:`default_cache_dir`).
    """

    def __init__(self, finder, cache_dir: Optional[str] = None) -> None:
        self.finder = finder
        from ..infer.base import weights_signature
        from .align import FaceAligner

        # The detector's weights are part of the key: a retrained model under the same file name and
        # threshold must not reuse the old model's boxes.
        tag = hashlib.sha1(f"{finder.describe()}|{weights_signature(finder.detector)}|finder-v{finder.VERSION}|"
                           f"landmarks-v{FaceAligner.VERSION}".encode()).hexdigest()[:10]
        self.path = os.path.join(cache_dir or default_cache_dir(), f"faces-{tag}.json")
        self._data: Dict[str, dict] = {}
        self._dirty = 0
        self._aligner = None
        if os.path.isfile(self.path):
            try:
                with open(self.path) as f:
                    self._data = json.load(f)
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable face cache, starting afresh (%s)", self.path, exc)

    @staticmethod
    def _key(path: str) -> str:
        st = os.stat(path)
        return f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}"

    def get(self, path: str, bgr: Optional[np.ndarray] = None) -> dict:
        """``{"boxes": [[x1,y1,x2,y2],...], "scores": [...], "attempt": str, "points5": [[x,y]]*5 | None}``.

        Unreadable images give ``{"error": message}`` (reported by the caller, never raised).
        """
        key = self._key(path)
        if key in self._data:
            return self._data[key]
        from ..imaging import read_image

        try:
            img = read_image(path) if bgr is None else bgr
        except Exception as exc:  # one bad photo must not stop a batch
            entry = {"error": str(exc)}
        else:
            found = self.finder.find(img)
            entry = {"boxes": [list(map(float, d.box.as_xyxy())) for d in found.detections],
                     "scores": [float(d.score) for d in found.detections], "attempt": found.attempt,
                     "points5": None}
            if found.main is not None:
                if self._aligner is None:
                    from .align import FaceAligner

                    self._aligner = FaceAligner()
                entry["points5"] = self._aligner.landmarks(img, found.main.box).tolist()
        self._data[key] = entry
        self._dirty += 1
        if self._dirty >= 50:
            self.save()
        return entry

    def save(self) -> None:
        if not self._dirty:
            return
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self._data, f)
        os.replace(tmp, self.path)
        self._dirty = 0

    def fill(self, paths: Sequence[str]) -> Dict[str, dict]:
        """Entries for ``paths`` (computing the missing ones), saved to disk."""
        t0, out = time.time(), {}
        for i, p in enumerate(paths):
            out[p] = self.get(p)
            if (i + 1) % 200 == 0:
                log.info("faces: %d/%d photos (%.0f s)", i + 1, len(paths), time.time() - t0)
        self.save()
        return out


def aligned_crops(entries: Dict[str, dict], size: int, padding: float) -> Tuple[np.ndarray, List[str]]:
    """Aligned crops of the main face of every photo that has one.

    Returns:
        ``(crops (N, size, size, 3) uint8 BGR, paths (N))``.
    """
    from ..imaging import read_image
    from .align import align_face

    crops, kept = [], []
    for p, e in entries.items():
        if not e.get("points5"):
            continue
        crops.append(align_face(read_image(p), np.asarray(e["points5"], np.float32), size, padding))
        kept.append(p)
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8), []
    return np.stack(crops), kept
