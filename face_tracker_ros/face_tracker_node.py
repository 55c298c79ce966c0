"""Face tracker node: camera ``image`` in; ``detections`` (vision_msgs/Detection2DArray) and
``image_annotated`` out, with the input header copied onto both.

A lifecycle node: *configure* reads the parameters into a
:class:`~face_tracker_core.pipeline_config.PipelineConfig` and builds the core pipeline from it
(:func:`~face_tracker_core.pipeline_build.build_pipeline`: detector, tracker, recognition,
re-identification, attributes, enrolment); *activate* starts processing. With
``autostart: true`` (plain-node mode, the default when run on its own) it walks itself to
*active*; the launch file instead drives the transitions. The node converts messages in and out,
applies the writable parameters live and maps the pipeline's state to ``/diagnostics``.

Only the newest frame is ever processed: the subscription callback just stores the latest
message and a worker thread takes it, so a camera faster than the model never builds a backlog
(frames replaced before processing are counted as dropped in ``/diagnostics``).
"""

from __future__ import annotations

import collections
import time
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from vision_msgs.msg import Detection2DArray

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.hri_faces import face_id
from face_tracker_core.pipeline import FacePipeline
from face_tracker_core.pipeline_build import build_pipeline, load_configured_detector
from face_tracker_core.pipeline_config import PipelineConfig
from face_tracker_core.types import Track

from .conversions import attributes_array, bgr_to_image, image_to_bgr, to_detection_array
from .faces3d import Faces3D
from .hri_output import HriOutput, declare_hri_params
from .image_input import CompressedOutput, declare_transport, subscribe_image
from .latest_frame import LatestFrameNode
from .params import describe_qos, image_qos
from .spin import run_node
from .tracker_params import HEALTH_TABLE, NODE_HELP, PIPELINE_TABLE, TABLE, declare_table, pipeline_config

#: Parameters the worker applies between two frames (:meth:`FacePipeline.reconfigure_tracking`).
_LIVE_TRACKING = ("tracking.enabled", "tracking.min_hits", "tracking.max_age_s")
#: Writable parameters the node itself reads on use (kept current in ``self.p``).
_LIVE_NODE = ("publish_annotated", "no_input_warn_s", "diagnostics.max_latency_ms", "diagnostics.min_input_hz")


