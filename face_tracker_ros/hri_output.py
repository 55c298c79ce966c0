"""REP-155 (ros4hri) face output of the tracker node: ``/humans/faces/tracked`` and per-face topics.

With ``hri.enabled`` the node publishes, for every frame it processes:

* ``/humans/faces/tracked`` (``hri_msgs/IdsList``): the ids of the faces reported in this frame;
* per face, under ``/humans/faces/<id>/``: ``roi`` (``hri_msgs/NormalizedRegionOfInterest2D``),
  ``cropped`` and ``aligned`` (``sensor_msgs/Image``, ``hri.face_width`` x ``hri.face_height``,
  bgr8) and ``landmarks`` (``hri_msgs/FacialLandmarks``) where available.

Conventions (REP-155 and its reference implementation, hri_face_detect): topics in the global
``/humans/faces`` namespace; every message carries the input image's header (acquisition stamp,
camera frame); coordinates normalised to ``[0, 1]`` of the image; QoS reliable, volatile, keep
last 1 (what ros4hri's libhri subscribes with). A face's publishers are created when its track is
first reported and destroyed when it is no longer reported; ``cropped``, ``aligned`` and
``landmarks`` are only computed while someone subscribes to them. Face ids are the tracker's
track ids with ``hri.id_prefix`` (ROS topic names cannot start with a digit); the node then uses
the same ids in ``detections`` so that both can be joined.

``hri_msgs`` is imported only when the output is enabled: off, nothing of this module runs.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Dict, List, Optional, Sequence

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from face_tracker_core.errors import FaceTrackerError
from face_tracker_core.hri_faces import (DETECTOR5_CODES, DLIB5_CODES, align_face_to, check_id_prefix,
                                         crop_face, face_id, landmark_table, normalized_roi)
from face_tracker_core.types import Track

from .conversions import bgr_to_image
from .params import declare

#: REP-155 namespace of faces.
FACES_NS = "/humans/faces"

#: QoS of every REP-155 topic.
HRI_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)


class HriUnavailable(FaceTrackerError):
    """``hri.enabled`` is set but ``hri_msgs`` cannot be imported."""


def declare_hri_params(node: Node) -> None:
    """Declare the ``hri.*`` parameters (read at configure, see :meth:`HriOutput.from_node`)."""
    declare(node, "hri.enabled", False,
            "publish REP-155 (ros4hri) faces: /humans/faces/tracked and /humans/faces/<id>/{roi,cropped,aligned,"
            "landmarks}; needs hri_msgs", read_only=True)
    declare(node, "hri.id_prefix", "f",
            "REP-155 face id = this prefix + track id (also used in Detection2D.id while hri.enabled; a topic "
            "name cannot start with a digit)", read_only=True)
    declare(node, "hri.face_width", 128, "width of cropped/aligned face images, pixels (REP-155: 128)",
            range=(16, 1024), step=1, read_only=True)
    declare(node, "hri.face_height", 128, "height of cropped/aligned face images, pixels (REP-155: 128)",
            range=(16, 1024), step=1, read_only=True)
    declare(node, "hri.aligned", True,
            "compute aligned faces and 5-point landmarks with dlib's shape predictor while someone subscribes "
            "to them (false: neither is published)", read_only=True)


def _import_hri_msgs():
    try:
        from hri_msgs import msg
    except ImportError as exc:
        raise HriUnavailable(
            f"hri.enabled is true but hri_msgs cannot be imported ({exc}): install ros-$ROS_DISTRO-hri-msgs, or run "
            "scripts/setup.sh (builds it into the checkout) and source scripts/env.sh") from exc
    return msg


@dataclasses.dataclass
class _Face:
    roi: object
    cropped: object
    aligned: object
    landmarks: object


class HriOutput:
    """REP-155 publishers of one node (see the module docstring).

    Args:
        node: the node that owns the publishers.
        id_prefix: face id = ``id_prefix + track_id`` (checked by
            :func:`~face_tracker_core.hri_faces.check_id_prefix`).
        size: ``(width, height)`` of cropped/aligned images, pixels.
        aligned: compute aligned faces and dlib 5-point landmarks when subscribed.

    Raises:
        HriUnavailable: no ``hri_msgs``.
        ValueError: a bad ``id_prefix``.
    """

    def __init__(self, node: Node, id_prefix: str = "f", size=(128, 128), aligned: bool = True) -> None:
        self._msgs = _import_hri_msgs()
        self.prefix = check_id_prefix(id_prefix)
        self.size = (int(size[0]), int(size[1]))
        self._node = node
        self._lock = threading.Lock()
        self._faces: Dict[str, _Face] = {}
        self._aligner = None
        self._want_aligned = bool(aligned)
        self._tracked = node.create_publisher(self._msgs.IdsList, f"{FACES_NS}/tracked", HRI_QOS)

    @classmethod
    def from_node(cls, node: Node) -> Optional["HriOutput"]:
        """The output configured by the node's ``hri.*`` parameters, ``None`` when ``hri.enabled`` is false."""
        def value(name):
            return node.get_parameter(name).value

        if not value("hri.enabled"):
            return None
        return cls(node, value("hri.id_prefix"), (value("hri.face_width"), value("hri.face_height")),
                   value("hri.aligned"))

    @property
    def face_ids(self) -> List[str]:
        """Ids of the faces that have publishers now."""
        with self._lock:
            return sorted(self._faces)

    def rename(self, items: Sequence) -> list:
        """Tracks renamed to their face ids (other items unchanged)."""
        return [dataclasses.replace(t, track_id=face_id(t.track_id, self.prefix)) if isinstance(t, Track) else t
                for t in items]

    def publish(self, bgr: np.ndarray, items: Sequence, header) -> list:
        """Publish one frame's faces; returns ``items`` with tracks renamed to their face ids.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` frame the items were found in.
            items: the frame's reported tracks (detections without a track id are not faces of REP-155).
            header: the input image's header (copied onto every message).
        """
        items = self.rename(items)
        tracks = [t for t in items if isinstance(t, Track)]
        with self._lock:
            live = {t.track_id for t in tracks}
            for fid in [f for f in self._faces if f not in live]:
                self._destroy(self._faces.pop(fid))
            for t in tracks:
                face = self._faces.get(t.track_id)
                if face is None:
                    face = self._faces[t.track_id] = self._create(t.track_id)
                self._publish_face(face, bgr, t, header)
            self._tracked.publish(self._msgs.IdsList(header=header, ids=[t.track_id for t in tracks]))
        return items

    def reset(self, header=None) -> None:
        """No face tracked any more (node deactivated): publish an empty list, destroy per-face publishers."""
        with self._lock:
            for face in self._faces.values():
                self._destroy(face)
            self._faces.clear()
            msg = self._msgs.IdsList(ids=[])
            if header is not None:
                msg.header = header
            else:
                msg.header.stamp = self._node.get_clock().now().to_msg()
            self._tracked.publish(msg)

    def close(self) -> None:
        """Destroy every publisher (node cleanup)."""
        with self._lock:
            for face in self._faces.values():
                self._destroy(face)
            self._faces.clear()
            if self._tracked is not None:
                self._node.destroy_publisher(self._tracked)
                self._tracked = None

    # ---------------------------------------------------------------- per face
    def _create(self, fid: str) -> _Face:
        m, ns, node = self._msgs, f"{FACES_NS}/{fid}", self._node
        return _Face(roi=node.create_publisher(m.NormalizedRegionOfInterest2D, f"{ns}/roi", HRI_QOS),
                     cropped=node.create_publisher(Image, f"{ns}/cropped", HRI_QOS),
                     aligned=node.create_publisher(Image, f"{ns}/aligned", HRI_QOS),
                     landmarks=node.create_publisher(m.FacialLandmarks, f"{ns}/landmarks", HRI_QOS))

    def _destroy(self, face: _Face) -> None:
        for pub in (face.roi, face.cropped, face.aligned, face.landmarks):
            self._node.destroy_publisher(pub)

    def _publish_face(self, face: _Face, bgr: np.ndarray, t: Track, header) -> None:
        m = self._msgs
        h, w = bgr.shape[:2]
        xmin, ymin, xmax, ymax = normalized_roi(t.box, w, h)
        face.roi.publish(m.NormalizedRegionOfInterest2D(header=header, xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax,
                                                        c=float(min(max(t.score, 0.0), 1.0))))
        if face.cropped.get_subscription_count() > 0:
            face.cropped.publish(bgr_to_image(crop_face(bgr, t.box, self.size), header))
        want_aligned = face.aligned.get_subscription_count() > 0
        want_landmarks = face.landmarks.get_subscription_count() > 0
        if not (want_aligned or want_landmarks):
            return
        table = None
        if t.landmarks and len(t.landmarks) == len(DETECTOR5_CODES):
            table = landmark_table(t.landmarks, DETECTOR5_CODES, w, h, confidence=max(t.score, 1e-3))
        points5 = self._dlib_points(bgr, t) if self._want_aligned else None
        if points5 is not None:
            table = landmark_table(points5, DLIB5_CODES, w, h, table=table)
            if want_aligned:
                face.aligned.publish(bgr_to_image(align_face_to(bgr, points5, self.size), header))
        if want_landmarks and table is not None:
            face.landmarks.publish(m.FacialLandmarks(
                header=header, height=h, width=w,
                landmarks=[m.NormalizedPointOfInterest2D(x=float(x), y=float(y), c=float(c)) for x, y, c in table]))

    def _dlib_points(self, bgr: np.ndarray, t: Track) -> Optional[np.ndarray]:
        """dlib 5-point landmarks of the face, ``None`` (one warning, then off) where dlib is unavailable."""
        try:
            if self._aligner is None:
                from face_tracker_core.recognition.align import FaceAligner

                self._aligner = FaceAligner(size=min(self.size))
            return self._aligner.landmarks(bgr, t.box)
        except Exception as exc:  # noqa: BLE001 - dlib or its model missing: publish the rest
            self._want_aligned = False
            self._node.get_logger().warning(f"REP-155 aligned faces and landmarks off: {exc}")
            return None
