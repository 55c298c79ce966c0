"""Augmentation of detector training crops: mosaics, zoom and placement, hard-negative windows,
occluding heads, photometric changes (grey, blur, noise), and the deterministic validation letterbox.

Every function takes its randomness from the ``numpy`` generator it is given, so a batch stays a
pure function of its seed (:func:`face_tracker_core.train.detector_data.build_batch`). Boxes are
``(x1, y1, x2, y2)`` in pixels.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: faces whose longest side is below this (input pixels) are "ignore": neither face nor background.
MIN_FACE = 4.0

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
