"""The ``default`` backend: the model shipped in ``face_tracker_core/assets``.

Until a trained default detector is shipped there, ``default`` is OpenCV's Haar cascade and says
so in the log.
"""

from __future__ import annotations

import logging
import os

from .base import register_backend

log = logging.getLogger(__name__)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")


@register_backend("default")
def make_default(**kwargs):
    from .haar import HaarFaceDetector

    log.info("default detector: OpenCV Haar cascade (no trained model shipped in %s)", ASSETS)
    return HaarFaceDetector(**kwargs)
