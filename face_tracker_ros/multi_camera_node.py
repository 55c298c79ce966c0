"""Many cameras, one process: one shared detector model, one tracker and one set of outputs per camera.

For every camera namespace ``<cam>`` in the ``cameras`` parameter the node subscribes to
``<cam>/image`` and publishes ``<cam>/detections`` (vision_msgs/Detection2DArray) and
``<cam>/image_annotated`` with that camera's input header. The detector (the memory-heavy part)
is built once and shared; each camera keeps its own tracker, so track ids never mix cameras.

Worker threads (``workers``) serve the cameras round-robin, always taking a camera's newest frame: a
camera whose frame was replaced before a worker got to it counts it as ``dropped``; no backlog builds
and no camera can starve another. A camera is served by one worker at a time (its tracker sees its
frames in order); the shared detector runs one frame at a time, while other workers decode, track,
draw and publish (the detector's native code releases Python's GIL, so two workers use two cores).
``/diagnostics`` carries one status per camera (input rate, latency, counters). A lifecycle node like
the tracker node (``autostart`` walks it to *active*).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Dict, List, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.validate_topic_name import validate_topic_name
from sensor_msgs.msg import Image
from vision_msgs.msg import Detection2DArray

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.pipeline import FacePipeline
from face_tracker_core.pipeline_build import build_pipeline, load_configured_detector

from .conversions import bgr_to_image, image_to_bgr, to_detection_array
from .latest_frame import FrameSlot, LatestFrameNode
from .params import declare, describe_qos, image_qos
from .pipeline_setup import declare_pipeline_params
from .spin import run_node


@dataclasses.dataclass
class _Camera:
    """One camera's pipeline, ROS endpoints, newest unprocessed frame and statistics."""

    name: str
    pipeline: FacePipeline
    det_pub: object = None
    img_pub: object = None
    sub: object = None
    frame: FrameSlot = dataclasses.field(default_factory=FrameSlot)
    busy: bool = False
    stats: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    latencies: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=200))
    rx_times: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=200))


class _SerialDetector:
    """The shared detector, one frame at a time (a detector keeps per-call buffers: not reentrant)."""

    def __init__(self, detector) -> None:
        self.detector, self._lock = detector, threading.Lock()
        self.name = getattr(detector, "name", "detector")

    def detect(self, bgr):
        with self._lock:
            return self.detector.detect(bgr)

    def describe(self) -> str:
        return self.detector.describe()


def check_cameras(cameras: List[str]) -> List[str]:
    """``cameras`` if they are distinct, valid relative namespaces, else ``ValueError`` saying why."""
    if not cameras:
        raise ValueError("'cameras' is empty: give at least one camera namespace, e.g. ['cam0', 'cam1']")
    if len(set(cameras)) != len(cameras):
        raise ValueError(f"'cameras' lists a namespace twice: {cameras}")
    for cam in cameras:
        if not cam or cam.startswith(("/", "~")):
            raise ValueError(f"camera '{cam}': give a relative namespace (e.g. 'cam0'), resolved in the node's")
        try:
            validate_topic_name(f"{cam}/image")
        except Exception as exc:  # noqa: BLE001 - rclpy's InvalidTopicNameException, reworded
            raise ValueError(f"camera '{cam}' is not a valid namespace: {exc}") from exc
    return list(cameras)


