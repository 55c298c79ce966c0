"""OpenCV Haar cascade face detector (the tutorials' classic, and a baseline)."""

from __future__ import annotations

import os
from typing import List, Optional

import cv2
import numpy as np

from ..errors import ModelLoadError
from ..types import BBox, Detection
from .base import FaceDetector, register_backend


@register_backend("haar")
class HaarFaceDetector(FaceDetector):
    """Viola-Jones frontal face cascade.

    Args:
        cascade_path: cascade XML; defaults to OpenCV's ``haarcascade_frontalface_default.xml``.
        scale_factor: image pyramid step (> 1).
        min_neighbors: overlapping hits needed to keep a face (higher = fewer false faces).
        min_size: smallest face side in pixels.
        max_side: frames larger than this (pixels, longest side) are downscaled first for speed.
        score_threshold: drop detections below this score.
    """

    name = "haar"

    def __init__(
        self,
        cascade_path: Optional[str] = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        max_side: int = 640,
        score_threshold: float = 0.0,
        **_ignored,
    ) -> None:
        path = cascade_path or os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        if not os.path.isfile(path):
            raise ModelLoadError(f"{path}: Haar cascade file not found")
        try:
            self._cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError) as exc:  # OpenCV raises on malformed XML
            raise ModelLoadError(f"{path}: not a valid Haar cascade XML ({exc})") from exc
        if self._cascade.empty():
            raise ModelLoadError(f"{path}: not a valid Haar cascade XML")
        self.path = path
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)
        self.max_side = int(max_side)
        self.score_threshold = float(score_threshold)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        if scale < 1.0:
            gray = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(8, int(self.min_size * scale))
        rects, _levels, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), outputRejectLevels=True)
        out: List[Detection] = []
        for (x, y, bw, bh), wgt in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            # The cascade's last-stage weight is an unbounded margin; squash it into [0, 1].
            score = float(1.0 / (1.0 + np.exp(-float(wgt))))
            if score < self.score_threshold:
                continue
            box = BBox.from_xywh(x / scale, y / scale, bw / scale, bh / scale).clip(w, h)
            out.append(Detection(box=box, score=score))
        out.sort(key=lambda d: d.score, reverse=True)
        return out

    def describe(self) -> str:
        return f"haar({os.path.basename(self.path)}, minNeighbors={self.min_neighbors})"
