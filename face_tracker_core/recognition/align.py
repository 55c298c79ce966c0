"""5-point face alignment: a similarity transform (rotation, uniform scale, shift) onto a template.

The landmarks come from dlib's 5-point shape predictor (:class:`~face_tracker_core.infer.landmarks.
LandmarkPredictor`, ``points=5``): outer and inner corner of the subject's left eye (points 0, 1,
on the image's right), outer and inner corner of the right eye (2, 3) and the base of the nose (4).

The template is dlib's own mean 5-point face (the one ``dlib.get_face_chip`` uses), so an aligned
crop of ``size=150, padding=0.25`` is what dlib's face-recognition ResNet was trained on, and our
own embedders use the same geometry at a smaller size. Alignment removes in-plane rotation and
scale, which a small network trained on few identities cannot afford to learn itself.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import cv2
import numpy as np

from ..types import BBox

#: dlib's mean face for the 5-point model, in [0, 1] units of a face chip without padding
#: (``dlib/image_transforms/interpolation.h``, ``get_face_chip_details``).
DLIB_MEAN_FACE_5 = np.array([
    [0.8595674595992, 0.2134981538014],
    [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
], dtype=np.float64)


#: Where dlib's frontal (HOG) detector puts its box relative to the 5 landmarks it leads to:
#: box centre = midpoint of (eye centre, nose base) + ``(dx, dy) * iod``, square side ``s * iod``
#: (``iod``: distance between the two eye centres). Measured here on 142 CelebA faces.
DLIB_BOX_FROM_5PTS = (-0.026, 0.077, 2.454)


def dlib_style_box(points5: np.ndarray) -> BBox:
    """The box dlib's detector would draw around a face with these 5 landmarks."""
    p = np.asarray(points5, np.float64)
    eyes = p[:4].mean(0)
    iod = float(np.linalg.norm(p[0:2].mean(0) - p[2:4].mean(0)))
    mid = (eyes + p[4]) / 2.0
    dx, dy, side = DLIB_BOX_FROM_5PTS
    return BBox.from_cxcywh(mid[0] + dx * iod, mid[1] + dy * iod, side * iod, side * iod)


def template(size: int, padding: float = 0.25) -> np.ndarray:
    """Where the 5 landmarks land in a ``size`` x ``size`` aligned crop.

    Args:
        size: crop side, pixels.
        padding: context added around the mean face, as a fraction of its size on each side
            (dlib's convention: 0.25 for its ResNet).

    Returns:
        ``(5, 2)`` float64 pixel coordinates.
    """
    return (DLIB_MEAN_FACE_5 + padding) / (2.0 * padding + 1.0) * float(size)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` points onto ``dst`` (Umeyama, 1991).

    Args:
        src: ``(N, 2)`` points, ``N >= 2``.
        dst: ``(N, 2)`` points.

    Returns:
        ``(2, 3)`` float64 affine matrix for :func:`cv2.warpAffine`.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # no reflections
        e[1, 1] = -1.0
    rot = u @ e @ vt
    var_s = (s ** 2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ e) / var_s) if var_s > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(bgr: np.ndarray, points5: np.ndarray, size: int = 150, padding: float = 0.25) -> np.ndarray:
    """Warp the face with landmarks ``points5`` onto the template.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` image.
        points5: ``(5, 2)`` landmark pixels in dlib's 5-point order (see module docstring).
        size: output side, pixels.
        padding: template padding (see :func:`template`).

    Returns:
        ``(size, size, 3)`` ``uint8`` aligned crop (borders replicated where the face is cut).
    """
    m = similarity_transform(points5, template(size, padding))
    # Downscaling by more than 2x with bilinear sampling aliases; pre-blur like an area filter.
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    src = bgr
    if scale < 0.5:
        k = int(round(0.5 / scale)) | 1
        src = cv2.GaussianBlur(bgr, (k, k), 0)
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class FaceAligner:
    """Landmarks + alignment for boxes from any detector.

    Args:
        size: aligned crop side, pixels.
        padding: template padding.
        predictor: a 5-point :class:`~face_tracker_core.infer.landmarks.LandmarkPredictor`
            (created on first use when ``None``).
        refine: extra landmark passes on the box dlib's detector would have drawn around the
            previous pass's landmarks (:func:`dlib_style_box`). dlib's predictor was trained on
            its own detector's boxes; other detectors draw other boxes (ours: 1.1x wider, 1.5x
            taller, higher), and one refinement cuts the 90th-percentile landmark disagreement
            with dlib-box landmarks from 40 % to 6 % of the eye distance, so alignment does not
            depend on the detector's box convention.
    """

    #: bumped when the landmark procedure changes (face caches are keyed by it)
    VERSION = 2

    def __init__(self, size: int = 150, padding: float = 0.25, predictor=None, refine: int = 1) -> None:
        self.size = int(size)
        self.padding = float(padding)
        self._predictor = predictor
        self.refine = int(refine)

    @property
    def predictor(self):
        if self._predictor is None:
            from ..infer.landmarks import LandmarkPredictor

            self._predictor = LandmarkPredictor(points=5)
        return self._predictor

    def landmarks(self, bgr: np.ndarray, box: BBox) -> np.ndarray:
        """``(5, 2)`` float32 landmark pixels of the face in ``box`` (any detector's box)."""
        p = self.predictor.predict(bgr, box)
        for _ in range(self.refine):
            p = self.predictor.predict(bgr, dlib_style_box(p))
        return p

    def align(self, bgr: np.ndarray, boxes: Sequence[BBox],
              points: Optional[Sequence[Optional[np.ndarray]]] = None) -> np.ndarray:
        """Aligned crops of the faces in ``boxes``.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` frame.
            boxes: face boxes, pixels ``(x1, y1, x2, y2)``.
            points: optional precomputed ``(5, 2)`` landmarks per box (``None`` entries are
                predicted).

        Returns:
            ``(N, size, size, 3)`` ``uint8`` crops, in the order of ``boxes``.
        """
        out: List[np.ndarray] = []
        for i, box in enumerate(boxes):
            p = points[i] if points is not None and points[i] is not None else self.landmarks(bgr, box)
            out.append(align_face(bgr, p, self.size, self.padding))
        if not out:
            return np.zeros((0, self.size, self.size, 3), np.uint8)
        return np.stack(out)
