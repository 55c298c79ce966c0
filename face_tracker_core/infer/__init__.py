"""Inference: detectors (``FaceDetector.detect(bgr) -> list[Detection]``) and the tracker."""

from .base import FaceDetector, make_detector, available_backends

__all__ = ["FaceDetector", "make_detector", "available_backends"]
