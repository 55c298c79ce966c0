"""Training data of the embedders: aligned face crops stored once, and augmented P x K batches.

Pipeline: photos (folder per person) -> our detector (+ retries) -> 5-point landmarks -> aligned
crops stored once as JPEG bytes in an ``.npz`` (:func:`build_crops`), then P x K batches with
on-the-fly augmentation (:func:`make_batches`).

Crops are stored larger than the network input (``store_size`` > ``input_size``, with matching
``store_padding``) so random crops, shifts and zooms never reach the border; the centre
``input_size`` crop equals the inference crop (``input_size``, ``padding``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from ..errors import DataError

log = logging.getLogger(__name__)

#: People splits a crops file may hold: never ``verify``, the verification test people.
CROP_SPLITS = ("train", "val", "identify")
#: Splits ``train_splits`` may name (``val`` joins through ``fold_val``, which also stops validation).
TRAIN_SPLITS = ("train", "identify")


def store_padding(input_size: int, padding: float, store_size: int) -> float:
    """Padding of a ``store_size`` crop whose centre ``input_size`` crop has ``padding``."""
    return ((store_size / input_size) * (1.0 + 2.0 * padding) - 1.0) / 2.0


# ------------------------------------------------------------------------------------------------
# Crops
# ------------------------------------------------------------------------------------------------

def build_crops(root: str, out_path: str, finder=None, splits: Sequence[str] = ("train", "val"),
                input_size: int = 112, padding: float = 0.2, store_size: int = 128,
                cache_dir: Optional[str] = None, quality: int = 95) -> Dict:
    """Detect, align and store the faces of the people of ``splits`` as a compact ``.npz``.

    Photos where the finder sees no face are skipped (and counted); photos with several faces
    use the main one (see :class:`~.faces.FaceFinder`).

    Returns:
        Summary ``{"photos", "faces", "no_face", "several", "people"}``.
    """
    from ..imaging import read_image
    from .align import align_face
    from .dataset import FaceCache, list_identities, split_identities
    from .faces import FaceFinder

    if not splits or set(splits) - set(CROP_SPLITS):
        raise ValueError(f"crop splits must be a non-empty subset of {', '.join(CROP_SPLITS)}; got {list(splits)}")
    people = list_identities(root)
    split = split_identities(list(people))
    cache = FaceCache(finder or FaceFinder("default"), cache_dir)
    pad = store_padding(input_size, padding, store_size)
    blobs, labels, names, tags, paths = [], [], [], [], []
    stats = {"photos": 0, "faces": 0, "no_face": 0, "several": 0}
    for tag in splits:
        for person in split[tag]:
            for path in people[person]:
                stats["photos"] += 1
                e = cache.get(path)
                if not e.get("points5"):
                    stats["no_face"] += 1
                    continue
                stats["several"] += len(e["boxes"]) > 1
                crop = align_face(read_image(path), np.asarray(e["points5"], np.float32), store_size, pad)
                ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
                blobs.append(buf.reshape(-1))
                if person not in names:
                    names.append(person)
                labels.append(names.index(person))
                tags.append(tag)
                paths.append(os.path.relpath(path, root))
                stats["faces"] += 1
    cache.save()
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    np.savez(out_path, jpeg=np.concatenate(blobs) if blobs else np.zeros(0, np.uint8), offsets=offsets,
             label=np.array(labels, np.int32), person=np.array(names), split=np.array(tags),
             path=np.array(paths), meta=np.array(json.dumps({
                 "input_size": input_size, "padding": padding, "store_size": store_size,
                 "store_padding": pad, "finder": cache.finder.describe(), "root": os.path.abspath(root)})))
    stats["people"] = len(names)
    log.info("crops: %s -> %s", stats, out_path)
    return stats


def load_crops(path: str) -> Dict:
    """Decode a crops ``.npz`` into ``{"images": (N, S, S, 3) uint8 BGR, "label", "split", "meta"...}``."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: crops file not found")
    try:
        z = np.load(path, allow_pickle=False)
        jpeg, off = z["jpeg"], z["offsets"]
        imgs = [cv2.imdecode(jpeg[off[i]:off[i + 1]], cv2.IMREAD_COLOR) for i in range(len(off) - 1)]
        out = {"label": z["label"], "split": z["split"], "person": z["person"], "path": z["path"],
               "meta": json.loads(str(z["meta"]))}
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a crops file ({exc})") from exc
    if any(im is None for im in imgs):
        raise DataError(f"{path}: a stored crop does not decode")
    out["images"] = np.stack(imgs) if imgs else np.zeros((0, 1, 1, 3), np.uint8)
    return out


def center_crop(images: np.ndarray, size: int) -> np.ndarray:
    """Centre ``size`` x ``size`` crop of ``(N, S, S, 3)`` images."""
    o = (images.shape[1] - size) // 2
    return images[:, o:o + size, o:o + size]


