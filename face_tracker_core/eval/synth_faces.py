"""Real face cut-outs and scene photos for the synthetic tracking sequences.

Heads are cut from real CelebA photos (``../shared/data/identity/celeba``, around the box the
detector finds, with a soft elliptical edge); backgrounds and occluder patches are real scene
photos (``../shared/data/detection/noface``).
"""

from __future__ import annotations

import glob
import logging
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError
from ..types import BBox

log = logging.getLogger("face_tracker_core.eval.mot")

__all__ = ["FaceSprite", "load_face_sprites", "load_backgrounds", "fit_image"]


@dataclass
class FaceSprite:
    """A head cut from a real photo.

    Attributes:
        image: ``(h, w, 3)`` uint8 BGR crop (face plus hair/neck margin).
        alpha: ``(h, w)`` float32 opacity in [0, 1] (soft ellipse around the head).
        face: ``(x1, y1, x2, y2)`` face box inside ``image``, pixels (the detector's box).
        identity: person id (CelebA identity folder name).
        path: source photo.
    """

    image: np.ndarray
    alpha: np.ndarray
    face: Tuple[float, float, float, float]
    identity: str
    path: str

    @property
    def face_width(self) -> float:
        return self.face[2] - self.face[0]


def _cut_sprite(bgr: np.ndarray, box: BBox, identity: str, path: str) -> Optional[FaceSprite]:
    """Head crop around ``box`` (None when the margin would leave the photo)."""
    fw, fh = box.width, box.height
    cx = (box.x1 + box.x2) / 2
    x1, x2 = cx - 0.9 * fw, cx + 0.9 * fw
    y1, y2 = box.y1 - 0.6 * fh, box.y2 + 0.5 * fh
    h, w = bgr.shape[:2]
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        return None
    ix1, iy1, ix2, iy2 = int(math.floor(x1)), int(math.floor(y1)), int(math.ceil(x2)), int(math.ceil(y2))
    crop = np.ascontiguousarray(bgr[iy1:iy2, ix1:ix2])
    ch, cw = crop.shape[:2]
    alpha = np.zeros((ch, cw), np.float32)
    # Ellipse inscribed in the crop, feathered so the head blends into the new background.
    cv2.ellipse(alpha, (cw // 2, ch // 2), (int(cw * 0.47), int(ch * 0.48)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, 0.06 * fw))
    face = (box.x1 - ix1, box.y1 - iy1, box.x2 - ix1, box.y2 - iy1)
    return FaceSprite(crop, alpha, face, identity, path)


def _calibrate(sprite: FaceSprite, detector, min_score: float,
               sizes: Sequence[float] = (70.0, 110.0)) -> Optional[FaceSprite]:
    """Re-measure the sprite's face box with ``detector`` on the cut-out itself.

    A detector's box on the full source photo and on the cut-out (soft edge, new surroundings,
    new scale) can differ by 20-40 % in size, which alone would push IoU with the ground truth
    near the 0.5 match threshold. So the head is drawn on a plain grey canvas at typical face
    widths, detected, and the boxes mapped back (averaged) become the sprite's face box. ``None``
    when the detector does not find the head at every size.
    """
    fx1, fy1, fx2, fy2 = sprite.face
    found = []
    for size in sizes:
        s = size / (fx2 - fx1)
        ch, cw = sprite.image.shape[:2]
        pad = int(0.5 * max(cw, ch) * s)
        W, H = int(cw * s) + 2 * pad, int(ch * s) + 2 * pad
        m = np.array([[s, 0.0, pad], [0.0, s, pad]])
        face = cv2.warpAffine(sprite.image, m, (W, H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(sprite.alpha, m, (W, H))[..., None]
        canvas = (alpha * face + (1 - alpha) * 128.0).astype(np.uint8)
        expect = np.array([[fx1 * s + pad, fy1 * s + pad, fx2 * s + pad, fy2 * s + pad]])
        dets = [d for d in detector.detect(canvas) if d.score >= min_score]
        if not dets:
            return None
        from ..boxes import iou_matrix
        iou = iou_matrix(expect, np.array([d.box.as_xyxy() for d in dets]))[0]
        if iou.max() < 0.3:
            return None
        b = np.array(dets[int(iou.argmax())].box.as_xyxy())
        found.append((b - pad) / s)
    x1, y1, x2, y2 = np.mean(found, axis=0).tolist()
    return FaceSprite(sprite.image, sprite.alpha, (x1, y1, x2, y2), sprite.identity, sprite.path)


def _sprite_from(path: str, person: str, detector, min_face: int, min_score: float) -> Optional[FaceSprite]:
    """The head of ``path`` when the detector finds exactly one face there (see :func:`load_face_sprites`)."""
    bgr = cv2.imread(path)
    if bgr is None:
        log.warning("%s: unreadable image, skipped", path)
        return None
    # weak boxes (a detector run with a low threshold for ByteTrack) do not count
    dets = [d for d in detector.detect(bgr) if d.score >= min_score]
    if len(dets) != 1 or dets[0].box.width < min_face:
        return None
    sprite = _cut_sprite(bgr, dets[0].box, person, path)
    return _calibrate(sprite, detector, min_score) if sprite is not None else None


def load_face_sprites(data_root: str, count: int, seed: int = 0, min_face: int = 70,
                      detector=None, min_score: float = 0.5) -> List[FaceSprite]:
    """Cut ``count`` heads of *different* people from ``identity/celeba``.

    A photo is used when the detector finds exactly one face there with score >= ``min_score``
    (weaker boxes are not counted), at least ``min_face`` pixels wide, and the head margin fits in
    the photo. People are visited in a seeded random order, one photo each: first up to 3 photos
    per person, then (if heads are still missing) the other photos of the people left.

    The ground-truth face box of a head is the detector's own box on the cut-out (measured on a
    plain canvas at two sizes, see :func:`_calibrate`), carried through the exact scale and shift
    of every frame. So pass the detector being benchmarked: then ground truth and detections share
    one box convention (tight or loose, square or not), and IoU measures tracking, not a
    convention mismatch.

    Args:
        data_root: the shared data folder (holding ``identity/celeba``).
        count: heads wanted.
        seed: order of people/photos.
        min_face: smallest accepted face width in the photo, pixels.
        detector: a :class:`~face_tracker_core.infer.base.FaceDetector`; default Haar.
        min_score: smallest accepted detection score.

    Raises:
        DataError: the folder is missing or holds too few usable photos.
    """
    root = os.path.join(data_root, "identity", "celeba")
    people = sorted(p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p))) if os.path.isdir(root) else []
    if not people:
        raise DataError(f"{root}: no identity folders (see ../shared/data/README.md)")
    if detector is None:
        from ..infer.base import make_detector
        detector = make_detector("haar")
    rng = np.random.default_rng(seed)
    order = [(person, list(rng.permutation(sorted(glob.glob(os.path.join(root, person, "*.jpg"))))))
             for person in rng.permutation(people)]
    out: List[FaceSprite] = []
    used = set()
    # First pass: up to 3 photos per person. Most in-the-wild photos leave no room for the head
    # margin, and how many do depends on the detector's box size, so a second pass tries the
    # remaining photos of the people still without a head (the first pass alone stays as it was).
    for first in (True, False):
        for person, photos in order:
            if person in used:
                continue
            for p in (photos[:3] if first else photos[3:]):
                sprite = _sprite_from(str(p), str(person), detector, min_face, min_score)
                if sprite is not None:
                    out.append(sprite)
                    used.add(person)
                    break
            if len(out) == count:
                return out
    raise DataError(f"{root}: only {len(out)} usable face photos found, {count} needed")


def load_backgrounds(data_root: str, count: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` scene photos without people from ``detection/noface`` (BGR uint8)."""
    folder = os.path.join(data_root, "detection", "noface")
    paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if len(paths) < count:
        raise DataError(f"{folder}: {len(paths)} photos found, {count} needed")
    rng = np.random.default_rng(seed + 1)
    out = []
    for p in rng.permutation(paths)[:count]:
        img = cv2.imread(str(p))
        if img is None:
            raise DataError(f"{p}: unreadable image")
        out.append(img)
    return out


def fit_image(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize + centre-crop ``img`` to exactly ``width`` x ``height``."""
    h, w = img.shape[:2]
    s = max(width / w, height / h)
    r = cv2.resize(img, (max(width, int(round(w * s))), max(height, int(round(h * s)))), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - height) // 2, (r.shape[1] - width) // 2
    return np.ascontiguousarray(r[y0:y0 + height, x0:x0 + width])
