"""The one place where core dataclasses and images meet ROS messages.

* ``sensor_msgs/Image`` <-> BGR ``uint8`` arrays (cv_bridge where installed, else our own
  validated numpy conversion from :mod:`face_tracker_core.imaging`; PyPI's ``cv-bridge`` is a
  broken ROS 1 copy and is never used).
* :class:`~face_tracker_core.types.Detection` / :class:`~face_tracker_core.types.Track` ->
  ``vision_msgs/Detection2DArray`` (pixel box centre/size, hypotheses, ``id`` = track id).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis,
                             ObjectHypothesisWithPose)

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.imaging import SUPPORTED_ENCODINGS, check_raw, decode_raw, encode_bgr
from face_tracker_core.types import BBox, Detection, Track

try:  # the real cv_bridge (ROS install); validated input only, see image_to_bgr
    from cv_bridge import CvBridge as _CvBridge  # type: ignore

    _BRIDGE = _CvBridge()
    # PyPI's ROS 1 copy imports but cannot convert ROS 2 messages: use it only if it works.
    _BRIDGE.cv2_to_imgmsg(np.zeros((2, 2, 3), np.uint8), "bgr8")
except Exception:  # noqa: BLE001 - any failure means "not usable"
    _BRIDGE = None

#: class_id of the face hypothesis in every Detection2D.
FACE_CLASS = "face"


def image_to_bgr(msg: Image) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` to a BGR ``uint8`` array.

    Args:
        msg: image in any of :data:`face_tracker_core.imaging.SUPPORTED_ENCODINGS`.

    Returns:
        ``(height, width, 3)`` ``uint8`` BGR array.

    Raises:
        ImageDecodeError: zero size, ``step`` too small, short data, unknown or depth encoding.
    """
    if _BRIDGE is None:
        return decode_raw(msg.data, msg.height, msg.width, msg.encoding, msg.step, bool(msg.is_bigendian))
    # Validate first: one clear message per kind of bad frame, whatever cv_bridge would say.
    check_raw(len(msg.data), msg.height, msg.width, msg.encoding, msg.step)
    try:
        return _BRIDGE.imgmsg_to_cv2(msg, desired_encoding="bgr8")
    except Exception as exc:  # noqa: BLE001 - cv_bridge raises several types
        raise ImageDecodeError(f"cv_bridge could not convert '{msg.encoding}': {exc}") from exc


def bgr_to_image(bgr: np.ndarray, header, encoding: str = "bgr8") -> Image:
    """Build a ``sensor_msgs/Image`` from a BGR array, with ``header`` copied (same stamp/frame)."""
    data, step = encode_bgr(bgr, encoding)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(bgr.shape[0]), int(bgr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(step)
    msg.data = data
    return msg


def _hypothesis(class_id: str, score: float) -> ObjectHypothesisWithPose:
    h = ObjectHypothesisWithPose()
    h.hypothesis = ObjectHypothesis(class_id=class_id, score=float(score))
    return h


def bbox_to_msg(box: BBox) -> BoundingBox2D:
    """Pixel box -> ``BoundingBox2D`` (centre + size, pixels, theta 0)."""
    b = BoundingBox2D()
    cx, cy = box.center
    b.center.position.x, b.center.position.y = float(cx), float(cy)
    b.center.theta = 0.0
    b.size_x, b.size_y = float(box.width), float(box.height)
    return b


def msg_to_bbox(b: BoundingBox2D) -> BBox:
    """``BoundingBox2D`` -> pixel box (rotation ignored)."""
    return BBox.from_cxcywh(b.center.position.x, b.center.position.y, b.size_x, b.size_y)


def to_detection_array(items: Iterable[Union[Detection, Track]], header) -> Detection2DArray:
    """Detections or tracks -> ``Detection2DArray`` with ``header`` on the array and every detection.

    Each ``Detection2D`` carries the hypothesis ``face`` with the detector score; a track adds its
    id in ``Detection2D.id`` and, when recognition ran, a second hypothesis whose ``class_id`` is
    the person's name (or ``unknown``) with the identity score.
    """
    arr = Detection2DArray()
    arr.header = header
    for it in items:
        d = Detection2D()
        d.header = header
        d.bbox = bbox_to_msg(it.box)
        d.results.append(_hypothesis(FACE_CLASS if it.label == "face" else it.label, it.score))
        if isinstance(it, Track):
            d.id = str(it.track_id)
            if it.identity is not None:
                d.results.append(_hypothesis(it.identity, it.identity_score))
        arr.detections.append(d)
    return arr


def attributes_array(tracks: Sequence[Track], header) -> Detection2DArray:
    """Tracks with attributes -> ``Detection2DArray`` whose hypotheses are the attributes."""
    arr = Detection2DArray()
    arr.header = header
    for t in tracks:
        if not t.attributes:
            continue
        d = Detection2D()
        d.header = header
        d.id = str(t.track_id)
        d.bbox = bbox_to_msg(t.box)
        for name, p in t.attributes:
            d.results.append(_hypothesis(name, p))
        arr.detections.append(d)
    return arr


__all__ = ["image_to_bgr", "bgr_to_image", "to_detection_array", "attributes_array", "bbox_to_msg",
           "msg_to_bbox", "FACE_CLASS", "SUPPORTED_ENCODINGS", "ImageDecodeError"]


def cv_bridge_in_use() -> Optional[str]:
    """Name of the cv_bridge module in use, ``None`` when our numpy conversion is used."""
    return None if _BRIDGE is None else type(_BRIDGE).__module__
