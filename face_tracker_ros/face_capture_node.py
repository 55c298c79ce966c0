"""Face capture node: saves frames of any ROS camera topic for a training set.

Subscribes ``image`` (``sensor_msgs/Image``, remap it to the camera) and writes JPEG/PNG files
into ``output_dir`` with :class:`face_tracker_core.data.capture.CaptureWriter`: unique sortable
names, atomic writes, never overwriting, resuming an existing folder (a second run keeps every
earlier file). Optionally only frames where the detector finds a face, and LabelMe JSON
auto-labels beside each frame, flagged ``needs_review``.

Services:

* ``~/enable`` (``std_srvs/SetBool``): start (``true``) / stop (``false``) saving at the interval;
* ``~/snapshot`` (``std_srvs/Trigger``): save the newest frame now (enabled or not); the reply
  names the file.

A folder that cannot be written (read-only, disk full, ``max_frames`` reached) stops capturing
with one clear error line (and a failed service reply); the node stays up, and capture resumes
after ``~/enable`` once the cause is fixed (e.g. ``ros2 param set ... output_dir /other``).
Parameters are documented in ``config/capture.yaml``.
"""

from __future__ import annotations

import os
import threading
from typing import List, Optional

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from face_tracker_core.data.capture import CaptureError, CaptureWriter, IntervalGate
from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.pipeline_config import effective_threshold, load_detector
from face_tracker_core.types import Detection

from .conversions import image_to_bgr
from .image_input import declare_transport, subscribe_image
from .params import declare, describe_qos, image_qos
from .tracker_params import SCORE_HELP
from .spin import run_node

# Parameters whose change starts a new writer (new session, new folder...).
_WRITER_PARAMS = ("output_dir", "prefix", "jpeg_quality", "max_frames", "write_labels", "image_format")
_DETECTOR_PARAMS = ("detector.backend", "detector.model_path", "detector.score_threshold")


def _check(p: dict) -> str:
    """Why a parameter set is unusable ("" when fine)."""
    prefix = str(p["prefix"])
    if not prefix or "_" in prefix or "/" in prefix:
        return f"prefix '{prefix}' must be non-empty without '_' or '/'"
    if p["image_format"] not in ("jpg", "png"):
        return f"image_format '{p['image_format']}' must be jpg or png"
    if not str(p["output_dir"]).strip():
        return "output_dir is empty"
    return ""


