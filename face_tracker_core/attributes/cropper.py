"""Finding and cropping the face of a photo for the attribute and transfer models.

A crop is a square around a face box, enlarged by ``margin`` (a fraction of the box width added on
each side, so ``margin=0.4`` gives a square of 1.8 box widths: hair, ears and chin included, which
attributes such as *Bangs*, *Wearing_Hat* or *Double_Chin* need), resized to ``size`` pixels.
Parts outside the image are filled by replicating the border.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import ImageDecodeError
from ..infer.base import FaceDetector
from ..types import BBox, Detection

log = logging.getLogger("face_tracker_core.attributes.crops")

__all__ = ["crop_face", "FaceCropper", "DlibHogDetector", "STATUS_DETECTED", "STATUS_FALLBACK", "STATUS_GIVEN",
           "STATUS_NO_FACE", "STATUS_ERROR"]

STATUS_ERROR = -1     #: unreadable image (message in ``errors.json``)
STATUS_NO_FACE = 0    #: readable, but no face found: not used for training
STATUS_DETECTED = 1   #: box from the main detector
STATUS_FALLBACK = 2   #: box from the fallback detector (dlib HOG)
STATUS_GIVEN = 3      #: box given by the annotations (e.g. ``list_bbox_celeba.txt``)


def crop_face(bgr: np.ndarray, box: BBox, margin: float = 0.4, size: int = 64, color: str = "rgb") -> np.ndarray:
    """Square face crop.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` BGR image.
        box: face box in pixels (corner format).
        margin: fraction of the box width added on every side (the square's side is
            ``width * (1 + 2 * margin)``, centred on the box centre).
        size: output side in pixels.
        color: ``"rgb"`` (3 channels, RGB order, what the models take) or ``"gray"`` (1 channel).

    Returns:
        ``(size, size, 3)`` RGB or ``(size, size, 1)`` gray ``uint8`` array.
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageDecodeError(f"expected an HxWx3 BGR image, got shape {bgr.shape}")
    h, w = bgr.shape[:2]
    cx, cy = box.center
    # The side follows the box *width*: detectors agree on face width far better than on height
    # (forehead/chin conventions: the shipped detector's boxes are ~1.4x taller than the Haar
    # cascade's for the same face, but as wide), so a model trained on one detector's crops sees
    # faces at the same scale with another's.
    side = max(box.width, 1.0) * (1.0 + 2.0 * margin)
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    # Pad only as much as the square leaves the image, then cut: cheaper than padding the frame.
    pl, pt = max(0, -x1), max(0, -y1)
    pr, pb = max(0, x1 + s - w), max(0, y1 + s - h)
    sub = bgr[max(0, y1):min(h, y1 + s), max(0, x1):min(w, x1 + s)]
    if sub.size == 0:  # box entirely outside the image
        sub = np.zeros((1, 1, 3), np.uint8)
        pl = pt = 0
        pr = pb = s - 1
    if pl or pt or pr or pb:
        sub = cv2.copyMakeBorder(sub, pt, pb, pl, pr, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    out = cv2.resize(sub, (size, size), interpolation=interp)
    if color == "gray":
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[..., None]
    if color == "rgb":
        return np.ascontiguousarray(out[..., ::-1])
    raise ValueError(f"color must be 'rgb' or 'gray', got '{color}'")


class DlibHogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (offline, in dlib itself).

    Used as the fallback when the main detector finds no face in a training photo: it finds
    ~97% of CelebA in-the-wild faces where the Haar cascade finds ~91%.

    Args:
        upsample: image doublings before detection (1 finds faces down to ~40 px).
        max_side: frames larger than this (pixels) are downscaled first.
    """

    name = "dlib_hog"

    def __init__(self, upsample: int = 1, max_side: int = 640) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.max_side = int(max_side)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        img = bgr if scale >= 1.0 else cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._det.run(np.ascontiguousarray(img[..., ::-1]), self.upsample, 0.0)
        out = []
        for r, sc in zip(rects, scores):
            box = BBox(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale).clip(w, h)
            if box.area > 0:
                # SVM margin -> [0, 1] for comparability with the other backends.
                out.append(Detection(box=box, score=float(1.0 / (1.0 + np.exp(-sc)))))
        out.sort(key=lambda d: d.score, reverse=True)
        return out

    def describe(self) -> str:
        return f"dlib_hog(upsample={self.upsample})"


class FaceCropper:
    """Finds the main face of a photo and crops it.

    Args:
        detector: a :class:`FaceDetector`, or a backend name for
            :func:`~face_tracker_core.infer.make_detector` (``"default"``: the shipped detector).
        margin: see :func:`crop_face`.
        size: crop side in pixels.
        color: ``"rgb"`` or ``"gray"``.
        fallback: ``"dlib_hog"`` to try dlib's HOG detector when ``detector`` finds nothing,
            ``"none"`` to give up.
        min_face: boxes smaller than this (pixels, longer side) are ignored as false alarms.
    """

    def __init__(self, detector="default", margin: float = 0.4, size: int = 64, color: str = "rgb",
                 fallback: str = "dlib_hog", min_face: int = 20) -> None:
        if color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', got '{color}'")
        if fallback not in ("dlib_hog", "none"):
            raise ValueError(f"fallback must be 'dlib_hog' or 'none', got '{fallback}'")
        self._detector_arg = detector
        self._detector: Optional[FaceDetector] = detector if isinstance(detector, FaceDetector) else None
        self._fallback: Optional[FaceDetector] = None
        self.fallback = fallback
        self.margin = float(margin)
        self.size = int(size)
        self.color = color
        self.min_face = int(min_face)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:  # lazy: crops from given boxes need no detector at all
            from ..infer import make_detector

            self._detector = make_detector(str(self._detector_arg))
        return self._detector

    def config(self) -> dict:
        """What defines the crops (stored beside cached crops and trained models)."""
        return {"margin": self.margin, "size": self.size, "color": self.color,
                "detector": self.detector.describe(), "fallback": self.fallback, "min_face": self.min_face}

    def crop_config(self) -> dict:
        """Just the geometry (what inference needs to reproduce the training crops)."""
        return {"margin": self.margin, "size": self.size, "color": self.color}

    def _main_face(self, dets: Sequence[Detection]) -> Optional[BBox]:
        # In CelebA-like photos the labelled person is the largest face; small hits are often
        # cascade false alarms in hair or background.
        good = [d.box for d in dets if max(d.box.width, d.box.height) >= self.min_face]
        return max(good, key=lambda b: b.area) if good else None

    def locate(self, bgr: np.ndarray) -> Tuple[Optional[BBox], int]:
        """Main face box and how it was found (``STATUS_DETECTED``, ``STATUS_FALLBACK`` or
        ``STATUS_NO_FACE`` with ``None``)."""
        box = self._main_face(self.detector.detect(bgr))
        if box is not None:
            return box, STATUS_DETECTED
        if self.fallback == "dlib_hog":
            if self._fallback is None:
                self._fallback = DlibHogDetector()
            box = self._main_face(self._fallback.detect(bgr))
            if box is not None:
                return box, STATUS_FALLBACK
        return None, STATUS_NO_FACE

    def crop(self, bgr: np.ndarray, box: Optional[BBox] = None) -> Tuple[Optional[np.ndarray], Optional[BBox], int]:
        """Crop the given box, or the main detected face.

        Returns:
            ``(crop or None, box or None, status)``.
        """
        status = STATUS_GIVEN
        if box is None:
            box, status = self.locate(bgr)
            if box is None:
                return None, None, status
        return crop_face(bgr, box, self.margin, self.size, self.color), box, status