class MultiCameraNode(LatestFrameNode):
    """See the module docstring. Parameters are documented in ``config/multi_camera.yaml``."""

    def __init__(self, node_name: str = "multi_camera_tracker", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.p_cameras = declare(self, "cameras", ["cam0", "cam1"],
                                 "camera namespaces: subscribes <cam>/image, publishes <cam>/detections and "
                                 "<cam>/image_annotated", read_only=True)
        self.params = declare_pipeline_params(self)
        self.p_reliable = declare(self, "image_qos.reliable", False,
                                  "subscribe to images with reliable QoS (default: best effort, sensor data)",
                                  read_only=True)
        self.p_depth = declare(self, "image_qos.depth", 1, "image subscription queue depth per camera",
                               range=(1, 100), step=1, read_only=True)
        self.p_annotate = declare(self, "publish_annotated", True,
                                  "publish <cam>/image_annotated (drawn only while it has a subscriber)")
        self.p_workers = declare(self, "workers", 2,
                                 "worker threads serving the cameras (one camera per worker at a time; the shared "
                                 "detector runs one frame at a time)", range=(1, 8), step=1, read_only=True)
        self.p_diag_period = declare(self, "diagnostics_period_s", 1.0, "period of /diagnostics messages",
                                     range=(0.1, 60.0), read_only=True)
        self.p_autostart = declare(self, "autostart", True,
                                   "configure and activate by itself (plain-node mode); "
                                   "false = wait for lifecycle transitions", read_only=True)
        self.detector = None
        self.cameras: Dict[str, _Camera] = {}
        self._order: List[str] = []
        self._next = 0
        self._error = ""
        self._workers: List[threading.Thread] = []
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p_diag_period, lambda: self._diag_pub.publish(self.diagnostics()))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.p_autostart:
            self._schedule_autostart()

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            names = check_cameras(list(self.p_cameras))
            detector, score = load_configured_detector(self.params)
            # -1 = the model's calibrated threshold: the one in force from now on
            self.params = self.params.with_values({"detector.score_threshold": score})
            self.detector = _SerialDetector(detector)  # one model
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            self._error = str(exc)
            self.get_logger().error(f"cannot configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._error = ""
        for name in names:
            cam = _Camera(name, build_pipeline(self.params, detector=self.detector))
            cam.det_pub = self.create_lifecycle_publisher(Detection2DArray, f"{name}/detections", 10)
            cam.img_pub = self.create_lifecycle_publisher(Image, f"{name}/image_annotated", image_qos(False, 1))
            self.cameras[name] = cam
        self._order, self._next = names, 0
        self.get_logger().info(f"detector: {self.detector.describe()}, shared by {len(names)} cameras: "
                               f"{', '.join(names)}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = image_qos(self.p_reliable, self.p_depth)
        for cam in self.cameras.values():
            cam.sub = self.create_subscription(Image, f"{cam.name}/image",
                                               lambda msg, c=cam: self._on_camera_image(c, msg), qos)
        self._start_worker("multi_camera_worker")
        self.get_logger().info(f"processing {len(self.cameras)} cameras ({describe_qos(qos)}): "
                               + ", ".join(c.sub.topic_name for c in self.cameras.values()))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        out = super().on_deactivate(state)  # stops the worker first
        for cam in self.cameras.values():
            if cam.sub is not None:
                self.destroy_subscription(cam.sub)
            cam.sub = None
            cam.frame.take()  # a frame left waiting is never processed
        return out

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for cam in self.cameras.values():
            self._destroy_publishers(cam.det_pub, cam.img_pub)
        self.cameras, self._order, self.detector = {}, [], None
        return TransitionCallbackReturn.SUCCESS

    def _start_worker(self, name: str) -> None:
        self._running = True
        self._workers = [threading.Thread(target=self._work, name=f"{name}_{k}", daemon=True)
                         for k in range(int(self.p_workers))]
        for t in self._workers:
            t.start()
        self._active = True

    def _stop_worker(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify_all()
        workers, self._workers = self._workers, []
        for t in workers:
            if t is not threading.current_thread():
                t.join(timeout=10.0)

    def _on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "publish_annotated":
                self.p_annotate = bool(p.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- data path
    def _on_camera_image(self, cam: _Camera, msg: Image) -> None:
        now = time.monotonic()
        with self._cv:
            cam.frame.put(msg, now, cam.stats)
            cam.rx_times.append(now)
            self.stats["received"] += 1
            self._cv.notify()

    def _take(self) -> Optional[_Camera]:
        """Under ``_cv``: the next camera (round-robin from the last served) that has a frame."""
        n = len(self._order)
        for k in range(n):
            cam = self.cameras.get(self._order[(self._next + k) % n])
            if cam is not None and cam.frame.msg is not None and not cam.busy:
                self._next = (self._next + k + 1) % n
                cam.busy = True
                return cam
        return None

    def _work(self) -> None:
        while True:
            with self._cv:
                cam = self._take() if self._running else None
                while self._running and cam is None:
                    self._cv.wait(timeout=0.5)
                    cam = self._take() if self._running else None
                if cam is None:
                    return
                msg, rx = cam.frame.take()
            try:
                self._process(cam, msg, rx)
            except Exception as exc:  # noqa: BLE001 - a node never dies on one bad frame
                if not self.context.ok():
                    return
                cam.stats["errors"] += 1
                self._last_error = f"{cam.name}: {type(exc).__name__}: {exc}"
                self.get_logger().error(f"frame skipped after an unexpected error: {self._last_error}")
            finally:
                with self._cv:
                    cam.busy = False
                    self._cv.notify()  # its next frame may be waiting

    def _process(self, cam: _Camera, msg: Image, rx: float) -> None:
        try:
            bgr = image_to_bgr(msg)
        except ImageDecodeError as exc:
            cam.stats["bad_frames"] += 1
            self._last_error = f"{cam.name}: bad frame: {exc}"
            self.get_logger().warning(f"bad frame on '{cam.name}/image' skipped: {exc}")
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        # drawing and sending a full frame is a good part of the cost: only while someone watches
        annotate = self.p_annotate and cam.img_pub.get_subscription_count() > 0
        result = cam.pipeline.process(bgr, stamp if stamp > 0 else rx, annotate=annotate)
        cam.det_pub.publish(to_detection_array(result.items, msg.header))
        if annotate and result.annotated is not None:
            cam.img_pub.publish(bgr_to_image(result.annotated, msg.header))
        done = time.monotonic()
        with self._cv:
            cam.stats["processed"] += 1
            cam.stats["faces"] += len(result.items)
            cam.latencies.append((done - rx) * 1e3)
            self.stats["processed"] += 1

    # ---------------------------------------------------------------- health
    def diagnostics(self) -> DiagnosticArray:
        """One status per camera (also published on /diagnostics)."""
        now = time.monotonic()
        statuses = []
        for cam in list(self.cameras.values()):
            with self._cv:
                rx = [t for t in cam.rx_times if now - t <= 5.0]
                lat = sorted(cam.latencies)
                stats = dict(cam.stats)
            rate = (len(rx) - 1) / (rx[-1] - rx[0]) if len(rx) > 1 and rx[-1] > rx[0] else 0.0
            p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else 0.0
            st = DiagnosticStatus(name=f"{self.get_name()}: {cam.name}", hardware_id=cam.name)
            st.level, st.message = ((DiagnosticStatus.OK, "ok") if self._active and rx else
                                    (DiagnosticStatus.WARN, "inactive" if not self._active else "no input"))
            values = {"input_rate_hz": f"{rate:.2f}", "latency_p50_ms": f"{lat[len(lat) // 2] if lat else 0.0:.1f}",
                      "latency_p95_ms": f"{p95:.1f}", "detector": self.detector.describe() if self.detector else ""}
            statuses += self._diagnostic_array(st, values, stats, ("received", "processed", "dropped", "bad_frames",
                                                                   "errors", "faces")).status
        if not statuses:
            st = DiagnosticStatus(name=f"{self.get_name()}: cameras", hardware_id=self.get_fully_qualified_name())
            st.level = DiagnosticStatus.ERROR if self._error else DiagnosticStatus.WARN
            st.message = f"not configured: {self._error}" if self._error else "not configured"
            statuses = [st]
        arr = DiagnosticArray(status=statuses)
        arr.header.stamp = self.get_clock().now().to_msg()
        return arr


def main(args=None) -> None:
    run_node(MultiCameraNode, args)


if __name__ == "__main__":
    main()
