"""The ``default`` backend: the multi-face detector shipped in ``face_tracker_core/assets``.

``assets/detector.tflite`` (float16, with ``detector.tflite.json``) is loaded with TFLite; a
broken file raises :class:`~face_tracker_core.errors.ModelLoadError`. Only when the file is
absent altogether (e.g. a stripped install) does ``default`` fall back to OpenCV's Haar cascade,
with a WARNING.
"""

from __future__ import annotations

import logging
import os

from .base import register_backend

log = logging.getLogger(__name__)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")
DEFAULT_MODEL = os.path.join(ASSETS, "detector.tflite")


@register_backend("default")
def make_default(model_path: str = "", **kwargs):
    """The shipped detector (or ``model_path`` when given), Haar if the shipped file is missing."""
    path = model_path or DEFAULT_MODEL
    if os.path.exists(path):
        from .keras_detector import KerasFaceDetector

        det = KerasFaceDetector(model_path=path, **kwargs)
        det.name = "default"
        return det
    from .haar import HaarFaceDetector

    log.warning("default detector %s not found: falling back to OpenCV's Haar cascade "
                "(fewer faces found, more false faces)", path)
    return HaarFaceDetector(**kwargs)
