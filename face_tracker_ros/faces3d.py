"""3D faces for the tracker node: ``camera_info`` (+ optional ``depth``) in; ``detections_3d`` and TF out.

Off unless ``faces3d.enabled`` (then nothing is subscribed or published). When on:

* ``camera_info`` (``sensor_msgs/CameraInfo``, beside the image topic after remapping, as
  image_transport's camera subscriber finds it) gives the intrinsics. The one whose stamp equals
  the frame's (within ``faces3d.sync_tolerance_s``) is used, else the newest (intrinsics rarely
  change; counted as ``camera_info_unmatched``). With none yet, the 2D output goes on and one
  warning says so.
* ``depth`` (``faces3d.use_depth``, an image aligned with the camera image: ``16UC1`` in units of
  ``faces3d.depth_unit_m``, or ``32FC1`` metres) gives each face's distance as the median of the
  valid depths in the central part of its box; a face without enough valid depth, or a frame
  whose depth image does not arrive within ``faces3d.depth_wait_s``, falls back to its size.
* ``detections_3d`` (``vision_msgs/Detection3DArray``): same header and ids as ``detections``.
* TF: frame ``<faces3d.tf_prefix><track id>`` per reported track, child of the image's
  ``frame_id`` (REP-103 optical frame), position exponentially smoothed (``faces3d.smoothing_s``).
  When a track ends its frame is no longer published: tf2 has no "delete", so consumers see it
  go stale (lookups at a newer time fail; rviz drops it after its frame timeout, 2 s in
  ``config/face_tracker.rviz``).

The geometry is :mod:`face_tracker_core.geometry3d`; message conversions are in
:mod:`face_tracker_ros.conversions`.
"""

from __future__ import annotations

import collections
import threading
from typing import Dict, Optional

import cv2
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.geometry3d import PinholeCamera, PositionSmoother, depth_to_metres, locate

from .conversions import camera_info_to_pinhole, depth_image_to_array, face_transform, to_detection3d_array
from .image_input import sibling_topic
from .params import declare, image_qos


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _tf_sender(node):
    """(send(transforms), publisher, description): tf2_ros's broadcaster where installed, else
    ``tf2_msgs/TFMessage`` on ``/tf`` with tf2's QoS; ``(None, None, why)`` without tf2_msgs."""
    try:
        from tf2_ros import TransformBroadcaster

        broadcaster = TransformBroadcaster(node)
        return broadcaster.sendTransform, broadcaster.pub_tf, "tf2_ros TransformBroadcaster"
    except ImportError:
        pass
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None, None, "tf2_msgs is not installed: no TF frames"
    qos = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
    pub = node.create_publisher(TFMessage, "/tf", qos)
    return (lambda transforms: pub.publish(TFMessage(transforms=list(transforms)))), pub, "tf2_msgs on /tf"


