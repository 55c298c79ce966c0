"""Face tracker node: camera ``image`` in; ``detections`` (vision_msgs/Detection2DArray) and
``image_annotated`` out, with the input header copied onto both.

A lifecycle node: *configure* loads the model, *activate* starts processing. With
``autostart: true`` (plain-node mode, the default when run on its own) it walks itself to
*active*; the launch file instead drives the transitions.

Only the newest frame is ever processed: the subscription callback just stores the latest
message and a worker thread takes it, so a camera faster than the model never builds a backlog
(frames replaced before processing are counted as dropped in ``/diagnostics``).
"""

from __future__ import annotations

import collections
import os
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
from face_tracker_core.infer import available_backends
from face_tracker_core.pipeline import FacePipeline
from face_tracker_core.types import Track

from .conversions import attributes_array, bgr_to_image, image_to_bgr, to_detection_array
from .faces3d import Faces3D
from .hri_output import HriOutput, declare_hri_params
from .image_input import CompressedOutput, declare_transport, subscribe_image
from .latest_frame import LatestFrameNode
from .params import declare, describe_qos, image_qos
from .pipeline_setup import SCORE_HELP, effective_threshold, load_detector
from .spin import run_node


class FaceTrackerNode(LatestFrameNode):
    """See the module docstring. Parameters are documented in ``config/face_tracker.yaml``."""

    def __init__(self, node_name: str = "face_tracker", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        backends = available_backends()
        self.p_backend = declare(self, "detector.backend", "default", "face detector backend",
                                 choices=backends)
        self.p_model = declare(self, "detector.model_path", "",
                               "model file (.keras/.tflite/SavedModel dir) for the keras backend; "
                               "changing it at run time hot-reloads the model")
        # the parameter (-1 = the model's calibrated threshold) and the threshold in force
        self.p_score_param = declare(self, "detector.score_threshold", -1.0, SCORE_HELP, range=(-1.0, 1.0))
        self.p_score = self.p_score_param
        # tracking.enabled/min_hits/max_age_s apply live, between two frames (_apply_tracking)
        self.p_tracking = declare(self, "tracking.enabled", True,
                                  "follow faces with stable track ids (Detection2D.id); turned back on, "
                                  "tracking starts afresh (ids keep counting up)")
        self.p_min_hits = declare(self, "tracking.min_hits", 2, "detections before a track is reported",
                                  range=(1, 30), step=1)
        self.p_low = declare(self, "tracking.low_score", 0.1,
                             "detections between this and detector.score_threshold only extend existing "
                             "tracks (ByteTrack's second stage); they are never reported on their own",
                             range=(0.0, 1.0), read_only=True)
        self.p_max_age = declare(self, "tracking.max_age_s", 1.0,
                                 "seconds without a detection before a track is removed", range=(0.05, 30.0))
        self.p_reid = declare(self, "tracking.reid", False,
                              "give a face that left (or stayed hidden longer than tracking.max_age_s) and "
                              "came back its old track id, by appearance: embeddings of recognition.embedder "
                              "for new tracks and each track every ~0.5 s", read_only=True)
        self.p_reid_threshold = declare(self, "tracking.reid_threshold", 0.92,
                                        "cosine similarity needed to restore an id (0.92 suits dlib)",
                                        range=(0.0, 1.0), read_only=True)
        self.p_rec = declare(self, "recognition.enabled", False,
                             "name tracked faces from the enrolment gallery (Detection2D results[1])",
                             read_only=True)
        self.p_rec_embedder = declare(self, "recognition.embedder", "dlib", "face embedder",
                                      choices=("dlib", "facenet", "siamese"), read_only=True)
        self.p_rec_model = declare(self, "recognition.model_path", "",
                                   "embedder weights (.keras) for facenet/siamese; empty = the shipped ones",
                                   read_only=True)
        self.p_gallery = declare(self, "recognition.gallery_path", "",
                                 "SQLite gallery file; empty = $ROS_HOME/face_tracker/gallery.db", read_only=True)
        self.p_rec_threshold = declare(self, "recognition.threshold", 0.0,
                                       "same-person score; 0 = the gallery's calibrated threshold",
                                       range=(0.0, 1.0), read_only=True)
        self.p_rec_refresh = declare(self, "recognition.refresh_s", 2.0,
                                     "seconds between re-identifications of one track", range=(0.1, 600.0),
                                     read_only=True)
        self.p_rec_process = declare(self, "recognition.own_process", True,
                                     "embed faces in a separate process: frames never wait for the embedder "
                                     "(dlib holds Python's GIL for ~0.2-0.4 s per face); names appear a few "
                                     "frames after a face is confirmed", read_only=True)
        self.p_enroll_frames = declare(self, "recognition.enroll_frames", 10,
                                       "frames (vectors) collected when enrolling a person from the enroll topic",
                                       range=(1, 100), step=1, read_only=True)
        self.p_attr = declare(self, "attributes.enabled", False,
                              "publish face attributes per track on 'attributes' (and draw the top ones)",
                              read_only=True)
        self.p_attr_model = declare(self, "attributes.model_path", "",
                                    "attribute model; empty = the shipped one", read_only=True)
        self.p_attr_threshold = declare(self, "attributes.threshold", 0.5,
                                        "report attributes above this probability", range=(0.0, 1.0),
                                        read_only=True)
        self.p_attr_refresh = declare(self, "attributes.refresh_s", 3.0,
                                      "seconds between attribute updates of one track", range=(0.1, 600.0),
                                      read_only=True)
        self.p_attr_top = declare(self, "attributes.top_k", 5, "most attributes reported per face",
                                  range=(1, 40), step=1, read_only=True)
        self.p_reliable = declare(self, "image_qos.reliable", False,
                                  "subscribe to images with reliable QoS (default: best effort, sensor data)",
                                  read_only=True)
        self.p_depth = declare(self, "image_qos.depth", 1, "image subscription queue depth",
                               range=(1, 100), step=1, read_only=True)
        self.p_annotate = declare(self, "publish_annotated", True, "publish image_annotated")
        self.p_transport = declare_transport(self)
        self._ann_compressed = CompressedOutput(self, "image_annotated", "publish_annotated")
        self._faces3d = Faces3D(self)  # 3D faces + TF (faces3d.*), nothing subscribed when off
        self.p_warn_s = declare(self, "no_input_warn_s", 3.0,
                                "warn when no image arrived for this many seconds", range=(0.5, 600.0))
        self.p_diag_period = declare(self, "diagnostics_period_s", 1.0,
                                     "period of /diagnostics messages", range=(0.1, 60.0), read_only=True)
        self.p_max_latency = declare(self, "diagnostics.max_latency_ms", 100.0,
                                     "WARN above this p95 processing latency", range=(1.0, 10000.0))
        self.p_min_rate = declare(self, "diagnostics.min_input_hz", 5.0,
                                  "WARN below this input rate while receiving", range=(0.0, 1000.0))
        self.p_autostart = declare(self, "autostart", True,
                                   "configure and activate by itself (plain-node mode); "
                                   "false = wait for lifecycle transitions", read_only=True)
        declare_hri_params(self)
        self._hri: Optional[HriOutput] = None  # REP-155 output, built at configure when hri.enabled

        self.pipeline: Optional[FacePipeline] = None
        self._det_pub = self._img_pub = None
        # statistics for diagnostics (guarded by _cv, like self.stats)
        self._latencies = collections.deque(maxlen=200)
        self._proc_ms = collections.deque(maxlen=200)
        self._rx_times = collections.deque(maxlen=200)
        self._model_error = ""
        self._last_rx_wall = time.monotonic()
        self._last_warn = 0.0
        self._tracking_dirty = False  # tracking.* changed: applied by the worker before its next frame
        self._parked_tracker = None   # the tracker while tracking.enabled is false (ids never reused)

        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p_diag_period, self._on_timer)
        self.create_service(Trigger, "~/reload_model", self._on_reload)
        self._identifier = None
        self._per_track = None
        self._rec_worker = None  # ProcessEmbedder when recognition.own_process
        self._enroll_name: Optional[str] = None
        self._enroller = None
        self._attr_pub = None
        self._attr_tracks = []
        if self.p_rec:
            self.create_subscription(String, "enroll", self._on_enroll, 10)
            self.create_service(Trigger, "~/reload_gallery", self._on_reload_gallery)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.p_autostart:
            self._schedule_autostart()

    # ---------------------------------------------------------------- lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.p_score = effective_threshold(self.p_backend, self.p_model, self.p_score_param)
            self.pipeline = FacePipeline(
                detector=self._load_detector(self.p_backend, self.p_model),
                tracking=self.p_tracking, tracker_kwargs=self._tracker_kwargs(), min_score=self._score_floor())
            self._tracking_dirty, self._parked_tracker = False, None
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            self._model_error = str(exc)
            self.get_logger().error(f"cannot load detector: {exc}")
            return TransitionCallbackReturn.FAILURE
        try:
            if self.p_rec:
                self._setup_recognition()
            if self.p_reid and self.pipeline.tracker is not None:
                self._setup_reid()
            if self.p_attr:
                self._setup_attributes()
            self._hri = HriOutput.from_node(self)
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            self._model_error = str(exc)
            self.pipeline = None
            self._close_rec_worker()
            self.get_logger().error(f"cannot set up recognition/attributes/REP-155 output: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._model_error = ""
        self.get_logger().info(f"detector: {self.pipeline.detector.describe()}")
        self._det_pub = self.create_lifecycle_publisher(Detection2DArray, "detections", 10)
        self._img_pub = self.create_lifecycle_publisher(Image, "image_annotated", image_qos(False, 1))
        self._ann_compressed.configure()
        self._faces3d.configure()
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        qos = image_qos(self.p_reliable, self.p_depth)
        self._qos = qos
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos)
        self._sub = subscribe_image(self, "image", self.p_transport, self._on_image, qos, event_callbacks=events)
        self._last_rx_wall = time.monotonic()
        self._start_worker("face_tracker_worker")
        self.get_logger().info(f"processing '{self._sub.topic_name}' ({describe_qos(qos)})")
        return super().on_activate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for pub in (self._det_pub, self._img_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._det_pub = self._img_pub = None
        self._ann_compressed.cleanup()
        self._faces3d.cleanup()
        self.pipeline = None
        self._close_rec_worker()
        if self._hri is not None:
            self._hri.close()
            self._hri = None
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        out = super().on_deactivate(state)  # the worker has stopped: no face is tracked any more
        if self._hri is not None:
            self._hri.reset()
        return out

    # ---------------------------------------------------------------- recognition / attributes
    def _gallery_path(self) -> str:
        if self.p_gallery:
            return os.path.expanduser(self.p_gallery)
        ros_home = os.environ.get("ROS_HOME", os.path.join(os.path.expanduser("~"), ".ros"))
        return os.path.join(ros_home, "face_tracker", "gallery.db")

    def _setup_recognition(self) -> None:
        from face_tracker_core.recognition import Gallery, Identifier, TrackIdentifier, make_embedder

        kwargs = {"model_path": self.p_rec_model} if self.p_rec_model else {}
        self._close_rec_worker()
        if self.p_rec_process:
            from face_tracker_core.recognition.worker import ProcessEmbedder

            embedder = self._rec_worker = ProcessEmbedder(self.p_rec_embedder, **kwargs)
        else:
            embedder = make_embedder(self.p_rec_embedder, **kwargs)
        gallery = Gallery(self._gallery_path(), model_id=embedder.model_id, dim=embedder.dim)
        self._identifier = Identifier(embedder, gallery, threshold=self.p_rec_threshold or None)
        per_track = self._per_track = TrackIdentifier(self._identifier, refresh_s=self.p_rec_refresh,
                                                      worker=self._rec_worker)
        self.pipeline.stages["recognition"] = per_track.update
        self.pipeline.observers.append(self._enroll_step)
        self.get_logger().info(
            f"recognition: {embedder.describe()}, gallery {gallery.path} ({len(self._identifier.names)} people, "
            f"threshold {self._identifier.threshold:.3f})")

    def destroy_node(self):
        out = super().destroy_node()  # stops the frame worker first: it may be talking to the process
        self._close_rec_worker()
        return out

    def _close_rec_worker(self) -> None:
        if self._rec_worker is not None:
            self._rec_worker.close()
            self._rec_worker = None

    def _setup_reid(self) -> None:
        from face_tracker_core.infer.tracker import embedder_hook
        from face_tracker_core.recognition import make_embedder

        if self._identifier is not None:
            embedder = self._identifier.embedder   # one model in memory for both jobs
        else:
            kwargs = {"model_path": self.p_rec_model} if self.p_rec_model else {}
            embedder = make_embedder(self.p_rec_embedder, **kwargs)
        self.pipeline.tracker.configure(appearance_threshold=self.p_reid_threshold)
        self.pipeline.tracker.set_appearance_hook(embedder_hook(embedder))
        self.get_logger().info(f"re-identification: {embedder.describe()}, cosine >= {self.p_reid_threshold:.2f}")

    def _setup_attributes(self) -> None:
        from face_tracker_core.attributes.predictor import AttributePredictor
        from face_tracker_core.pipeline import PerTrackCache, with_attributes

        predictor = AttributePredictor(model_path=self.p_attr_model or None, threshold=self.p_attr_threshold,
                                       top_k=self.p_attr_top)
        cache = PerTrackCache(predictor.predict, with_attributes, refresh_s=self.p_attr_refresh)
        self.pipeline.stages["attributes"] = cache.annotate
        self._attr_pub = self.create_lifecycle_publisher(Detection2DArray, "attributes", 10)
        self.get_logger().info("attributes: per confirmed track, published on 'attributes'")

    def _on_enroll(self, msg: String) -> None:
        name = msg.data.strip()
        if not name:
            self.get_logger().warning("enroll: empty name ignored")
            return
        self._enroll_name = name
        self.get_logger().info(f"enroll '{name}': collecting {self.p_enroll_frames} frames of the largest "
                               "confirmed face")

    def _enroll_step(self, bgr, tracks, stamp) -> None:
        """Pipeline observer (worker thread): drives a live enrolment started by the enroll topic."""
        from face_tracker_core.recognition.enroll import LiveEnroller

        if self._enroll_name is not None and self._identifier is not None:
            name, self._enroll_name = self._enroll_name, None
            try:
                self._enroller = LiveEnroller(self._identifier.embedder, self._identifier.gallery, name,
                                              frames=self.p_enroll_frames)
            except Exception as exc:  # noqa: BLE001 - bad name etc.: report, keep running
                self.get_logger().error(f"enroll '{name}' refused: {exc}")
                self._enroller = None
        if self._enroller is None:
            return
        try:
            finished = self._enroller.update(bgr, tracks)
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"enroll '{self._enroller.name}' failed: {exc}")
            self._enroller = None
            return
        if finished:
            if self._enroller.error:
                self.get_logger().error(f"enroll '{self._enroller.name}' failed: {self._enroller.error}")
            else:
                self._identifier.reload()
                self.get_logger().info(f"enrolled '{self._enroller.name}' ({self._enroller.report.added} vectors)")
            self.stats["enrolled" if not self._enroller.error else "enroll_failed"] += 1
            self._enroller = None

    def _on_reload_gallery(self, request, response):
        if self._identifier is None:
            response.success, response.message = False, "recognition is not configured"
            return response
        try:
            self._identifier.reload()
            response.success = True
            response.message = f"{len(self._identifier.names)} people"
        except Exception as exc:  # noqa: BLE001
            response.success, response.message = False, str(exc)
        return response

    # ---------------------------------------------------------------- model
    def _score_floor(self, score: Optional[float] = None) -> float:
        """Lowest detector score kept for operating threshold ``score`` (default: the one in force):
        with tracking, low-score boxes still extend tracks."""
        score = self.p_score if score is None else score
        return min(self.p_low, score) if self.p_tracking else score

    def _load_detector(self, backend: str, model_path: str):
        return load_detector(backend, model_path, self._score_floor())  # the rule shared with multi_camera_node

    def _tracker_kwargs(self) -> dict:
        return {"min_hits": int(self.p_min_hits), "max_age_s": float(self.p_max_age),
                "high_score": self.p_score, "low_score": min(self.p_low, self.p_score)}

    def _apply_tracking(self, pipeline: FacePipeline) -> None:
        """Make ``pipeline`` follow tracking.enabled/min_hits/max_age_s (worker thread, between
        frames). min_hits/max_age_s keep the current tracks; disabling parks the tracker, enabling
        restores it emptied, so a track id is never given to a second face."""
        self._tracking_dirty = False
        pipeline.min_score = self._score_floor()
        if not self.p_tracking:
            if pipeline.tracker is not None:
                self._parked_tracker, pipeline.tracker = pipeline.tracker, None
            return
        if pipeline.tracker is None:
            if self._parked_tracker is not None:
                self._parked_tracker.reset()
                pipeline.tracker, self._parked_tracker = self._parked_tracker, None
            else:
                from face_tracker_core.infer.tracker import Tracker

                pipeline.tracker = Tracker(**self._tracker_kwargs())
                if self.p_reid:
                    self._setup_reid()
        pipeline.tracker.configure(min_hits=int(self.p_min_hits), max_age_s=float(self.p_max_age))

    def _on_set_parameters(self, params) -> SetParametersResult:
        backend, model = self.p_backend, self.p_model
        for p in params:
            if p.name in ("tracking.enabled", "tracking.min_hits", "tracking.max_age_s"):
                attr = {"tracking.enabled": "p_tracking", "tracking.min_hits": "p_min_hits",
                        "tracking.max_age_s": "p_max_age"}[p.name]
                setattr(self, attr, p.value)
                self._tracking_dirty = True
            elif p.name == "detector.backend":
                backend = p.value
            elif p.name == "detector.model_path":
                model = p.value
            elif p.name == "detector.score_threshold":
                self.p_score_param = float(p.value)
                if (backend, model) == (self.p_backend, self.p_model):
                    try:
                        self._apply_score(effective_threshold(backend, model, self.p_score_param))
                    except Exception as exc:  # noqa: BLE001 - an unreadable sidecar refuses the value
                        return SetParametersResult(successful=False, reason=str(exc))
            elif p.name == "no_input_warn_s":
                self.p_warn_s = float(p.value)
            elif p.name == "publish_annotated":
                self.p_annotate = bool(p.value)
            elif p.name == "diagnostics.max_latency_ms":
                self.p_max_latency = float(p.value)
            elif p.name == "diagnostics.min_input_hz":
                self.p_min_rate = float(p.value)
        if (backend, model) != (self.p_backend, self.p_model):
            ok, reason = self._swap_model(backend, model)
            if not ok:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_score(self, score: float) -> None:
        """Make ``score`` the threshold in force (pipeline floor, tracker tiers) between two frames."""
        self.p_score = score
        if self.pipeline is not None:
            self.pipeline.min_score = self._score_floor()
            if self.pipeline.tracker is not None:
                self.pipeline.tracker.configure(high_score=score, low_score=min(self.p_low, score))

    def _swap_model(self, backend: str, model: str):
        """Load a new detector; on success swap it in between frames, else keep the old one. With
        ``detector.score_threshold`` at -1 the new model brings its own calibrated threshold."""
        try:
            score = effective_threshold(backend, model, self.p_score_param)
            det = load_detector(backend, model, self._score_floor(score))
        except Exception as exc:  # noqa: BLE001 - any failure to load refuses the new model
            msg = f"model reload refused, keeping {self._describe_detector()}: {exc}"
            self.get_logger().error(msg)
            self._model_error = str(exc)
            self.stats["reloads_refused"] += 1
            return False, msg
        self.p_backend, self.p_model = backend, model
        if self.pipeline is not None:
            self.pipeline.swap_detector(det)
        self._apply_score(score)
        self._model_error = ""
        self.stats["reloads"] += 1
        self.get_logger().info(f"detector reloaded: {det.describe()}")
        return True, det.describe()

    def _describe_detector(self) -> str:
        return self.pipeline.detector.describe() if self.pipeline is not None else "no detector"

    def _on_reload(self, request, response):
        ok, text = self._swap_model(self.p_backend, self.p_model)
        response.success, response.message = ok, text
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
            self._apply_tracking(pipeline)
        result = pipeline.process(bgr, stamp if stamp > 0 else rx,
                                  annotate=self.p_annotate or self._ann_compressed.enabled)
        if self._hri is not None:  # REP-155 faces; every output then uses their ids
            result.items = self._hri.publish(bgr, result.items, msg.header)
        if self._det_pub is not None:
            self._det_pub.publish(to_detection_array(result.items, msg.header))
        if self._attr_pub is not None:
            self._attr_pub.publish(attributes_array([t for t in result.items if isinstance(t, Track)], msg.header))
        if self.p_annotate and self._img_pub is not None and result.annotated is not None:
            self._img_pub.publish(bgr_to_image(result.annotated, msg.header))
        self._ann_compressed.publish(result.annotated, msg.header)
        self._faces3d.publish(result.items, msg.header, bgr.shape, pipeline.tracker)
        done = time.monotonic()
        with self._cv:
            self.stats["processed"] += 1
            self.stats["faces"] += len(result.items)
            self._latencies.append((done - rx) * 1e3)
            self._proc_ms.append(result.timings_ms["total"])

    # ---------------------------------------------------------------- health
    def _on_incompatible_qos(self, event) -> None:
        self.stats["qos_incompatible"] += 1
        self.get_logger().warning(
            f"a publisher on '{self._sub.topic_name if self._sub else 'image'}' offers a QoS this subscription "
            f"({describe_qos(self._qos)}) cannot match (policy id {event.last_policy_kind}); "
            "set image_qos.reliable to match it")

    def _on_timer(self) -> None:
        now = time.monotonic()
        if self._active and now - self._last_rx_wall > self.p_warn_s and now - self._last_warn > self.p_warn_s:
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
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: face tracking"
        st.hardware_id = self.get_fully_qualified_name()
        level, message = DiagnosticStatus.OK, "ok"
        if self._model_error and self.pipeline is None:
            level, message = DiagnosticStatus.ERROR, f"no model: {self._model_error}"
        elif not self._active:
            level, message = DiagnosticStatus.WARN, "inactive"
        elif now - self._last_rx_wall > self.p_warn_s:
            level, message = DiagnosticStatus.WARN, "no input"
        elif p95 > self.p_max_latency:
            level, message = DiagnosticStatus.WARN, f"latency p95 {p95:.0f} ms"
        elif rx and rate < self.p_min_rate:
            level, message = DiagnosticStatus.WARN, f"input rate {rate:.1f} Hz"
        elif self._model_error:
            level, message = DiagnosticStatus.WARN, f"model reload refused: {self._model_error}"
        st.level, st.message = level, message
        values = {
            "input_rate_hz": f"{rate:.2f}", "latency_p50_ms": f"{p50:.1f}", "latency_p95_ms": f"{p95:.1f}",
            "processing_p50_ms": f"{proc[len(proc) // 2] if proc else 0.0:.1f}",
            "detector": self._describe_detector(), "last_error": self._last_error,
            "model_error": self._model_error, **self._faces3d.diagnostic_values(),
        }
        worker, per_track = self._rec_worker, self._per_track
        if worker is not None:
            values["recognition_process"] = (f"pid {worker.pid}" if worker.alive else "down") + \
                f", {worker.restarts} restarts"
            if per_track is not None:
                values["recognition_errors"] = str(per_track.worker_errors)
            if not worker.alive and level == DiagnosticStatus.OK:
                st.level, st.message = DiagnosticStatus.WARN, "recognition process down"
        return self._diagnostic_array(st, values, stats, ("received", "processed", "dropped", "bad_frames", "errors",
                                                          "faces", "reloads", "reloads_refused", "qos_incompatible"))


def main(args=None) -> None:
    run_node(FaceTrackerNode, args, threads=2)  # services answer while on_configure loads the model


if __name__ == "__main__":
    main()