class FaceTrackerNode(LatestFrameNode):
    """See the module docstring. Parameters are documented in ``config/face_tracker.yaml`` and
    declared from :mod:`face_tracker_ros.tracker_params`."""

    def __init__(self, node_name: str = "face_tracker", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.p = declare_table(self, PIPELINE_TABLE, help=NODE_HELP)
        self.p.update(declare_table(self, TABLE))
        self.p["image_transport"] = declare_transport(self)
        self._ann_compressed = CompressedOutput(self, "image_annotated", "publish_annotated")
        self._faces3d = Faces3D(self)  # 3D faces + TF (faces3d.*), nothing subscribed when off
        self.p.update(declare_table(self, HEALTH_TABLE))
        declare_hri_params(self)
        self._hri: Optional[HriOutput] = None  # REP-155 output, built at configure when hri.enabled
        self.cfg: PipelineConfig = pipeline_config(self.p)  # read again at configure, then kept live
        self.p_score = self.cfg.detector.score_threshold  # the operating threshold in force

        self.pipeline: Optional[FacePipeline] = None
        self._det_pub = self._img_pub = self._attr_pub = None
        # statistics for diagnostics (guarded by _cv, like self.stats)
        self._latencies = collections.deque(maxlen=200)
        self._proc_ms = collections.deque(maxlen=200)
        self._rx_times = collections.deque(maxlen=200)
        self._model_error = ""
        self._last_rx_wall = time.monotonic()
        self._last_warn = 0.0
        self._tracking_dirty = False  # tracking.* changed: applied by the worker before its next frame

        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p["diagnostics_period_s"], self._on_timer)
        self.create_service(Trigger, "~/reload_model", self._on_reload)
        if self.cfg.recognition.enabled:
            self.create_subscription(String, "enroll", self._on_enroll, 10)
            self.create_service(Trigger, "~/reload_gallery", self._on_reload_gallery)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.p["autostart"]:
            self._schedule_autostart()

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cfg = pipeline_config({k: self.get_parameter(k).value for k in PipelineConfig.keys()})
        try:
            self.pipeline = build_pipeline(self.cfg, log=self.get_logger(), counters=self.stats)
            self.p_score = self.pipeline.score
            self._tracking_dirty = False
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            return self._configure_failed("cannot build the face pipeline", exc)
        try:
            self._hri = HriOutput.from_node(self)
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            return self._configure_failed("cannot set up the REP-155 output", exc)
        self._model_error = ""
        self.get_logger().info(f"detector: {self.pipeline.detector.describe()}")
        if self.pipeline.attributes is not None:
            self._attr_pub = self.create_lifecycle_publisher(Detection2DArray, "attributes", 10)
            self.get_logger().info("attributes: per confirmed track, published on 'attributes'")
        self._det_pub = self.create_lifecycle_publisher(Detection2DArray, "detections", 10)
        self._img_pub = self.create_lifecycle_publisher(Image, "image_annotated", image_qos(False, 1))
        self._ann_compressed.configure()
        self._faces3d.configure()
        return super().on_configure(state)

    def _configure_failed(self, what: str, exc: Exception) -> TransitionCallbackReturn:
        self._model_error = str(exc)
        self._close_pipeline()
        self.get_logger().error(f"{what}: {exc}")
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = image_qos(self.p["image_qos.reliable"], self.p["image_qos.depth"])
        self._qos = qos
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self._sub = subscribe_image(self, "image", self.p["image_transport"], self._on_image, qos,
                                    event_callbacks=events)
        self._last_rx_wall = time.monotonic()
        self._start_worker("face_tracker_worker")
        self.get_logger().info(f"processing '{self._sub.topic_name}' ({describe_qos(qos)})")
        return super().on_activate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_publishers(self._det_pub, self._img_pub, self._attr_pub)
        self._det_pub = self._img_pub = self._attr_pub = None
        self._ann_compressed.cleanup()
        self._faces3d.cleanup()
        self._close_pipeline()
        if self._hri is not None:
            self._hri.close()
            self._hri = None
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        out = super().on_deactivate(state)  # the worker has stopped: no face is tracked any more
        if self._hri is not None:
            self._hri.reset()
        return out

    def destroy_node(self):
        out = super().destroy_node()  # stops the frame worker first: it may be talking to the embedder process
        self._close_pipeline()
        return out

    def _close_pipeline(self) -> None:
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()

    # ---------------------------------------------------------------- recognition
    def _on_enroll(self, msg: String) -> None:
        pipeline = self.pipeline
        if pipeline is None or pipeline.enrolment is None:
            self.get_logger().warning(f"enroll '{msg.data.strip()}' ignored: recognition is not configured")
            return
        pipeline.enrolment.request(msg.data)

    def _on_reload_gallery(self, request, response):
        recognition = self.pipeline.recognition if self.pipeline is not None else None
        if recognition is None:
            response.success, response.message = False, "recognition is not configured"
            return response
        try:
            recognition.identifier.reload()
            response.success = True
            response.message = f"{len(recognition.identifier.names)} people"
        except Exception as exc:  # noqa: BLE001
            response.success, response.message = False, str(exc)
        return response

    # ---------------------------------------------------------------- parameters, model
    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in PipelineConfig.keys()}
        cfg = self.cfg.with_values(changes)
        if (cfg.detector.backend, cfg.detector.model_path) != (self.cfg.detector.backend, self.cfg.detector.model_path):
            ok, reason = self._swap_model(cfg)
            if not ok:
                return SetParametersResult(successful=False, reason=reason)
        elif "detector.score_threshold" in changes:
            try:
                score = cfg.detector.threshold()
            except Exception as exc:  # noqa: BLE001 - an unreadable sidecar refuses the value
                return SetParametersResult(successful=False, reason=str(exc))
            self.cfg = cfg
            self._apply_score(score)
        else:
            self.cfg = cfg
        if any(name in changes for name in _LIVE_TRACKING):
            self._tracking_dirty = True
        for p in params:
            if p.name in _LIVE_NODE:
                self.p[p.name] = p.value
        return SetParametersResult(successful=True)

    def _apply_score(self, score: float) -> None:
        """Make ``score`` the threshold in force (pipeline floor, tracker tiers) between two frames."""
        self.p_score = score
        if self.pipeline is not None:
            self.pipeline.set_threshold(score)

    def _swap_model(self, cfg: PipelineConfig):
        """Load the detector of ``cfg``; on success swap it in between frames and make ``cfg`` the
        config in force, else keep the current one. With ``detector.score_threshold`` at -1 the new
        model brings its own calibrated threshold. Returns ``(ok, text)``."""
        try:
            det, score = load_configured_detector(cfg)
        except Exception as exc:  # noqa: BLE001 - any failure to load refuses the new model
            msg = f"model reload refused, keeping {self._describe_detector()}: {exc}"
            self.get_logger().error(msg)
            self._model_error = str(exc)
            self.stats["reloads_refused"] += 1
            return False, msg
        self.cfg = cfg
        if self.pipeline is not None:
            self.pipeline.swap_detector(det, cfg.detector)
        self._apply_score(score)
        self._model_error = ""
        self.stats["reloads"] += 1
        self.get_logger().info(f"detector reloaded: {det.describe()}")
        return True, det.describe()

    def _describe_detector(self) -> str:
        return self.pipeline.detector.describe() if self.pipeline is not None else "no detector"

    def _on_reload(self, request, response):
        response.success, response.message = self._swap_model(self.cfg)
        return response

    # ---------------------------------------------------------------- data path
    def _on_received(self, now: float) -> None:
        self._rx_times.append(now)
        self._last_rx_wall = now

    def _process_frame(self, msg: Image, rx: float) -> None:
        try:
            bgr = image_to_bgr(msg)
        except ImageDecodeError as exc:
            self.stats["bad_frames"] += 1
            self._last_error = f"bad frame: {exc}"
            self.get_logger().warning(
                f"bad frame on '{self._sub.topic_name if self._sub else 'image'}' skipped: {exc}")
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        pipeline = self.pipeline
        if pipeline is None:
            return
        if self._tracking_dirty:
            self._tracking_dirty = False
            pipeline.reconfigure_tracking(self.cfg.tracking)
        result = pipeline.process(bgr, stamp if stamp > 0 else rx,
                                  annotate=self.p["publish_annotated"] or self._ann_compressed.enabled)
        self._publish(result, bgr, msg.header, pipeline)
        done = time.monotonic()
        with self._cv:
            self.stats["processed"] += 1
            self.stats["faces"] += len(result.items)
            self._latencies.append((done - rx) * 1e3)
            self._proc_ms.append(result.timings_ms["total"])

    def _publish(self, result, bgr, header, pipeline: FacePipeline) -> None:
        """Every output of one frame's ``result`` (``bgr``: the decoded input image)."""
        # ids of every track the tracker holds (reported or not), in the ids the outputs use
        live_ids = {t.track_id for t in pipeline.tracker.tracks} if pipeline.tracker is not None else None
        if self._hri is not None:  # REP-155 faces; every output then uses their ids
            result.items = self._hri.publish(bgr, result.items, header)
            if live_ids is not None:
                live_ids = {face_id(i, self._hri.prefix) for i in live_ids}
        if self._det_pub is not None:
            self._det_pub.publish(to_detection_array(result.items, header))
        if self._attr_pub is not None:
            self._attr_pub.publish(attributes_array([t for t in result.items if isinstance(t, Track)], header))
        if self.p["publish_annotated"] and self._img_pub is not None and result.annotated is not None:
            self._img_pub.publish(bgr_to_image(result.annotated, header))
        self._ann_compressed.publish(result.annotated, header)
        self._faces3d.publish(result.items, header, bgr.shape, live_ids)

    # ---------------------------------------------------------------- health
    def _on_incompatible_qos(self, event) -> None:
        self.stats["qos_incompatible"] += 1
        self.get_logger().warning(
            f"a publisher on '{self._sub.topic_name if self._sub else 'image'}' offers a QoS this subscription "
            f"({describe_qos(self._qos)}) cannot match (policy id {event.last_policy_kind}); "
            "set image_qos.reliable to match it")

    def _on_timer(self) -> None:
        now, warn_s = time.monotonic(), self.p["no_input_warn_s"]
        if self._active and now - self._last_rx_wall > warn_s and now - self._last_warn > warn_s:
            self._last_warn = now
            topic = self._sub.topic_name if self._sub else "image"
            pubs = self.get_publishers_info_by_topic(topic)
            offered = "; ".join(describe_qos(p.qos_profile) for p in pubs) or "no publisher"
            self.get_logger().warning(
                f"no image on '{topic}' for {now - self._last_rx_wall:.1f} s "
                f"(subscribed {describe_qos(self._qos)}; publishers: {offered})")
        self._diag_pub.publish(self.diagnostics())

    def diagnostics(self) -> DiagnosticArray:
        """Current health as a DiagnosticArray (also published on /diagnostics)."""
        now = time.monotonic()
        with self._cv:
            rx = [t for t in self._rx_times if now - t <= 5.0]
            lat = sorted(self._latencies)
            proc = sorted(self._proc_ms)
            stats = dict(self.stats)
        rate = (len(rx) - 1) / (rx[-1] - rx[0]) if len(rx) > 1 and rx[-1] > rx[0] else 0.0
        p50 = lat[len(lat) // 2] if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else 0.0
        pipeline = self.pipeline
        part_values, part_problem = pipeline.health() if pipeline is not None else ({}, None)
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: face tracking"
        st.hardware_id = self.get_fully_qualified_name()
        st.level, st.message = self._health_level(now, p95, rate, bool(rx), pipeline is None, part_problem)
        values = {
            "input_rate_hz": f"{rate:.2f}", "latency_p50_ms": f"{p50:.1f}", "latency_p95_ms": f"{p95:.1f}",
            "processing_p50_ms": f"{proc[len(proc) // 2] if proc else 0.0:.1f}",
            "detector": self._describe_detector(), "last_error": self._last_error,
            "model_error": self._model_error, **self._faces3d.diagnostic_values(), **part_values,
        }
        return self._diagnostic_array(st, values, stats, ("received", "processed", "dropped", "bad_frames", "errors",
                                                          "faces", "reloads", "reloads_refused", "qos_incompatible"))

    def _health_level(self, now: float, p95: float, rate: float, receiving: bool, unconfigured: bool,
                      part_problem: Optional[str]):
        """``(DiagnosticStatus level, message)``: the first problem found, most serious first."""
        if self._model_error and unconfigured:
            return DiagnosticStatus.ERROR, f"no model: {self._model_error}"
        if not self._active:
            return DiagnosticStatus.WARN, "inactive"
        if now - self._last_rx_wall > self.p["no_input_warn_s"]:
            return DiagnosticStatus.WARN, "no input"
        if p95 > self.p["diagnostics.max_latency_ms"]:
            return DiagnosticStatus.WARN, f"latency p95 {p95:.0f} ms"
        if receiving and rate < self.p["diagnostics.min_input_hz"]:
            return DiagnosticStatus.WARN, f"input rate {rate:.1f} Hz"
        if self._model_error:
            return DiagnosticStatus.WARN, f"model reload refused: {self._model_error}"
        if part_problem:
            return DiagnosticStatus.WARN, part_problem
        return DiagnosticStatus.OK, "ok"


def main(args=None) -> None:
    run_node(FaceTrackerNode, args, threads=2)  # services answer while on_configure loads the model


if __name__ == "__main__":
    main()
