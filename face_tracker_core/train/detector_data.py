"""Training data of the multi-face detector: loading and splits, target assignment, batches
(augmentation: :mod:`.detector_augment`).

Pure numpy + OpenCV (no tf.data) so the same pipeline feeds Keras on TensorFlow *and* on JAX
(the GPU machine has no TensorFlow). Batches are built in worker processes from a seed derived
from ``(seed, epoch, batch index)`` only, so a run is reproducible whatever the number of
workers or their scheduling.

Boxes are ``(x1, y1, x2, y2)`` in pixels everywhere in this module.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing as mp
import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError
from .detector_augment import AugmentConfig, background_window, make_example
from ..eval.detection_split import split_of, unsplit_duplicates

log = logging.getLogger(__name__)

#: max face side (input pixels) handled by each stride; bands overlap so a face near a border
#: trains both levels.
LEVEL_RANGES = {8: (0.0, 64.0), 16: (32.0, 128.0), 32: (64.0, 1e9)}
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".jfif", ".webp")


@dataclasses.dataclass(frozen=True)
class DetSample:
    """One image for the detector.

    Attributes:
        image_path: image file.
        boxes: ``[K, 4]`` float32 face boxes in pixels of the file (K may be 0).
        set_name: detection set (``facemask``...), used for the split and per-set metrics.
        split: ``train`` / ``val`` / ``test``.
    """

    image_path: str
    boxes: np.ndarray
    set_name: str
    split: str


def load_detection_set(folder: str, set_name: Optional[str] = None) -> List[DetSample]:
    """Read one LabelMe folder (images without a JSON are negatives) and split it by file hash.

    Uses the data workflow's importer (:func:`face_tracker_core.data.dataset.import_folder`) when
    available, which reports bad files instead of crashing; a bad file is skipped with a warning.

    Raises:
        DataError: ``folder`` does not exist or holds no image.
    """
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: detection data folder not found")
    set_name = set_name or os.path.basename(os.path.normpath(folder))
    out: List[DetSample] = []
    from ..data.dataset import import_folder

    report = import_folder(folder, negatives=True, check_images=False, group_near_duplicates="none")
    for issue in getattr(report, "errors", []) or []:
        log.warning("%s", issue)
    for s in report.samples:
        boxes = np.array([b.as_xyxy() for b in s.boxes], np.float32).reshape(-1, 4)
        out.append(DetSample(s.image_path, boxes, set_name, split_of(set_name, s.image_path)))
    if not out:
        raise DataError(f"{folder}: no images found")
    out = _unsplit_duplicates(out)
    out.sort(key=lambda d: d.image_path)
    return out


def _unsplit_duplicates(samples: List[DetSample]) -> List[DetSample]:
    """Byte-identical photos share one split (:func:`~face_tracker_core.eval.detection_split.unsplit_duplicates`)."""
    splits = unsplit_duplicates([s.image_path for s in samples], [s.split for s in samples])
    return [s if s.split == sp else DetSample(s.image_path, s.boxes, s.set_name, sp) for s, sp in zip(samples, splits)]


# ----------------------------------------------------------------------------- packing for a GPU host
def pack_samples(samples: Sequence[DetSample], out_dir: str, max_side: int = 640, quality: int = 92) -> str:
    """Write a compact copy (resized JPEGs + ``index.json``) to train on another machine.

    Returns:
        Path of ``index.json``.
    """
    os.makedirs(out_dir, exist_ok=True)
    index = []
    for i, s in enumerate(samples):
        img = cv2.imread(s.image_path, cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: unreadable, skipped", s.image_path)
            continue
        scale = min(1.0, max_side / max(img.shape[:2]))
        if scale < 1.0:
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        name = f"{s.set_name}__{os.path.splitext(os.path.basename(s.image_path))[0]}.jpg"
        cv2.imwrite(os.path.join(out_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        index.append({"image": name, "set": s.set_name, "split": s.split,
                      "boxes": (s.boxes * scale).round(2).tolist()})
    path = os.path.join(out_dir, "index.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(index, fh)
    return path


def load_packed(index_path: str) -> List[DetSample]:
    """Read an ``index.json`` written by :func:`pack_samples`."""
    try:
        with open(index_path, "r", encoding="utf-8") as fh:
            index = json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"{index_path}: cannot read packed index ({exc})") from exc
    base = os.path.dirname(index_path)
    return [DetSample(os.path.join(base, e["image"]), np.array(e["boxes"], np.float32).reshape(-1, 4),
                      e["set"], e["split"]) for e in index]


# ----------------------------------------------------------------------------- targets
def grid_points(height: int, width: int, strides: Sequence[int] = (8, 16, 32)) -> Tuple[np.ndarray, np.ndarray]:
    """Points and strides in the order of :class:`~face_tracker_core.models.box_decoder.BoxDecoder`.

    Args:
        height: network input height, pixels (multiple of the largest stride).
        width: network input width, pixels.

    Returns:
        ``(points [N, 2] float32 (x, y) pixels, strides [N] float32)``.
    """
    pts, strs = [], []
    for s in strides:
        h, w = height // s, width // s
        gy, gx = np.meshgrid((np.arange(h) + 0.5) * s, (np.arange(w) + 0.5) * s, indexing="ij")
        pts.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        strs.append(np.full(h * w, s, np.float32))
    return np.concatenate(pts).astype(np.float32), np.concatenate(strs)


def assign_targets(boxes: np.ndarray, points: np.ndarray, strides: np.ndarray, ignore: Optional[np.ndarray] = None,
                   radius: float = 1.5) -> np.ndarray:
    """Anchor-free target assignment (FCOS centre sampling with size bands per stride).

    A point of stride ``s`` is positive for a face when the face's longest side is in
    ``LEVEL_RANGES[s]`` and the point lies within ``radius * s`` of the face centre in x and y
    (at least the nearest point always does, so even a 5 px face gets a positive). A point claimed
    by several faces takes the smallest. Points near an "ignore" face are excluded from the loss.

    Args:
        boxes: ``[K, 4]`` faces in input pixels.
        points: ``[N, 2]`` point coordinates (from :func:`grid_points`).
        strides: ``[N]`` stride of each point.
        ignore: ``[M, 4]`` faces to ignore (too small or mostly cropped away).

    Returns:
        ``[N, 5]`` float32: channel 0 is 1 (face), 0 (background) or -1 (ignored); channels 1..4
        the assigned box.
    """
    n = len(points)
    out = np.zeros((n, 5), np.float32)
    lo = np.zeros(n, np.float32)
    hi = np.zeros(n, np.float32)
    for s, (a, b) in LEVEL_RANGES.items():
        lo[strides == s], hi[strides == s] = a, b

    def candidates(bx: np.ndarray) -> np.ndarray:
        cx = (bx[:, 0] + bx[:, 2]) / 2
        cy = (bx[:, 1] + bx[:, 3]) / 2
        side = np.maximum(bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1])
        r = radius * strides[:, None]
        near = (np.abs(points[:, :1] - cx[None]) < r) & (np.abs(points[:, 1:] - cy[None]) < r)
        return near & (side[None] >= lo[:, None]) & (side[None] <= hi[:, None])

    if ignore is not None and len(ignore):
        out[candidates(ignore).any(axis=1), 0] = -1.0
    if len(boxes):
        cand = candidates(boxes)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        cost = np.where(cand, area[None], np.inf)
        best = cost.argmin(axis=1)
        pos = np.isfinite(cost[np.arange(n), best])
        out[pos, 0] = 1.0
        out[pos, 1:] = boxes[best[pos]]
    return out


# ----------------------------------------------------------------------------- batches
_CACHE: Dict[str, np.ndarray] = {}
_WORKER_STATE: Dict[str, object] = {}


def _load(path: str) -> np.ndarray:
    img = _CACHE.get(path)
    if img is None:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{path}: not a readable image")
        _CACHE[path] = img
    return img


def _worker_init(samples, weights, cfg):
    _WORKER_STATE.update(samples=samples, weights=weights, cfg=cfg)
    cv2.setNumThreads(1)


def build_batch(seed: Tuple[int, ...], batch_size: int, samples=None, weights=None,
                cfg: Optional[AugmentConfig] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Build one batch from a seed tuple (deterministic).

    Returns:
        ``(images uint8 [B, S, S, 3] BGR, targets float32 [B, N, 5])`` (uint8 to keep the transfer
        from worker processes small).
    """
    samples = samples if samples is not None else _WORKER_STATE["samples"]
    weights = weights if weights is not None else _WORKER_STATE["weights"]
    cfg = cfg or _WORKER_STATE["cfg"]
    rng = np.random.default_rng(list(seed))
    points, strides = grid_points(cfg.size, cfg.size)
    xs = np.zeros((batch_size, cfg.size, cfg.size, 3), np.uint8)
    ys = np.zeros((batch_size, len(points), 5), np.float32)
    for i in range(batch_size):
        k = 4 if rng.random() < cfg.mosaic_prob else 1
        idx = rng.choice(len(samples), size=k, p=weights)
        imgs = [_load(samples[j].image_path) for j in idx]
        bxs = [samples[j].boxes for j in idx]
        if cfg.background_prob > 0:
            for n, j in enumerate(idx):
                if samples[j].set_name in cfg.background_sets and rng.random() < cfg.background_prob:
                    win = background_window(imgs[n], bxs[n], rng)
                    if win is not None:
                        imgs[n], bxs[n] = win, np.zeros((0, 4), np.float32)
        img, faces, ignore = make_example(imgs, bxs, rng, cfg)
        xs[i] = img
        ys[i] = assign_targets(faces, points, strides, ignore)
    return xs, ys


