"""Training data of the multi-face detector: loading, augmentation, target assignment, batches.

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
from ..eval.detection_split import split_of, unsplit_duplicates

log = logging.getLogger(__name__)

#: max face side (input pixels) handled by each stride; bands overlap so a face near a border
#: trains both levels.
LEVEL_RANGES = {8: (0.0, 64.0), 16: (32.0, 128.0), 32: (64.0, 1e9)}
#: faces whose longest side is below this (input pixels) are "ignore": neither face nor background.
MIN_FACE = 4.0
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


# ----------------------------------------------------------------------------- augmentation
def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _paste(canvas, boxes_out, ignore_out, img, boxes, region, rng, min_visible=0.6):
    """Paste ``img`` (already scaled) into ``region`` (x0, y0, x1, y1) of ``canvas`` at a random
    offset, cropping what does not fit; boxes follow, cropped ones become ignore."""
    rx0, ry0, rx1, ry1 = region
    rw, rh = rx1 - rx0, ry1 - ry0
    h, w = img.shape[:2]
    # Offset of the image's top-left corner relative to the region (negative = crop).
    ox = rng.integers(min(0, rw - w), max(0, rw - w) + 1)
    oy = rng.integers(min(0, rh - h), max(0, rh - h) + 1)
    sx0, sy0 = max(0, -ox), max(0, -oy)
    dx0, dy0 = rx0 + max(0, ox), ry0 + max(0, oy)
    cw, ch = min(w - sx0, rw - max(0, ox)), min(h - sy0, rh - max(0, oy))
    if cw <= 0 or ch <= 0:
        return
    canvas[dy0:dy0 + ch, dx0:dx0 + cw] = img[sy0:sy0 + ch, sx0:sx0 + cw]
    if not len(boxes):
        return
    b = boxes.copy()
    b[:, [0, 2]] += dx0 - sx0
    b[:, [1, 3]] += dy0 - sy0
    keep, ign = _clip_boxes(b, (dx0, dy0, dx0 + cw, dy0 + ch), min_visible)
    boxes_out.append(keep)
    ignore_out.append(ign)


def _clip_boxes(b: np.ndarray, region, min_visible: float) -> Tuple[np.ndarray, np.ndarray]:
    """Clip ``(N, 4)`` boxes to ``region`` (x0, y0, x1, y1): ``(faces, ignore)`` — boxes keeping at
    least ``min_visible`` of their area (and ``MIN_FACE`` pixels) stay faces, the others that
    still show more than 5 % become ignore regions, the rest are dropped."""
    x0, y0, x1, y1 = region
    clipped = b.copy()
    clipped[:, [0, 2]] = np.clip(b[:, [0, 2]], x0, x1)
    clipped[:, [1, 3]] = np.clip(b[:, [1, 3]], y0, y1)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    vis = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    frac = vis / np.maximum(area, 1e-6)
    side = np.maximum(clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1])
    keep = (frac >= min_visible) & (side >= MIN_FACE)
    return clipped[keep], clipped[~keep & (frac > 0.05)]


def _photometric(img: np.ndarray, rng: np.random.Generator, grey_prob: float = 0.1) -> np.ndarray:
    """Brightness/contrast/colour cast, sometimes grey (IR/mono cameras, grey negatives), blur or noise."""
    x = img.astype(np.float32)
    if rng.random() < 0.8:
        alpha = rng.uniform(0.6, 1.4)
        beta = rng.uniform(-40, 40)
        gains = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
        x = (x - 128.0) * alpha + 128.0 + beta
        x = x * gains
    if rng.random() < grey_prob:
        g = x @ np.array([0.114, 0.587, 0.299], np.float32)
        x = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.1:
        k = int(rng.choice([3, 5]))
        x = cv2.GaussianBlur(x, (k, k), 0)
    if rng.random() < 0.15:
        x = x + rng.normal(0, rng.uniform(2, 10), size=x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Augmentation of detector training crops.

    Attributes:
        size: square crop side (pixels).
        mosaic_prob: probability of a 2x2 mosaic of four images instead of one.
        scale_range: random zoom relative to "longest side = size" (log-uniform).
        flip_prob: horizontal flip probability.
        photometric: apply :func:`_photometric`.
        background_prob: probability that an image of ``background_sets`` is replaced by a random
            window of it that holds no labelled face (a hard negative: streets, walls, hands, clothes
            around real faces; the no-face scenes alone are few).
        background_sets: sets whose photos have *every* face labelled (only their windows are safe
            negatives; a one-face set's unlabelled bystanders are not).
        occlusion_prob: probability that a crop gets one more head pasted partly over one of its
            faces (:func:`paste_occluding_head`): a copy of a labelled head of the crop, labelled
            as a face itself, covering 15-50 % of the other face, whose label stays its *whole*
            box while at least half of it shows (amodal, as tracking benchmarks score it); a face
            hidden more becomes "ignore". Teaches boxes of faces partly behind other heads, which
            a detector trained on unoccluded labels boxes by their visible part only.
        grey_prob: probability that a crop is turned grey (with ``photometric``). Half of the
            no-face scenes are greyscale photos: without grey faces too, a detector learns that grey
            means "no face" and misses faces from mono/IR cameras.
    """

    size: int = 416
    mosaic_prob: float = 0.5
    scale_range: Tuple[float, float] = (0.5, 1.6)
    flip_prob: float = 0.5
    photometric: bool = True
    background_prob: float = 0.0
    background_sets: Tuple[str, ...] = ("facemask",)
    occlusion_prob: float = 0.0
    grey_prob: float = 0.1


