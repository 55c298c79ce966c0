"""dlib's detectors as backends and baselines: HOG + linear SVM, and the MMOD CNN."""

from __future__ import annotations

import math
import os
from typing import List

import cv2
import numpy as np

from ..errors import ModelLoadError
from ..types import BBox, Detection
from .base import FaceDetector, register_backend


def _squash(margin: float) -> float:
    # dlib scores are unbounded SVM margins (0 = dlib's own decision threshold); map to [0, 1]
    # so that 0.5 is dlib's default operating point.
    return 1.0 / (1.0 + math.exp(-float(margin)))


def _downscaled_rgb(bgr: np.ndarray, max_side: int):
    """``(rgb, scale)``: the frame as RGB, shrunk so its longest side is at most ``max_side``."""
    h, w = bgr.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    img = bgr if scale >= 1.0 else cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), scale


def _detections(found, bgr: np.ndarray, scale: float, threshold: float) -> List[Detection]:
    """``(dlib rectangle, raw margin)`` pairs -> detections in frame pixels, best first."""
    h, w = bgr.shape[:2]
    out = []
    for r, margin in found:
        score = _squash(margin)
        if score < threshold:
            continue
        box = BBox(r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale).clip(w, h)
        out.append(Detection(box=box, score=score))
    out.sort(key=lambda d: d.score, reverse=True)
    return out


@register_backend("dlib_hog")
class DlibHogDetector(FaceDetector):
    """dlib's frontal face HOG detector (faces >= ~80 px, or ~40 px with one upsampling).

    Args:
        upsample: image doublings before detection (finds smaller faces, 4x slower per step).
        adjust_threshold: SVM margin down to which candidates are returned (for PR curves).
        score_threshold: operating threshold on the squashed score (0.5 = dlib's default).
        max_side: frames are downscaled to this longest side first (speed).
    """

    name = "dlib_hog"

    def __init__(self, upsample: int = 1, adjust_threshold: float = -1.0, score_threshold: float = 0.5,
                 max_side: int = 640, **_ignored):
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - dlib-bin is a dependency
            raise ModelLoadError(f"dlib is not installed: {exc}") from exc
        self._det = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.adjust_threshold = float(adjust_threshold)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        rgb, scale = _downscaled_rgb(bgr, self.max_side)
        rects, scores, _ = self._det.run(rgb, self.upsample, self.adjust_threshold)
        return _detections(zip(rects, scores), bgr, scale, self.score_threshold)

    def describe(self) -> str:
        return f"dlib_hog(upsample={self.upsample})"


@register_backend("dlib_mmod")
class DlibMmodDetector(FaceDetector):
    """dlib's MMOD CNN face detector (``face_recognition_models``' weights; slow on CPU).

    Args:
        model_path: ``mmod_human_face_detector.dat``; defaults to the copy in
            ``face_recognition_models``.
        upsample: image doublings.
        score_threshold: operating threshold on the squashed confidence.
        max_side: frames are downscaled to this longest side first.
    """

    name = "dlib_mmod"

    def __init__(self, model_path: str = "", upsample: int = 0, score_threshold: float = 0.5,
                 max_side: int = 640, **_ignored):
        import dlib

        if not model_path:
            try:
                import face_recognition_models

                model_path = face_recognition_models.cnn_face_detector_model_location()
            except ImportError as exc:
                raise ModelLoadError(f"face_recognition_models is not installed: {exc}") from exc
        if not os.path.isfile(model_path):
            raise ModelLoadError(f"{model_path}: MMOD model file not found")
        try:
            self._det = dlib.cnn_face_detection_model_v1(model_path)
        except RuntimeError as exc:
            raise ModelLoadError(f"{model_path}: not a valid dlib MMOD model ({exc})") from exc
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self.max_side = int(max_side)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        rgb, scale = _downscaled_rgb(bgr, self.max_side)
        found = [(d.rect, d.confidence) for d in self._det(rgb, self.upsample)]
        return _detections(found, bgr, scale, self.score_threshold)