def sampling_weights(samples: Sequence[DetSample], set_weights: Optional[Dict[str, float]] = None) -> np.ndarray:
    """Per-sample probabilities so each set is drawn with its share ``set_weights[set]``."""
    set_weights = set_weights or {}
    counts: Dict[str, int] = {}
    for s in samples:
        counts[s.set_name] = counts.get(s.set_name, 0) + 1
    w = np.array([set_weights.get(s.set_name, 1.0) / counts[s.set_name] for s in samples], np.float64)
    return w / w.sum()


class BatchStream:
    """Deterministic stream of augmented batches, built ahead by a pool of worker processes.

    Batch ``(epoch, i)`` always comes from the seed ``(seed, epoch, i)``.

    Args:
        samples: training images.
        batch_size: images per batch.
        steps: batches per epoch.
        cfg: augmentation.
        seed: base seed.
        workers: processes (0 = build in the calling process).
        set_weights: relative draw rate of each set.
        prefetch: batches built ahead.
        timeout_s: longest wait for one batch from the workers. A worker that dies (killed, out of
            memory) loses the batch it was building, and the pool would wait for it forever: after
            this long training stops with a :class:`DataError` instead of hanging.
    """

    def __init__(self, samples: Sequence[DetSample], batch_size: int, steps: int, cfg: AugmentConfig,
                 seed: int = 0, workers: int = 0, set_weights: Optional[Dict[str, float]] = None,
                 prefetch: int = 8, timeout_s: float = 600.0):
        self.samples = list(samples)
        self.batch_size = int(batch_size)
        self.steps = int(steps)
        self.cfg = cfg
        self.seed = int(seed)
        self.weights = sampling_weights(self.samples, set_weights)
        self.workers = int(workers)
        self.prefetch = int(prefetch)
        self.timeout_s = float(timeout_s)
        self._pool = None
        self._pending: Dict[Tuple[int, int], object] = {}

    def _submit(self, epoch: int, i: int) -> None:
        key = (epoch, i)
        if key in self._pending or self._pool is None:
            return
        self._pending[key] = self._pool.apply_async(build_batch, ((self.seed, epoch, i), self.batch_size))

    def get(self, epoch: int, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """Batch ``i`` of ``epoch`` (``0 <= i < steps``)."""
        if self.workers <= 0:
            return build_batch((self.seed, epoch, i), self.batch_size, self.samples, self.weights, self.cfg)
        if self._pool is None:
            # "spawn", not "fork": forking a process that runs TensorFlow/JAX threads can deadlock.
            ctx = mp.get_context("spawn")
            self._pool = ctx.Pool(self.workers, initializer=_worker_init,
                                  initargs=(self.samples, self.weights, self.cfg))
        for j in range(self.prefetch + 1):
            e, k = divmod(i + j, self.steps)
            self._submit(epoch + e, k)
        try:
            return self._pending.pop((epoch, i)).get(timeout=self.timeout_s)
        except mp.TimeoutError:
            raise DataError(f"batch {i} of epoch {epoch} not built after {self.timeout_s:.0f} s: a batch worker "
                            "died or hangs (out of memory? see the log above)") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            self._pending.clear()
