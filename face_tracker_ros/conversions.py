"""The one place where core dataclasses and images meet ROS messages.

* ``sensor_msgs/Image`` <-> BGR ``uint8`` arrays (cv_bridge where installed, else our own
  validated numpy conversion from :mod:`face_tracker_core.imaging`; PyPI's ``cv-bridge`` is a
  broken ROS 1 copy and is never used).
* ``sensor_msgs/CompressedImage`` (JPEG/PNG, ``<image>/compressed``) <-> BGR arrays (OpenCV).
* :class:`~face_tracker_core.types.Detection` / :class:`~face_tracker_core.types.Track` ->
  ``vision_msgs/Detection2DArray`` (pixel box centre/size, hypotheses, ``id`` = track id).
* ``sensor_msgs/CameraInfo`` / depth images -> :mod:`face_tracker_core.geometry3d` inputs, and
  its :class:`~face_tracker_core.geometry3d.Face3D` -> ``vision_msgs/Detection3DArray`` and
  ``geometry_msgs/TransformStamped`` (camera optical frame, metres).
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import cv2
import numpy as np
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from vision_msgs.msg import (BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesis,
                             ObjectHypothesisWithPose)

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.geometry3d import Face3D, PinholeCamera
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


def image_to_bgr(msg: Union[Image, CompressedImage]) -> np.ndarray:
    """Convert a ``sensor_msgs/Image`` (or ``CompressedImage``) to a BGR ``uint8`` array.

    Args:
        msg: image in any of :data:`face_tracker_core.imaging.SUPPORTED_ENCODINGS`, or a
            ``CompressedImage`` (see :func:`compressed_to_bgr`).

    Returns:
        ``(height, width, 3)`` ``uint8`` BGR array.

    Raises:
        ImageDecodeError: zero size, ``step`` too small, short data, unknown or depth encoding.
    """
    if isinstance(msg, CompressedImage):
        return compressed_to_bgr(msg)
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


_JPEG_SOI, _JPEG_EOI, _PNG_SIG = b"\xff\xd8", b"\xff\xd9", b"\x89PNG\r\n\x1a\n"


def compressed_to_bgr(msg: CompressedImage) -> np.ndarray:
    """Decode a JPEG or PNG ``sensor_msgs/CompressedImage`` to a BGR ``uint8`` array (OpenCV).

    The payload's own signature decides the codec (``format`` is free text: ``jpeg``, ``png``,
    ``bgr8; jpeg compressed bgr8``...). A JPEG without its end marker or a PNG without ``IEND`` is
    truncated: OpenCV would return it half grey, so it is refused.

    Raises:
        ImageDecodeError: empty, truncated or corrupt payload, ``compressedDepth``, other codecs.
    """
    data = bytes(msg.data)
    if "compresseddepth" in msg.format.lower():
        raise ImageDecodeError(f"format '{msg.format}' is a compressed depth image, not a camera image")
    if not data:
        raise ImageDecodeError("empty compressed image")
    if data.startswith(_JPEG_SOI):
        if data.rfind(_JPEG_EOI, max(0, len(data) - 64)) < 0:  # EOI may be followed by padding
            raise ImageDecodeError(f"truncated JPEG ({len(data)} bytes, no end-of-image marker)")
    elif data.startswith(_PNG_SIG):
        if data.rfind(b"IEND", max(0, len(data) - 64)) < 0:
            raise ImageDecodeError(f"truncated PNG ({len(data)} bytes, no IEND chunk)")
    else:
        raise ImageDecodeError(f"compressed image ('{msg.format}', {len(data)} bytes) is neither JPEG nor PNG")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ImageDecodeError(f"corrupt compressed image ('{msg.format}', {len(data)} bytes)")
    return bgr


def bgr_to_compressed(bgr: np.ndarray, header, fmt: str = "jpeg", quality: int = 90) -> CompressedImage:
    """Encode a BGR array as a ``sensor_msgs/CompressedImage`` (``header`` copied).

    Args:
        bgr: ``(H, W, 3)`` ``uint8``.
        header: the input header (same stamp and frame).
        fmt: ``jpeg`` or ``png``.
        quality: JPEG quality 1-100 (PNG: ignored).

    Returns:
        The message, ``format`` as image_transport's compressed plugin writes it
        (``bgr8; jpeg compressed bgr8``).
    """
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif fmt == "png":
        ok, buf = cv2.imencode(".png", bgr)
    else:
        raise ValueError(f"format must be jpeg or png, got '{fmt}'")
    if not ok:
        raise ImageDecodeError(f"OpenCV could not encode a {bgr.shape} image as {fmt}")
    msg = CompressedImage()
    msg.header = header
    msg.format = f"bgr8; {fmt} compressed bgr8"
    msg.data = buf.tobytes()
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


__all__ = ["image_to_bgr", "bgr_to_image", "compressed_to_bgr", "bgr_to_compressed", "to_detection_array",
           "attributes_array", "bbox_to_msg", "msg_to_bbox", "FACE_CLASS", "SUPPORTED_ENCODINGS", "ImageDecodeError"]


def cv_bridge_in_use() -> Optional[str]:
    """Name of the cv_bridge module in use, ``None`` when our numpy conversion is used."""
    return None if _BRIDGE is None else type(_BRIDGE).__module__


# ---------------------------------------------------------------- 3D faces
def camera_info_to_pinhole(msg: CameraInfo) -> PinholeCamera:
    """``CameraInfo`` -> :class:`~face_tracker_core.geometry3d.PinholeCamera` (from ``k``).

    Raises:
        ValueError: an uncalibrated ``k`` (zero focal length) or zero image size.
    """
    return PinholeCamera.from_k(msg.k, msg.width, msg.height)


_DEPTH_DTYPES = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}


def depth_image_to_array(msg: Image) -> np.ndarray:
    """A depth ``sensor_msgs/Image`` -> ``(H, W)`` array: ``uint16`` (16UC1, usually mm) or ``float32`` (32FC1, m).

    Raises:
        ImageDecodeError: another encoding, zero size, ``step`` too small or short data.
    """
    dtype = _DEPTH_DTYPES.get(msg.encoding)
    if dtype is None:
        raise ImageDecodeError(f"depth encoding '{msg.encoding}' unsupported (16UC1, mono16 or 32FC1)")
    item = np.dtype(dtype).itemsize
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0 or step < w * item or len(msg.data) < step * (h - 1) + w * item:
        raise ImageDecodeError(f"bad depth image {w}x{h}, step {step}, {len(msg.data)} bytes")
    rows = np.frombuffer(bytes(msg.data), np.uint8, count=step * (h - 1) + w * item)
    rows = np.lib.stride_tricks.as_strided(rows, (h, w * item), (step, 1))
    arr = rows.copy().view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    return arr.astype(dtype, copy=False)


def to_detection3d_array(faces: Sequence[Face3D], header):
    """Faces -> ``vision_msgs/Detection3DArray``: same header and ids as the 2D detections.

    Each ``Detection3D``: ``bbox.center.position`` = face position and ``bbox.size`` = face box
    size (metres, camera optical frame), ``results[0]`` = ``face`` + detector score with the same
    position in its pose, ``id`` = track id.
    """
    from vision_msgs.msg import Detection3D, Detection3DArray  # the 3D types: only when 3D is on

    arr = Detection3DArray()
    arr.header = header
    for f in faces:
        d = Detection3D()
        d.header = header
        d.id = f.track_id
        p = d.bbox.center.position
        p.x, p.y, p.z = f.position
        s = d.bbox.size
        s.x, s.y, s.z = f.size
        h = _hypothesis(FACE_CLASS, f.score)
        h.pose.pose.position.x, h.pose.pose.position.y, h.pose.pose.position.z = f.position
        d.results.append(h)
        arr.detections.append(d)
    return arr


def face_transform(track_id: str, position: Sequence[float], header, prefix: str = "face_") -> TransformStamped:
    """``TransformStamped`` of child frame ``<prefix><track_id>`` in ``header.frame_id`` (identity rotation)."""
    t = TransformStamped()
    t.header.stamp = header.stamp
    t.header.frame_id = header.frame_id
    t.child_frame_id = f"{prefix}{track_id}"
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (float(v) for v in position)
    t.transform.rotation.w = 1.0
    return t


__all__ += ["camera_info_to_pinhole", "depth_image_to_array", "to_detection3d_array", "face_transform"]
