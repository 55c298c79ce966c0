"""Typed, frozen configuration of the whole perception pipeline and the detector-loading rule.

:class:`PipelineConfig` groups one section per part (detector, tracking, recognition, attributes);
its fields carry the names of the tracker node's parameters (``<section>.<field>``, e.g.
``tracking.min_hits``), so a node turns its parameters into a config with
:meth:`PipelineConfig.from_config` and :func:`face_tracker_core.pipeline_build.build_pipeline`
makes the pipeline from it. Framework-free.

Detector rule: ``detector.model_path`` empty means the backend's own model; a model file means
the Keras/TFLite loader, an ``.xml`` file an OpenCV cascade. ``detector.score_threshold`` below
zero means the model's calibrated threshold (its sidecar ``<model>.json``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Mapping, Optional, Tuple

from .dataclass_config import DataclassConfig
from .errors import DataError, ModelLoadError


@dataclasses.dataclass(frozen=True)
class DetectorConfig(DataclassConfig):
    """``detector.*``: backend name, model file (empty = the backend's own), operating threshold
    (-1 = the model's calibrated one)."""

    backend: str = "default"
    model_path: str = ""
    score_threshold: float = -1.0

    def threshold(self) -> float:
        """The operating threshold in force (see :func:`effective_threshold`)."""
        return effective_threshold(self.backend, self.model_path, self.score_threshold)


@dataclasses.dataclass(frozen=True)
class TrackingConfig(DataclassConfig):
    """``tracking.*``: ByteTrack-style tracker options (``max_age_s`` in seconds) and appearance
    re-identification (``reid``, cosine ``reid_threshold``) with the recognition embedder."""

    enabled: bool = True
    min_hits: int = 2
    low_score: float = 0.1
    max_age_s: float = 1.0
    reid: bool = False
    reid_threshold: float = 0.92

    def score_floor(self, score: float) -> float:
        """Lowest detector score kept for operating threshold ``score``: with tracking, low-score
        boxes still extend tracks."""
        return min(self.low_score, score) if self.enabled else score

    def tracker_kwargs(self, score: float) -> Dict[str, Any]:
        """Options of :class:`~face_tracker_core.infer.tracker.Tracker` at operating threshold ``score``."""
        return {"min_hits": int(self.min_hits), "max_age_s": float(self.max_age_s),
                "high_score": float(score), "low_score": float(min(self.low_score, score))}


@dataclasses.dataclass(frozen=True)
class RecognitionConfig(DataclassConfig):
    """``recognition.*``: embedder (name, weights; empty = shipped), SQLite gallery (empty =
    ``$ROS_HOME/face_tracker/gallery.db``), same-person threshold (0 = the gallery's calibrated
    one), seconds between re-identifications of a track, embedder in its own process, and the
    frames (vectors) a live enrolment collects."""

    enabled: bool = False
    embedder: str = "dlib"
    model_path: str = ""
    gallery_path: str = ""
    threshold: float = 0.0
    refresh_s: float = 2.0
    own_process: bool = True
    enroll_frames: int = 10

    def embedder_kwargs(self) -> Dict[str, Any]:
        """Options of :func:`~face_tracker_core.recognition.make_embedder`."""
        return {"model_path": self.model_path} if self.model_path else {}

    def gallery_file(self) -> str:
        """The gallery file: ``gallery_path`` (``~`` expanded) or ``$ROS_HOME/face_tracker/gallery.db``."""
        if self.gallery_path:
            return os.path.expanduser(self.gallery_path)
        ros_home = os.environ.get("ROS_HOME", os.path.join(os.path.expanduser("~"), ".ros"))
        return os.path.join(ros_home, "face_tracker", "gallery.db")


@dataclasses.dataclass(frozen=True)
class AttributesConfig(DataclassConfig):
    """``attributes.*``: model (empty = shipped), report threshold (probability), seconds between
    updates of a track, most attributes per face."""

    enabled: bool = False
    model_path: str = ""
    threshold: float = 0.5
    refresh_s: float = 3.0
    top_k: int = 5


_SECTIONS = {"detector": DetectorConfig, "tracking": TrackingConfig, "recognition": RecognitionConfig,
             "attributes": AttributesConfig}


@dataclasses.dataclass(frozen=True)
class PipelineConfig(DataclassConfig):
    """The whole pipeline's configuration, one frozen section per part."""

    detector: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)
    recognition: RecognitionConfig = dataclasses.field(default_factory=RecognitionConfig)
    attributes: AttributesConfig = dataclasses.field(default_factory=AttributesConfig)

    def get_config(self) -> Dict[str, Dict[str, Any]]:
        """``{section: {field: value}}`` (plain values; :meth:`from_config` reads it back)."""
        return {name: getattr(self, name).get_config() for name in _SECTIONS}

    @classmethod
    def from_config(cls, config: Optional[Mapping[str, Any]] = None) -> "PipelineConfig":
        """A config from ``{section: {field: value}}`` and/or ``{"section.field": value}`` entries;
        missing fields keep their defaults.

        Raises:
            DataError: an unknown section or field (a ``ValueError``).
        """
        return cls().with_values(config or {})

    def with_values(self, changes: Mapping[str, Any]) -> "PipelineConfig":
        """A copy with ``changes`` (same forms as :meth:`from_config`) applied.

        Raises:
            DataError: an unknown section or field (a ``ValueError``).
        """
        per_section: Dict[str, Dict[str, Any]] = {}
        for key, value in changes.items():
            if isinstance(value, Mapping):
                per_section.setdefault(key, {}).update(value)
            else:
                section, _, field = key.partition(".")
                per_section.setdefault(section, {})[field] = value
        unknown = sorted(set(per_section) - set(_SECTIONS))
        if unknown:
            raise DataError(f"unknown pipeline config sections: {unknown} (known: {sorted(_SECTIONS)})")
        sections = {name: _SECTIONS[name].from_config({**getattr(self, name).get_config(), **values})
                    for name, values in per_section.items()}
        return dataclasses.replace(self, **sections)

    @staticmethod
    def keys() -> Tuple[str, ...]:
        """Every ``"section.field"`` name (the tracker node's parameter names)."""
        return tuple(f"{s}.{f.name}" for s, c in _SECTIONS.items() for f in dataclasses.fields(c))


def resolve_detector(backend: str, model_path: str) -> Tuple[str, Dict[str, Any]]:
    """``(backend, extra kwargs)`` for :func:`~face_tracker_core.infer.make_detector` (the rule in
    the module docstring).

    Raises:
        ModelLoadError: ``model_path`` does not exist.
    """
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
    from .infer.base import calibrated_threshold

    backend, kwargs = resolve_detector(backend, model_path)
    return calibrated_threshold(backend, kwargs.get("model_path", ""))


def load_detector(backend: str, model_path: str, score_threshold: float):
    """The detector for ``backend`` / ``model_path`` (the rule in the module docstring) keeping
    boxes scored ``score_threshold`` and above.

    Raises:
        ModelLoadError: ``model_path`` does not exist or does not load.
    """
    from .infer import make_detector

    backend, kwargs = resolve_detector(backend, model_path)
    return make_detector(backend, score_threshold=score_threshold, **kwargs)
