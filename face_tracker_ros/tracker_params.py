"""The tracker node's parameters as one table: name, default, description and constraints.

The ``detector.*``, ``tracking.*``, ``recognition.*`` and ``attributes.*`` names are the fields of
:class:`face_tracker_core.pipeline_config.PipelineConfig`; :func:`pipeline_config` reads them into
one. Writable ones (``read_only`` absent) are applied at run time by the node; every other is
read-only.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from rclpy.node import Node

from face_tracker_core.infer import available_backends
from face_tracker_core.pipeline_config import PipelineConfig

from .params import declare

RO = {"read_only": True}

#: help of ``detector.score_threshold`` (every node that loads a detector declares it so).
SCORE_HELP = ("operating threshold: detections below it are dropped; -1 (the default) = the model's own "
              "calibrated threshold (its sidecar <model>.json, chosen on validation data: 0.53 for the "
              "shipped detector) or the backend's default")

#: ``(name, default, description, options of params.declare)`` of the ``detector.*`` and
#: ``tracking.*`` parameters every node running a detector declares; ``detector.backend``'s
#: choices are added at declaration (the backends installed).
PIPELINE_TABLE: Tuple[Tuple[str, Any, str, Dict[str, Any]], ...] = (
    ("detector.backend", "default", "face detector backend", {}),
    ("detector.model_path", "", "model file (.keras/.tflite/SavedModel dir, or an OpenCV cascade .xml); empty = "
     "the backend's own", {}),
    ("detector.score_threshold", -1.0, SCORE_HELP, {"range": (-1.0, 1.0)}),
    ("tracking.enabled", True, "follow faces with stable track ids (Detection2D.id)", {}),
    ("tracking.min_hits", 2, "detections before a track is reported", {"range": (1, 30), "step": 1}),
    ("tracking.low_score", 0.1, "detections between this and detector.score_threshold only extend existing "
     "tracks (ByteTrack's second stage); they are never reported on their own", {"range": (0.0, 1.0), **RO}),
    ("tracking.max_age_s", 1.0, "seconds without a detection before a track is removed", {"range": (0.05, 30.0)}),
)

#: The tracker node's own wording of two of them (it applies them at run time).
NODE_HELP = {
    "detector.model_path": "model file (.keras/.tflite/SavedModel dir) for the keras backend; changing it at run "
                           "time hot-reloads the model",
    "tracking.enabled": "follow faces with stable track ids (Detection2D.id); turned back on, tracking starts "
                        "afresh (ids keep counting up)",
}

#: The tracker node's parameters after :data:`PIPELINE_TABLE`, in declaration order.
TABLE: Tuple[Tuple[str, Any, str, Dict[str, Any]], ...] = (
    ("tracking.reid", False, "give a face that left (or stayed hidden longer than tracking.max_age_s) and "
     "came back its old track id, by appearance: embeddings of recognition.embedder for new tracks and each "
     "track every ~0.5 s", RO),
    ("tracking.reid_threshold", 0.92, "cosine similarity needed to restore an id (0.92 suits dlib)",
     {"range": (0.0, 1.0), **RO}),
    ("recognition.enabled", False, "name tracked faces from the enrolment gallery (Detection2D results[1])", RO),
    ("recognition.embedder", "dlib", "face embedder", {"choices": ("dlib", "facenet", "siamese"), **RO}),
    ("recognition.model_path", "", "embedder weights (.keras) for facenet/siamese; empty = the shipped ones", RO),
    ("recognition.gallery_path", "", "SQLite gallery file; empty = $ROS_HOME/face_tracker/gallery.db", RO),
    ("recognition.threshold", 0.0, "same-person score; 0 = the gallery's calibrated threshold",
     {"range": (0.0, 1.0), **RO}),
    ("recognition.refresh_s", 2.0, "seconds between re-identifications of one track", {"range": (0.1, 600.0), **RO}),
    ("recognition.own_process", True, "embed faces in a separate process: frames never wait for the embedder "
     "(dlib holds Python's GIL for ~0.2-0.4 s per face); names appear a few frames after a face is confirmed", RO),
    ("recognition.enroll_frames", 10, "frames (vectors) collected when enrolling a person from the enroll topic",
     {"range": (1, 100), "step": 1, **RO}),
    ("attributes.enabled", False, "publish face attributes per track on 'attributes' (and draw the top ones)", RO),
    ("attributes.model_path", "", "attribute model; empty = the shipped one", RO),
    ("attributes.threshold", 0.5, "report attributes above this probability", {"range": (0.0, 1.0), **RO}),
    ("attributes.refresh_s", 3.0, "seconds between attribute updates of one track", {"range": (0.1, 600.0), **RO}),
    ("attributes.top_k", 5, "most attributes reported per face", {"range": (1, 40), "step": 1, **RO}),
    ("image_qos.reliable", False, "subscribe to images with reliable QoS (default: best effort, sensor data)", RO),
    ("image_qos.depth", 1, "image subscription queue depth", {"range": (1, 100), "step": 1, **RO}),
    ("publish_annotated", True, "publish image_annotated", {}),
)

#: Input-watch and diagnostics parameters (the node declares them after the image transport and 3D ones).
HEALTH_TABLE: Tuple[Tuple[str, Any, str, Dict[str, Any]], ...] = (
    ("no_input_warn_s", 3.0, "warn when no image arrived for this many seconds", {"range": (0.5, 600.0)}),
    ("diagnostics_period_s", 1.0, "period of /diagnostics messages", {"range": (0.1, 60.0), **RO}),
    ("diagnostics.max_latency_ms", 100.0, "WARN above this p95 processing latency", {"range": (1.0, 10000.0)}),
    ("diagnostics.min_input_hz", 5.0, "WARN below this input rate while receiving", {"range": (0.0, 1000.0)}),
    ("autostart", True, "configure and activate by itself (plain-node mode); false = wait for lifecycle "
     "transitions", RO),
)


def declare_table(node: Node, table, help: Optional[Dict[str, str]] = None,
                  read_only: bool = False) -> Dict[str, Any]:
    """Declare every parameter of ``table`` on ``node``; returns ``{name: value}``.

    Args:
        node: the node.
        table: rows ``(name, default, description, options)``.
        help: descriptions replacing the table's, by name.
        read_only: declare every one read-only (a node that applies none at run time).
    """
    out = {}
    for name, default, description, options in table:
        if name == "detector.backend":
            options = dict(options, choices=available_backends())
        if read_only:
            options = dict(options, read_only=True)
        out[name] = declare(node, name, default, (help or {}).get(name, description), **options)
    return out


def pipeline_config(values: Dict[str, Any]) -> PipelineConfig:
    """The :class:`PipelineConfig` of the parameter ``values`` (``{name: value}``; other names ignored)."""
    keys = set(PipelineConfig.keys())
    return PipelineConfig.from_config({k: v for k, v in values.items() if k in keys})