# ------------------------------------------------------------------------------------------------
# Augmented P x K batches
# ------------------------------------------------------------------------------------------------

def augment(img: np.ndarray, size: int, rng: np.random.Generator, erase: float = 0.0) -> np.ndarray:
    """One random view of a stored crop: rotation +-10 deg, scale 0.9-1.1, shift +-5 %, mirror,
    brightness/contrast/saturation jitter, sometimes grey or low-resolution (blurry webcams), and
    with probability ``erase`` a random rectangle (2-20 % of the area) replaced by noise
    (occlusions: hands, microphones, sunglasses).

    Args:
        img: ``(S, S, 3)`` uint8 stored crop.
        size: output side (the network input).
        erase: random-erasing probability.

    Returns:
        ``(size, size, 3)`` float32 pixel values in [0, 255].
    """
    s = img.shape[0]
    ang = rng.uniform(-10, 10)
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-0.05, 0.05, 2) * size
    m = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), ang, scale)
    m[:, 2] += (size - s) / 2.0 + np.array([tx, ty])
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.2:  # low resolution
        r = int(rng.uniform(0.3, 0.6) * size)
        out = cv2.resize(cv2.resize(out, (r, r), interpolation=cv2.INTER_AREA), (size, size))
    x = out.astype(np.float32)
    if rng.random() < 0.1:
        x[:] = x.mean(axis=2, keepdims=True)
    else:
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.6, 1.4)  # saturation
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.7, 1.3)  # contrast, brightness
    if erase > 0 and rng.random() < erase:
        area = rng.uniform(0.02, 0.2) * size * size
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        eh = int(min(size, np.sqrt(area * aspect)))
        ew = int(min(size, np.sqrt(area / aspect)))
        y0, x0 = int(rng.integers(0, size - eh + 1)), int(rng.integers(0, size - ew + 1))
        x[y0:y0 + eh, x0:x0 + ew] = rng.uniform(0, 255, (eh, ew, 3))
    return np.clip(x, 0, 255)


def make_batches(images: np.ndarray, labels: np.ndarray, size: int, p: int, k: int, steps: int, seed: int,
                 erase: float = 0.0):
    """A Keras ``PyDataset`` of ``steps`` augmented P x K batches per epoch.

    The n-th batch handed out (in any worker thread) is the sampler's n-th P x K draw, augmented with
    ``default_rng([seed, n])``, so a seed fixes the sequence of batches.

    Args:
        images: ``(N, S, S, 3)`` uint8 stored crops.
        labels: ``(N,)`` person ids.
        size: network input side, pixels.
        p / k: people per batch / photos per person.
        steps: batches per epoch.
        seed: sampler and augmentation seed.
        erase: random-erasing probability per view.

    Returns:
        A dataset whose items are ``(x (P*K, size, size, 3) float32 in [0, 255], y (P*K,) int32)``.
    """
    import keras

    from .triplet import PKSampler

    class AugmentedBatches(keras.utils.PyDataset):
        """``steps`` random P x K batches per epoch, augmented in worker threads."""

        def __init__(self):
            super().__init__(workers=8, use_multiprocessing=False, max_queue_size=16)
            self.sampler = PKSampler(labels, p, k, seed)
            self._lock = threading.Lock()
            self._n = 0

        def __len__(self):
            return steps

        def __getitem__(self, i):
            with self._lock:
                idx = self.sampler.batch()
                self._n += 1
                rng = np.random.default_rng([seed, self._n])
            x = np.stack([augment(images[j], size, rng, erase) for j in idx])
            return x, labels[idx].astype(np.int32)

    return AugmentedBatches()


def training_people(data: Dict, train_splits: Sequence[str], fold_val: bool):
    """Which crops are trained on and which are watched.

    Args:
        data: :func:`load_crops` output.
        train_splits: people splits trained on (subset of :data:`TRAIN_SPLITS`).
        fold_val: train on the validation people too (then nothing is watched).

    Returns:
        ``(train, val)`` boolean masks over the crops.

    Raises:
        ValueError: ``train_splits`` empty or naming a split outside :data:`TRAIN_SPLITS`.
    """
    if not train_splits or set(train_splits) - set(TRAIN_SPLITS):
        raise ValueError(f"train_splits must be a non-empty subset of {', '.join(TRAIN_SPLITS)}; "
                         f"got {list(train_splits)}")
    tr = np.isin(data["split"], list(train_splits))
    va = data["split"] == "val"
    if fold_val:
        # Once a recipe is fixed on the validation people, its final run learns from them too
        # (10 more identities for a metric learned from ~130); selection is then impossible, so
        # the schedule's last weights are kept.
        tr, va = tr | va, np.zeros_like(va)
    return tr, va
