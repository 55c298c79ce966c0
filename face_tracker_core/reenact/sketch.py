"""68-point landmark sketches (the pix2pix input) and the geometry that places them.

A sketch is the iBUG 300-W landmark layout drawn as polylines on black, one colour per facial
part (jaw, brows, nose, eyes, lips), like face2face-demo. Distinct colours let the generator tell
e.g. the upper lip from the jaw when lines cross.

Coordinates are ``(x, y)`` pixels throughout. Three frames of reference are involved:

* the camera frame the landmarks were found in;
* the **crop** of the target video the generator was trained on (square, ``resolution`` px);
* the **reference shape**: the target's mean landmarks in crop pixels, kept in the model's
  metadata so a different person's landmarks can be moved onto the target's pose and size
  (:func:`align_to_reference`).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

#: iBUG 68 layout: name -> (first index, last index inclusive, closed polyline, BGR colour).
PARTS: Dict[str, Tuple[int, int, bool, Tuple[int, int, int]]] = {
    "jaw": (0, 16, False, (255, 255, 255)),
    "right_brow": (17, 21, False, (0, 255, 255)),
    "left_brow": (22, 26, False, (0, 255, 255)),
    "nose_bridge": (27, 30, False, (255, 255, 0)),
    "nose_lower": (30, 35, True, (255, 255, 0)),
    "right_eye": (36, 41, True, (0, 255, 0)),
    "left_eye": (42, 47, True, (0, 255, 0)),
    "outer_lips": (48, 59, True, (255, 0, 255)),
    "inner_lips": (60, 67, True, (0, 0, 255)),
}

#: points that move little with expression (brows excluded: they move a lot when talking):
#: nose and eye corners. Used to estimate pose/size.
STABLE_POINTS: Tuple[int, ...] = tuple(range(27, 36)) + (36, 39, 42, 45)


def default_thickness(resolution: int) -> int:
    """Line width in pixels for a sketch of side ``resolution`` (2 px at 256)."""
    return max(1, int(round(resolution / 128)))


def render_sketch(landmarks: np.ndarray, size: int | Tuple[int, int], thickness: int | None = None) -> np.ndarray:
    """Draw 68 landmarks as coloured polylines on black.

    Args:
        landmarks: ``(68, 2)`` ``(x, y)`` pixels in the sketch's frame (points outside are clipped
            by the drawing, not an error).
        size: side of a square sketch, or ``(width, height)``.
        thickness: line width in pixels; :func:`default_thickness` of the width when ``None``.

    Returns:
        ``(height, width, 3)`` ``uint8`` BGR image.

    Raises:
        ValueError: ``landmarks`` is not ``(68, 2)`` or holds NaN/inf.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise ValueError("landmarks contain NaN or inf")
    w, h = (size, size) if isinstance(size, (int, np.integer)) else size
    img = np.zeros((int(h), int(w), 3), np.uint8)
    t = default_thickness(int(w)) if thickness is None else int(thickness)
    # Sub-pixel drawing (shift=4) keeps small 128 px sketches from jittering by whole pixels.
    fixed = np.round(pts * 16).astype(np.int32)
    for first, last, closed, colour in PARTS.values():
        cv2.polylines(img, [fixed[first:last + 1].reshape(-1, 1, 2)], closed, colour, t, cv2.LINE_AA, shift=4)
    return img


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``.

    Umeyama's method, without reflection.

    Args:
        src: ``(N, 2)`` points.
        dst: ``(N, 2)`` corresponding points, ``N >= 2``.

    Returns:
        ``(2, 3)`` float64 affine matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s ** 2).sum() / len(src)
    if var_s <= 1e-12:
        raise ValueError("degenerate landmarks (all points coincide)")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points through a ``(2, 3)`` affine matrix."""
    pts = np.asarray(pts, np.float64)
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def align_to_reference(landmarks: np.ndarray, reference: np.ndarray,
                       stable: Sequence[int] = STABLE_POINTS) -> np.ndarray:
    """Move a face's landmarks onto the target's pose and size.

    The similarity transform is estimated on the points that barely move with expression
    (nose, eye corners), so mouth and brow motion survive the alignment instead of being
    averaged away.

    Args:
        landmarks: ``(68, 2)`` driving face in its own frame (pixels).
        reference: ``(68, 2)`` target's mean landmarks in crop pixels.
        stable: indices used to estimate the transform.

    Returns:
        ``(68, 2)`` float32 landmarks in crop pixels.
    """
    idx = list(stable)
    m = similarity_transform(np.asarray(landmarks)[idx], np.asarray(reference)[idx])
    return apply_affine(m, landmarks)


class RelativeMotion:
    """Expression transfer that also keeps the target's face shape.

    Each driving frame is aligned to the reference (:func:`align_to_reference`); a running mean
    of the aligned driving shape stands in for the driver's neutral face, and the output is
    ``reference + (aligned - running_mean)``: the target's shape moved by the driver's motion.

    Args:
        reference: ``(68, 2)`` target's mean landmarks in crop pixels.
        momentum: weight of the old mean per frame (0.98 at 30 fps ~ a 2 s memory).
        warmup: frames averaged with equal weight before the exponential mean takes over.
    """

    def __init__(self, reference: np.ndarray, momentum: float = 0.98, warmup: int = 30) -> None:
        self.reference = np.asarray(reference, np.float32)
        self.momentum = float(momentum)
        self.warmup = int(warmup)
        self._mean: np.ndarray | None = None
        self._count = 0

    def reset(self) -> None:
        """Forget the driver (e.g. when a different person appears)."""
        self._mean, self._count = None, 0

    def __call__(self, landmarks: np.ndarray) -> np.ndarray:
        aligned = align_to_reference(landmarks, self.reference)
        self._count += 1
        if self._mean is None:
            self._mean = aligned.copy()
        else:
            a = max(1.0 - self.momentum, 1.0 / self._count) if self._count <= self.warmup else 1.0 - self.momentum
            self._mean = (1 - a) * self._mean + a * aligned
        return (self.reference + (aligned - self._mean)).astype(np.float32)


def crop_matrix(crop: Sequence[float], resolution: int) -> np.ndarray:
    """Affine ``(2, 3)`` mapping frame pixels into a square crop resized to ``resolution``.

    Args:
        crop: ``(x1, y1, side)`` of the square crop in frame pixels.
        resolution: output side in pixels.
    """
    x1, y1, side = (float(v) for v in crop)
    s = resolution / side
    return np.array([[s, 0.0, -x1 * s], [0.0, s, -y1 * s]])


def crop_frame(bgr: np.ndarray, crop: Sequence[float], resolution: int) -> np.ndarray:
    """Cut the square ``crop`` (``x1, y1, side`` in pixels) out of a frame, resized to ``resolution``.

    The crop is rounded to whole pixels (prepare stores integer crops, so this is exact there);
    parts of it outside the frame replicate the border, so the result is always
    ``(resolution, resolution, 3)``.
    """
    x1, y1, side = (int(round(float(v))) for v in crop)
    h, w = bgr.shape[:2]
    pad = max(0, -x1, -y1, x1 + side - w, y1 + side - h)
    if pad:
        bgr = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    patch = bgr[y1 + pad:y1 + pad + side, x1 + pad:x1 + pad + side]
    interp = cv2.INTER_AREA if side > resolution else cv2.INTER_LINEAR
    return cv2.resize(patch, (resolution, resolution), interpolation=interp)


def landmark_box(landmarks: np.ndarray) -> Tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` bounds of a landmark set in pixels."""
    pts = np.asarray(landmarks)
    return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())
