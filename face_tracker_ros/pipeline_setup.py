"""Detector + tracker set-up shared by the nodes that run :class:`~face_tracker_core.pipeline.FacePipeline`.

One place for the rule that turns ``detector.backend`` / ``detector.model_path`` into a detector
(a model file means the Keras/TFLite loader, an ``.xml`` file an OpenCV cascade) and for the
tracker's options, so the single-camera tracker node and the multi-camera node behave the same.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict

from rclpy.node import Node

from face_tracker_core.errors import ModelLoadError
from face_tracker_core.infer import available_backends, make_detector
from face_tracker_core.pipeline import FacePipeline

from .params import declare


@dataclasses.dataclass
class PipelineParams:
    """Values of the ``detector.*`` and ``tracking.*`` parameters (see :func:`declare_pipeline_params`)."""

    backend: str = "default"
    model_path: str = ""
    score_threshold: float = -1.0
    tracking: bool = True
    min_hits: int = 2
    low_score: float = 0.1
    max_age_s: float = 1.0

    @property
    def score_floor(self) -> float:
        """Lowest detector score kept: with tracking, low-score boxes still extend tracks."""
        return min(self.low_score, self.score_threshold) if self.tracking else self.score_threshold

    def tracker_kwargs(self) -> Dict[str, Any]:
        """Options of :class:`~face_tracker_core.infer.tracker.Tracker`."""
        return {"min_hits": int(self.min_hits), "max_age_s": float(self.max_age_s),
                "high_score": float(self.score_threshold),
                "low_score": float(min(self.low_score, self.score_threshold))}


    def resolved(self) -> "PipelineParams":
        """A copy whose ``score_threshold`` is the effective one (see :func:`effective_threshold`)."""
        thr = effective_threshold(self.backend, self.model_path, self.score_threshold)
        return dataclasses.replace(self, score_threshold=thr)


def declare_pipeline_params(node: Node, read_only: bool = True) -> PipelineParams:
    """Declare ``detector.{backend,model_path,score_threshold}`` and ``tracking.{enabled,min_hits,
    low_score,max_age_s}`` on ``node`` (descriptors with descriptions and ranges) and return their values.

    Args:
        node: the node.
        read_only: declare them read-only (a node that does not apply them at run time).
    """
    ro = read_only
    return PipelineParams(
        backend=declare(node, "detector.backend", "default", "face detector backend",
                        choices=available_backends(), read_only=ro),
        model_path=declare(node, "detector.model_path", "",
                           "model file (.keras/.tflite/SavedModel dir, or an OpenCV cascade .xml); empty = the "
                           "backend's own", read_only=ro),
        score_threshold=declare(node, "detector.score_threshold", -1.0, SCORE_HELP, range=(-1.0, 1.0),
                                read_only=ro),
        tracking=declare(node, "tracking.enabled", True, "follow faces with stable track ids (Detection2D.id)",
                         read_only=ro),
        min_hits=declare(node, "tracking.min_hits", 2, "detections before a track is reported", range=(1, 30),
                         step=1, read_only=ro),
        low_score=declare(node, "tracking.low_score", 0.1,
                          "detections between this and detector.score_threshold only extend existing tracks "
                          "(ByteTrack's second stage); they are never reported on their own", range=(0.0, 1.0),
                          read_only=True),
        max_age_s=declare(node, "tracking.max_age_s", 1.0, "seconds without a detection before a track is removed",
                          range=(0.05, 30.0), read_only=ro))


#: help of ``detector.score_threshold`` (every node that loads a detector declares it so).
SCORE_HELP = ("operating threshold: detections below it are dropped; -1 (the default) = the model's own "
              "calibrated threshold (its sidecar <model>.json, chosen on validation data: 0.53 for the "
              "shipped detector) or the backend's default")


def _resolve(backend: str, model_path: str):
    """``(backend, extra kwargs)`` for ``make_detector`` (the rule in the module docstring)."""
    if not model_path:
        return backend, {}
    if not os.path.exists(model_path):
        raise ModelLoadError(f"{model_path}: no such model file")
    if model_path.endswith(".xml"):
        return "haar", {"cascade_path": model_path}  # an OpenCV cascade
    # a model file means the Keras/TFLite loader
    return ("keras" if backend in ("default", "haar") else backend), {"model_path": model_path}


def effective_threshold(backend: str, model_path: str, score_threshold: float) -> float:
    """``score_threshold``, or for a negative value the model's calibrated one
    (:func:`face_tracker_core.infer.base.calibrated_threshold`).

    Raises:
        ModelLoadError: ``model_path`` does not exist or its sidecar cannot be read.
    """
    if score_threshold >= 0:
        return float(score_threshold)
    from face_tracker_core.infer.base import calibrated_threshold

    backend, kwargs = _resolve(backend, model_path)
    return calibrated_threshold(backend, kwargs.get("model_path", ""))


def load_detector(backend: str, model_path: str, score_threshold: float):
    """The detector for ``backend`` / ``model_path`` (the rule in the module docstring).

    Raises:
        ModelLoadError: ``model_path`` does not exist or does not load.
    """
    backend, kwargs = _resolve(backend, model_path)
    return make_detector(backend, score_threshold=score_threshold, **kwargs)


def build_pipeline(params: PipelineParams, detector) -> FacePipeline:
    """A pipeline around ``detector`` (which several pipelines may share) with its own tracker."""
    return FacePipeline(detector=detector, tracking=params.tracking, tracker_kwargs=params.tracker_kwargs(),
                        min_score=params.score_floor)