class FaceCaptureNode(Node):
    """See the module docstring."""

    def __init__(self, node_name: str = "face_capture", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.p = {
            "output_dir": declare(self, "output_dir", "~/face_captures",
                                  "folder for the frames (created; an existing one is resumed, never overwritten)"),
            "prefix": declare(self, "prefix", "face", "file name prefix (no '_'): <prefix>_<session>_<seq>.jpg"),
            "image_format": declare(self, "image_format", "jpg", "file format", choices=("jpg", "png")),
            "jpeg_quality": declare(self, "jpeg_quality", 95, "JPEG quality", range=(1, 100), step=1),
            "max_frames": declare(self, "max_frames", 0,
                                  "stop after saving this many frames per session (0 = no limit)",
                                  range=(0, 10_000_000), step=1),
            "min_interval_s": declare(self, "min_interval_s", 1.0,
                                      "minimum seconds between frames saved while enabled", range=(0.0, 3600.0)),
            "capture_on_start": declare(self, "capture_on_start", True,
                                        "save frames from start-up (false: wait for ~/enable or ~/snapshot)",
                                        read_only=True),
            "only_with_faces": declare(self, "only_with_faces", False,
                                       "save only frames where the detector finds a face (interval capture)"),
            "write_labels": declare(self, "write_labels", False,
                                    "write LabelMe JSON with the detector's boxes beside each frame, "
                                    "flagged needs_review"),
            "detector.backend": declare(self, "detector.backend", "default",
                                        "face detector used by only_with_faces / write_labels"),
            "detector.model_path": declare(self, "detector.model_path", "",
                                           "model file for the keras backend (empty: the backend's default)"),
            "detector.score_threshold": declare(self, "detector.score_threshold", -1.0, SCORE_HELP,
                                                range=(-1.0, 1.0)),
            "reliable": declare(self, "reliable", False,
                                "subscribe with reliable QoS (default: best effort, sensor data)", read_only=True),
            "image_transport": declare_transport(self),
        }
        problem = _check(self.p)
        if problem:
            raise ValueError(f"{self.get_name()}: {problem}")
        self._lock = threading.RLock()
        self._writer: Optional[CaptureWriter] = None
        self._detector = None
        self._detector_error = ""
        self._latest: Optional[Image] = None
        self._gate = IntervalGate(self.p["min_interval_s"])
        self._enabled = bool(self.p["capture_on_start"])
        self.last_error = ""
        self.saved_total = 0
        self.bad_frames = 0  # undecodable frames (bad raw fields, corrupt or truncated JPEG/PNG)
        group = MutuallyExclusiveCallbackGroup()  # frames and services never save at the same time
        self._qos = image_qos(self.p["reliable"], 1)
        self._sub = subscribe_image(self, "image", self.p["image_transport"], self._on_image, self._qos,
                                    callback_group=group)
        self.create_service(SetBool, "~/enable", self._on_enable, callback_group=group)
        self.create_service(Trigger, "~/snapshot", self._on_snapshot, callback_group=group)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"capturing '{self._sub.topic_name}' ({describe_qos(self._qos)}) into "
            f"{os.path.expanduser(self.p['output_dir'])}: "
            + (f"every {self.p['min_interval_s']:g} s" if self._enabled else "waiting for ~/enable or ~/snapshot"))

    # ---------------------------------------------------------------- state
    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def writer(self) -> Optional[CaptureWriter]:
        return self._writer

    def _open_writer(self) -> CaptureWriter:
        """The writer, created on first use (so a node that never saves creates no folder)."""
        if self._writer is None:
            self._writer = CaptureWriter(os.path.expanduser(self.p["output_dir"]), prefix=self.p["prefix"],
                                         jpeg_quality=self.p["jpeg_quality"], max_frames=self.p["max_frames"],
                                         write_labels=self.p["write_labels"], image_format=self.p["image_format"])
            self.get_logger().info(
                f"saving into {self._writer.out_dir} (session {self._writer.session}"
                + (f", resuming after {self._writer.existing[0]} earlier frames" if self._writer.existing[0] else "")
                + ")")
        return self._writer

    def _needs_detector(self) -> bool:
        return bool(self.p["only_with_faces"] or self.p["write_labels"])

    def _get_detector(self):
        if self._detector is None and not self._detector_error:
            backend, model = self.p["detector.backend"], self.p["detector.model_path"]
            try:
                thr = effective_threshold(backend, model, self.p["detector.score_threshold"])
                self._detector = load_detector(backend, model, thr)
                self.get_logger().info(f"detector: {self._detector.describe()}")
            except Exception as exc:  # noqa: BLE001 - report and keep the node up
                self._detector_error = f"cannot load detector '{backend}': {exc}"
                self.get_logger().error(self._detector_error)
        return self._detector

    def _fail(self, message: str) -> str:
        """Stop interval capture after an error the next frame would repeat (folder, disk)."""
        self.last_error = message
        if self._enabled:
            self._enabled = False
            self.get_logger().error(f"{message} -- capture disabled; fix it and call ~/enable")
        else:
            self.get_logger().error(message)
        self._writer = None
        return message

    # ---------------------------------------------------------------- saving
    def _save(self, msg: Image, detections: Optional[List[Detection]], bgr) -> str:
        writer = self._open_writer()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        det_name = self._detector.describe() if self._detector is not None else ""
        path = writer.save(bgr, detections, stamp=stamp or None, frame_id=msg.header.frame_id, detector=det_name)
        self.saved_total += 1
        if writer.saved == 1 or writer.saved % 50 == 0:
            self.get_logger().info(f"{writer.saved} frames saved this session "
                                   f"({writer.existing[0] + writer.saved} in {writer.out_dir})")
        if writer.full:
            self._enabled = False
            self.get_logger().info(f"max_frames={writer.max_frames} reached: capture disabled")
        return path

    def _detect(self, bgr) -> Optional[List[Detection]]:
        if not self._needs_detector():
            return None
        det = self._get_detector()
        return None if det is None else det.detect(bgr)

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._latest = msg
            if not self._enabled:
                return
            now = self.get_clock().now().nanoseconds * 1e-9
            if not self._gate.ready(now):
                return
            try:
                bgr = image_to_bgr(msg)
            except ImageDecodeError as exc:
                self.bad_frames += 1
                self.get_logger().warning(f"bad frame on '{self._sub.topic_name}' skipped: {exc}",
                                          throttle_duration_sec=5.0)
                return
            try:
                dets = self._detect(bgr)
                if self.p["only_with_faces"] and not dets:
                    if self._detector is None:
                        self._fail(f"only_with_faces needs a detector: {self._detector_error}")
                    return
                self._gate.mark(now)
                self._save(msg, dets, bgr)
            except CaptureError as exc:
                self._fail(str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad frame never kills the node
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"frame not saved: {self.last_error}")

    # ---------------------------------------------------------------- services
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self._lock:
            if not request.data:
                self._enabled = False
                saved = self._writer.saved if self._writer else 0
                response.success, response.message = True, f"capture stopped ({saved} frames this session)"
                self.get_logger().info(response.message)
                return response
            try:
                writer = self._open_writer()  # fail now, not at the next frame
            except CaptureError as exc:
                response.success, response.message = False, self._fail(str(exc))
                return response
            if writer.full:
                self._writer = None  # a new session with a fresh max_frames budget
                writer = self._open_writer()
            if self.p["only_with_faces"] and self._get_detector() is None:
                response.success, response.message = False, f"only_with_faces needs a detector: {self._detector_error}"
                return response
            self._enabled = True
            self._gate = IntervalGate(self.p["min_interval_s"])
            self.last_error = ""
            response.success = True
            response.message = (f"capturing every {self.p['min_interval_s']:g} s into {writer.out_dir}"
                                + (" (only frames with faces)" if self.p["only_with_faces"] else ""))
            self.get_logger().info(response.message)
            return response

    def _on_snapshot(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            msg = self._latest
            if msg is None:
                response.success = False
                response.message = f"no image received on '{self._sub.topic_name}' yet"
                return response
            try:
                bgr = image_to_bgr(msg)
                dets = self._detect(bgr) if self.p["write_labels"] else None
                writer = self._open_writer()
                if writer.full:
                    self._writer = None
                path = self._save(msg, dets, bgr)
            except ImageDecodeError as exc:
                response.success, response.message = False, f"newest frame is unreadable: {exc}"
                return response
            except CaptureError as exc:
                response.success, response.message = False, self._fail(str(exc))
                return response
            response.success, response.message = True, path
            return response

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        new = dict(self.p)
        for prm in params:
            if prm.name in new:
                new[prm.name] = prm.value
        problem = _check(new)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        with self._lock:
            changed = {k for k in new if new[k] != self.p[k]}
            self.p = new
            if changed & set(_WRITER_PARAMS):
                self._writer = None  # next save opens the new folder/settings (new session)
            if changed & set(_DETECTOR_PARAMS):
                self._detector, self._detector_error = None, ""
            if "min_interval_s" in changed:
                self._gate.min_interval = float(new["min_interval_s"])
        return SetParametersResult(successful=True)

    def status(self) -> dict:
        """Counters for tests and logs."""
        with self._lock:
            return {"enabled": self._enabled, "saved_total": self.saved_total, "last_error": self.last_error,
                    "bad_frames": self.bad_frames,
                    "out_dir": self._writer.out_dir if self._writer else os.path.expanduser(self.p["output_dir"])}


def main(args=None) -> None:
    run_node(FaceCaptureNode, args)


if __name__ == "__main__":
    main()