class Faces3D:
    """See the module docstring. Call :meth:`configure`/:meth:`cleanup` from the node's lifecycle
    and :meth:`publish` from its frame worker after the 2D output."""

    def __init__(self, node, image_base: str = "image") -> None:
        self._node, self._image_base = node, image_base
        p = "faces3d."
        self.enabled = declare(node, p + "enabled", False,
                               "publish detections_3d and a TF frame per track from camera_info (+ depth)",
                               read_only=True)
        self.face_width_m = declare(node, p + "face_width_m", 0.16,
                                    "assumed width (m) of a face box for the distance from size: z = fx * W / w "
                                    "(about +-10 % for adults facing the camera)", range=(0.05, 0.5), read_only=True)
        self.use_depth = declare(node, p + "use_depth", False,
                                 "distance from the aligned depth image on 'depth' (16UC1 or 32FC1)", read_only=True)
        self.depth_unit_m = declare(node, p + "depth_unit_m", 0.001,
                                    "metres per unit of a 16UC1 depth image (0.001 = millimetres); 32FC1 is metres",
                                    range=(1e-6, 1.0), read_only=True)
        self.depth_fraction = declare(node, p + "depth_fraction", 0.5,
                                      "central part of the face box (width and height fraction) whose median "
                                      "valid depth is the distance", range=(0.1, 1.0), read_only=True)
        self.sync_tol_s = declare(node, p + "sync_tolerance_s", 0.01,
                                  "camera_info / depth stamps this close to the image stamp belong to it",
                                  range=(0.0, 1.0), read_only=True)
        self.depth_wait_s = declare(node, p + "depth_wait_s", 0.05,
                                    "longest wait for the depth image of a frame before using the size estimate",
                                    range=(0.0, 1.0), read_only=True)
        self.publish_tf = declare(node, p + "publish_tf", True, "broadcast a TF frame per track", read_only=True)
        self.tf_prefix = declare(node, p + "tf_prefix", "face_",
                                 "TF child frame name = prefix + track id", read_only=True)
        self.smoothing_s = declare(node, p + "smoothing_s", 0.2,
                                   "time constant (s) of the exponential smoothing of TF positions (0 = none)",
                                   range=(0.0, 10.0), read_only=True)
        self._cv = threading.Condition()
        self._infos = collections.deque(maxlen=30)   # (stamp ns, CameraInfo)
        self._depths = collections.deque(maxlen=5)   # (stamp ns, Image)
        self._subs, self._pub, self._tf_pub, self._send_tf = [], None, None, None
        self._smoother = PositionSmoother(self.smoothing_s)
        self._warned = set()
        self.stats = collections.Counter()
        self.tf_frames: list = []

    # ---------------------------------------------------------------- lifecycle
    def configure(self) -> None:
        if not self.enabled or self._pub is not None:
            return
        from vision_msgs.msg import Detection3DArray

        node = self._node
        self._pub = node.create_lifecycle_publisher(Detection3DArray, "detections_3d", 10)
        info_topic = sibling_topic(node, self._image_base, "camera_info")
        self._subs.append(node.create_subscription(CameraInfo, info_topic, self._on_info, image_qos(False, 5)))
        if self.use_depth:
            self._subs.append(node.create_subscription(Image, "depth", self._on_depth, image_qos(False, 2)))
        what = "none (publish_tf false)"
        if self.publish_tf:
            self._send_tf, self._tf_pub, what = _tf_sender(node)
            if self._send_tf is None:
                node.get_logger().warning(f"faces3d: {what}")
        source = (f"'{self._subs[1].topic_name}' (else size)" if self.use_depth
                  else f"a {self.face_width_m:g} m face width")
        node.get_logger().info(f"faces3d: intrinsics from '{self._subs[0].topic_name}', distance from {source}; "
                               f"TF: {what}")

    def cleanup(self) -> None:
        node = self._node
        for sub in self._subs:
            node.destroy_subscription(sub)
        for pub in (self._pub, self._tf_pub):
            if pub is not None:
                node.destroy_publisher(pub)
        self._subs, self._pub, self._tf_pub, self._send_tf = [], None, None, None
        self._smoother.retain(())
        with self._cv:
            self._infos.clear()
            self._depths.clear()

    # ---------------------------------------------------------------- inputs (executor thread)
    def _on_info(self, msg: CameraInfo) -> None:
        with self._cv:
            self._infos.append((_ns(msg.header.stamp), msg))

    def _on_depth(self, msg: Image) -> None:
        with self._cv:
            self._depths.append((_ns(msg.header.stamp), msg))
            self._cv.notify_all()

    def _match(self, items, stamp: int) -> Optional[object]:
        tol = int(self.sync_tol_s * 1e9)
        best = min(items, key=lambda it: abs(it[0] - stamp), default=None)
        return best[1] if best is not None and abs(best[0] - stamp) <= tol else None

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._node.get_logger().warning(f"faces3d: {text}")

    def _camera(self, stamp: int, width: int, height: int) -> Optional[PinholeCamera]:
        with self._cv:
            info = self._match(self._infos, stamp)
            if info is None and self._infos:
                info = self._infos[-1][1]
                self.stats["camera_info_unmatched"] += 1
        if info is None:
            self._warn_once("no_info", f"no camera_info on '{self._subs[0].topic_name}' yet: 2D output only")
            return None
        try:
            return camera_info_to_pinhole(info).scaled_to(width, height)
        except ValueError as exc:
            self._warn_once("bad_info", f"camera_info unusable ({exc}): 2D output only")
            return None

    def _depth(self, stamp: int):
        if not self.use_depth:
            return None
        with self._cv:
            self._cv.wait_for(lambda: self._match(self._depths, stamp) is not None, timeout=self.depth_wait_s)
            msg = self._match(self._depths, stamp)
        if msg is None:
            self.stats["depth_unmatched"] += 1
            return None
        try:
            return depth_to_metres(depth_image_to_array(msg), self.depth_unit_m)
        except ImageDecodeError as exc:
            self.stats["depth_bad"] += 1
            self._warn_once("bad_depth", f"depth image unusable ({exc}): distances from size")
            return None

    # ---------------------------------------------------------------- output (frame worker)
    def publish(self, items, header, image_shape, live_ids=None) -> None:
        """Locate ``items`` (boxes on the image of ``header``, ``image_shape`` = (H, W, ...)) and publish.

        ``live_ids``: ids (as in ``items``) of every track the tracker still holds, reported or not;
        a track not among them loses its TF frame's state (``None``: only the reported ones are kept).
        """
        if self._pub is None:
            return
        stamp = _ns(header.stamp)
        h, w = int(image_shape[0]), int(image_shape[1])
        camera = self._camera(stamp, w, h)
        if camera is None:
            return
        depth = self._depth(stamp)
        if depth is not None and depth.shape[:2] != (h, w):  # a depth stream at another resolution
            depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_NEAREST)  # nearest: never blend edges
        faces = locate(items, camera, self.face_width_m, depth, self.depth_fraction)
        for f in faces:
            self.stats[f"from_{f.source}"] += 1
        self._pub.publish(to_detection3d_array(faces, header))
        self._publish_tf(faces, header, stamp * 1e-9, live_ids)

    def _publish_tf(self, faces, header, stamp_s: float, live_ids) -> None:
        if self._send_tf is None:
            return
        if not header.frame_id:
            self._warn_once("no_frame", "the image header has no frame_id: no TF frames")
            return
        tracked = [f for f in faces if f.track_id]
        transforms = [face_transform(f.track_id, self._smoother.update(f.track_id, f.position, stamp_s),
                                     header, self.tf_prefix) for f in tracked]
        self._smoother.retain(set(live_ids or ()) | {f.track_id for f in tracked})
        self.tf_frames = [t.child_frame_id for t in transforms]
        if transforms:
            self._send_tf(transforms)

    def diagnostic_values(self) -> Dict[str, str]:
        """Key/values for the node's /diagnostics (empty when off)."""
        if not self.enabled:
            return {}
        out = {f"faces3d_{k}": str(v) for k, v in sorted(self.stats.items())}
        out["faces3d_tf_frames"] = " ".join(self.tf_frames)
        return out