def make_example(images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], rng: np.random.Generator,
                 cfg: AugmentConfig) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented ``size x size`` crop from 1 image (or 4 for a mosaic).

    Returns:
        ``(image uint8 [S, S, 3] BGR, faces [K, 4], ignore [M, 4])`` in crop pixels.
    """
    s = cfg.size
    canvas = np.zeros((s, s, 3), np.uint8)
    out_boxes: List[np.ndarray] = []
    out_ignore: List[np.ndarray] = []
    lo, hi = np.log(cfg.scale_range[0]), np.log(cfg.scale_range[1])
    if len(images) == 4:
        cx = int(rng.uniform(0.3, 0.7) * s)
        cy = int(rng.uniform(0.3, 0.7) * s)
        regions = [(0, 0, cx, cy), (cx, 0, s, cy), (0, cy, cx, s), (cx, cy, s, s)]
        for img, bx, reg in zip(images, boxes, regions):
            # Each quadrant image fills roughly its quadrant at scale 1.
            side = max(reg[2] - reg[0], reg[3] - reg[1])
            scale = side / max(img.shape[:2]) * float(np.exp(rng.uniform(lo, hi)))
            _paste(canvas, out_boxes, out_ignore, _resize(img, scale), bx * scale, reg, rng)
    else:
        img, bx = images[0], boxes[0]
        scale = s / max(img.shape[:2]) * float(np.exp(rng.uniform(lo, hi)))
        _paste(canvas, out_boxes, out_ignore, _resize(img, scale), bx * scale, (0, 0, s, s), rng)
    faces = np.concatenate(out_boxes) if out_boxes else np.zeros((0, 4), np.float32)
    ignore = np.concatenate(out_ignore) if out_ignore else np.zeros((0, 4), np.float32)
    # (no draw at all when off: the batches of configs without it stay what they were)
    if cfg.occlusion_prob > 0 and len(faces) and rng.random() < cfg.occlusion_prob:
        canvas, faces, ignore = paste_occluding_head(canvas, faces, ignore, rng)
    if rng.random() < cfg.flip_prob:
        canvas = canvas[:, ::-1].copy()
        for arr in (faces, ignore):
            if len(arr):
                arr[:, [0, 2]] = s - arr[:, [2, 0]]
    if cfg.photometric:
        canvas = _photometric(canvas, rng, cfg.grey_prob)
    return canvas, faces.astype(np.float32), ignore.astype(np.float32)


def paste_occluding_head(canvas: np.ndarray, faces: np.ndarray, ignore: np.ndarray, rng: np.random.Generator,
                         min_visible: float = 0.5) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste a copy of one labelled head of the crop partly over another face (see
    :attr:`AugmentConfig.occlusion_prob`).

    The source head (the face box grown by 35 % of its width to the sides, 45 % of its height
    above, 25 % below: hair, ears, chin) is scaled to 0.8-1.25x the target face's width, given a
    soft elliptical edge and placed with its face centre 0.85-1.2 face sizes from the target's
    centre in a random direction.

    Args:
        canvas: ``(S, S, 3)`` uint8 crop (not modified).
        faces: ``(K, 4)`` face boxes, corner format, crop pixels; ``K >= 1``.
        ignore: ``(M, 4)`` ignore boxes.
        rng: random source.
        min_visible: a face less visible than this after the paste becomes an ignore box.

    Returns:
        ``(canvas, faces, ignore)``: the new crop; the faces (each unchanged, or moved to ignore
        when hidden too much) plus the pasted one (when at least 60 % of it is inside the crop).
        Unchanged inputs when no face is at least 16 px.
    """
    size_h, size_w = canvas.shape[:2]
    fw, fh = faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]
    big = np.flatnonzero(np.minimum(fw, fh) >= 16)
    if not big.size:
        return canvas, faces, ignore
    t = int(rng.choice(big))
    src = int(rng.choice(big))
    sx1, sy1, sx2, sy2 = faces[src]
    sw, sh = sx2 - sx1, sy2 - sy1
    hx1, hy1 = int(max(0, sx1 - 0.35 * sw)), int(max(0, sy1 - 0.45 * sh))
    hx2, hy2 = int(min(size_w, sx2 + 0.35 * sw)), int(min(size_h, sy2 + 0.25 * sh))
    patch = canvas[hy1:hy2, hx1:hx2]
    scale = fw[t] * rng.uniform(0.8, 1.25) / max(sw, 1.0)
    patch = _resize(patch, scale)
    ph, pw = patch.shape[:2]
    face_p = np.array([sx1 - hx1, sy1 - hy1, sx2 - hx1, sy2 - hy1], np.float64) * scale
    alpha = np.zeros((ph, pw), np.float32)
    cv2.ellipse(alpha, (pw // 2, ph // 2), (max(1, int(pw * 0.48)), max(1, int(ph * 0.48))), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.04 * pw))
    ang = rng.uniform(0.0, 2.0 * np.pi)
    reach = np.hypot(fw[t] * np.cos(ang), fh[t] * np.sin(ang))   # face "radius" in that direction
    dist = rng.uniform(0.85, 1.2) * reach
    tcx, tcy = (faces[t, 0] + faces[t, 2]) / 2, (faces[t, 1] + faces[t, 3]) / 2
    ox = int(round(tcx + dist * np.cos(ang) - (face_p[0] + face_p[2]) / 2))
    oy = int(round(tcy + dist * np.sin(ang) - (face_p[1] + face_p[3]) / 2))
    # Blend the part of the patch that lands inside the crop.
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(size_w, ox + pw), min(size_h, oy + ph)
    if x1 <= x0 or y1 <= y0:
        return canvas, faces, ignore
    out = canvas.copy()
    a = alpha[y0 - oy:y1 - oy, x0 - ox:x1 - ox, None]
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (roi + a * (patch[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32) - roi) + 0.5).astype(np.uint8)
    covered = np.zeros((size_h, size_w), bool)
    covered[y0:y1, x0:x1] = a[..., 0] > 0.5
    keep = np.ones(len(faces), bool)
    for k, (bx1, by1, bx2, by2) in enumerate(faces):
        ix1, iy1, ix2, iy2 = int(max(0, bx1)), int(max(0, by1)), int(np.ceil(min(size_w, bx2))), int(np.ceil(min(size_h, by2)))
        area = max(1, (ix2 - ix1) * (iy2 - iy1))
        keep[k] = 1.0 - covered[iy1:iy2, ix1:ix2].sum() / area >= min_visible
    # The pasted head's own face: labelled when at least 60 % of it is inside the crop.
    pasted_face, pasted_ignore = _clip_boxes((face_p + np.array([ox, oy, ox, oy]))[None], (0, 0, size_w, size_h), 0.6)
    return (out, np.concatenate([faces[keep], pasted_face]).astype(np.float32),
            np.concatenate([ignore.reshape(-1, 4), faces[~keep], pasted_ignore]).astype(np.float32))


def background_window(img: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                      tries: int = 10) -> Optional[np.ndarray]:
    """A random window of ``img`` (25-60 % of its short side) clear of every face box grown by
    25 %, or ``None`` when ``tries`` draws all touch a face."""
    h, w = img.shape[:2]
    grown = boxes.reshape(-1, 4).astype(np.float32).copy()
    if len(grown):
        bw, bh = grown[:, 2] - grown[:, 0], grown[:, 3] - grown[:, 1]
        grown += np.stack([-bw, -bh, bw, bh], 1) * 0.25
    for _ in range(tries):
        side = rng.uniform(0.25, 0.6) * min(h, w)
        ww = int(side * rng.uniform(0.8, 1.25))
        hh = int(side)
        if ww < 16 or hh < 16 or ww > w or hh > h:
            continue
        x0 = int(rng.integers(0, w - ww + 1))
        y0 = int(rng.integers(0, h - hh + 1))
        if len(grown) and np.any((grown[:, 0] < x0 + ww) & (grown[:, 2] > x0) & (grown[:, 1] < y0 + hh)
                                 & (grown[:, 3] > y0)):
            continue
        return img[y0:y0 + hh, x0:x0 + ww]
    return None


def letterbox_example(img: np.ndarray, boxes: np.ndarray, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Deterministic validation input: letterbox to ``size x size`` (top-left aligned, zero pad)."""
    scale = size / max(img.shape[:2])
    r = _resize(img, scale)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:r.shape[0], :r.shape[1]] = r
    return canvas, (boxes * scale).astype(np.float32)


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
