"""Facial landmarks from dlib's pretrained shape predictors (``face_recognition_models``, offline).

Shared by recognition (5-point alignment) and reenactment (68-point sketches).
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Dict

import numpy as np

from ..errors import ModelLoadError
from ..types import BBox

_LOCK = threading.Lock()
_CACHE: Dict[str, object] = {}


def load_dlib_model(path: str, factory: Callable[[str], object], kind: str) -> object:
    """The dlib model object in ``path``, loaded once per process and shared.

    Args:
        path: the ``.dat`` file.
        factory: dlib's loader, e.g. ``dlib.shape_predictor``.
        kind: what the file should be, for the error message.

    Raises:
        ModelLoadError: the file is missing or is not a ``kind``.
    """
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: {kind} not found")
    with _LOCK:
        if path not in _CACHE:
            try:
                _CACHE[path] = factory(path)
            except RuntimeError as exc:
                raise ModelLoadError(f"{path}: not a {kind} ({exc})") from exc
        return _CACHE[path]


def _model_path(points: int) -> str:
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelLoadError("face_recognition_models is not installed (pip install face_recognition_models)") from exc
    if points == 68:
        return frm.pose_predictor_model_location()
    if points == 5:
        return frm.pose_predictor_five_point_model_location()
    raise ValueError("points must be 5 or 68")


class LandmarkPredictor:
    """dlib shape predictor for 5 or 68 points.

    Args:
        points: 5 (eye corners + nose base) or 68 (iBUG 300-W layout: jaw 0-16, brows 17-26,
            nose 27-35, eyes 36-47, lips 48-67).
        model_path: override the predictor ``.dat`` file.
    """

    def __init__(self, points: int = 68, model_path: str | None = None) -> None:
        import dlib

        self._predictor = load_dlib_model(model_path or _model_path(points), dlib.shape_predictor,
                                          "dlib shape predictor (landmark model)")
        self.points = points

    def predict(self, bgr: np.ndarray, box: BBox) -> np.ndarray:
        """Landmarks of the face in ``box``.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` frame.
            box: face box in pixels.

        Returns:
            ``(points, 2)`` float32 array of ``(x, y)`` pixels.
        """
        import dlib

        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rect = dlib.rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))
        shape = self._predictor(rgb, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
