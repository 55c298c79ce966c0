"""Face reenactment node: the camera user's expressions rendered on the target person's face.

Camera ``image`` in; ``image_reenacted`` (the generator's output, ``sensor_msgs/Image`` bgr8 at
the model's resolution) and optionally ``image_side_by_side`` (camera | sketch | output) out, both
with the input header. Per frame: face detector -> dlib 68 landmarks -> landmarks placed on the
target (``normalise``) -> sketch -> pix2pix generator (:class:`face_tracker_core.reenact.Reenactor`).

No face in a frame: nothing is published (``no_face: skip``) or the last rendered image is
re-published with the new header (``no_face: last``); either way the node says so at most once
every ``no_face_log_period_s``.

A lifecycle node like ``face_tracker_node``: *configure* loads the generator, *activate*
subscribes; ``autostart: true`` (default) walks itself to *active*. Only the newest frame is
processed (a worker thread takes it), so a fast camera never builds a backlog. Changing
``model_path``, ``normalise`` or ``detector.backend`` at run time reloads between frames (a model
that fails to load is refused and the old one kept). Parameters: ``config/reenactment.yaml``.
"""

from __future__ import annotations

import collections
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.infer import available_backends
from face_tracker_core.reenact.renderer import NORMALISE_MODES

from .conversions import bgr_to_image, image_to_bgr
from .image_input import declare_transport, subscribe_image
from .latest_frame import LatestFrameNode
from .params import declare, describe_qos, image_qos
from .spin import run_node

NO_FACE_POLICIES = ("skip", "last")
_RELOAD_PARAMS = ("model_path", "normalise", "detector.backend", "landmark_refine")


class FaceReenactmentNode(LatestFrameNode):
    """See the module docstring."""

    def __init__(self, node_name: str = "face_reenactment", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.p = {
            "model_path": declare(self, "model_path", "",
                                  "generator .keras/.tflite with its .json sidecar; empty = the shipped model "
                                  "(trained on talking_face_1.mp4); changing it reloads"),
            "normalise": declare(self, "normalise", "relative",
                                 "how the camera face is placed on the target: relative (target's face shape "
                                 "moved by the user's expression), similarity (user's shape, target's pose/size), "
                                 "crop (the training crop: the target's own camera)", choices=NORMALISE_MODES),
            "detector.backend": declare(self, "detector.backend", "default", "face detector backend",
                                        choices=available_backends()),
            "landmark_refine": declare(self, "landmark_refine", 2,
                                       "landmark passes on the previous landmarks' box (makes landmarks "
                                       "independent of the detector's box convention)", range=(0, 5), step=1),
            "publish_side_by_side": declare(self, "publish_side_by_side", False,
                                            "also publish image_side_by_side (camera | sketch | output)"),
            "no_face": declare(self, "no_face", "skip",
                               "frame without a face: skip = publish nothing, last = re-publish the last "
                               "rendered image with the new header", choices=NO_FACE_POLICIES),
            "no_face_log_period_s": declare(self, "no_face_log_period_s", 5.0,
                                            "at most one 'no face' log line per this many seconds",
                                            range=(0.1, 3600.0)),
            "image_qos.reliable": declare(self, "image_qos.reliable", False,
                                          "subscribe with reliable QoS (default: best effort, sensor data)",
                                          read_only=True),
            "image_qos.depth": declare(self, "image_qos.depth", 1, "image subscription queue depth",
                                       range=(1, 100), step=1, read_only=True),
            "image_transport": declare_transport(self),
            "diagnostics_period_s": declare(self, "diagnostics_period_s", 1.0, "period of /diagnostics messages",
                                            range=(0.1, 60.0), read_only=True),
            "autostart": declare(self, "autostart", True,
                                 "configure and activate by itself (plain-node mode); false = wait for "
                                 "lifecycle transitions", read_only=True),
        }
        self.reenactor = None
        self._out_pub = self._sbs_pub = None
        self._last_output = None
        self._no_face_since_log = 0
        self._last_no_face_log = 0.0
        self._proc_ms = collections.deque(maxlen=200)
        self._model_error = ""
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.p["diagnostics_period_s"], self._on_timer)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.p["autostart"]:
            self._schedule_autostart()

    # ---------------------------------------------------------------- lifecycle
    def _load(self, params: dict):
        from face_tracker_core.reenact.renderer import DEFAULT_MODEL, Reenactor

        return Reenactor(params["model_path"] or DEFAULT_MODEL, detector=params["detector.backend"],
                         normalise=params["normalise"], refine=int(params["landmark_refine"]))

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.reenactor = self._load(self.p)
        except Exception as exc:  # noqa: BLE001 - stay up, unconfigured, and report it
            self._model_error = str(exc)
            self.get_logger().error(f"cannot load the reenactment generator: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._model_error = ""
        self.get_logger().info(self._describe())
        self._out_pub = self.create_lifecycle_publisher(Image, "image_reenacted", image_qos(False, 1))
        self._sbs_pub = self.create_lifecycle_publisher(Image, "image_side_by_side", image_qos(False, 1))
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._qos = image_qos(self.p["image_qos.reliable"], self.p["image_qos.depth"])
        self._sub = subscribe_image(self, "image", self.p["image_transport"], self._on_image, self._qos)
        self._start_worker("face_reenactment_worker")
        self.get_logger().info(f"rendering '{self._sub.topic_name}' ({describe_qos(self._qos)}) -> "
                               f"'{self._out_pub.topic_name}'")
        return super().on_activate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._destroy_publishers(self._out_pub, self._sbs_pub)
        self._out_pub = self._sbs_pub = None
        self.reenactor = None
        return TransitionCallbackReturn.SUCCESS

    def _describe(self) -> str:
        r = self.reenactor
        if r is None:
            return "no generator"
        return (f"generator {r.generator.path} ({r.resolution} px), normalise {r.normalise}, "
                f"detector {r.detector.describe()}")

    # ---------------------------------------------------------------- parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        new = dict(self.p)
        for prm in params:
            if prm.name in new:
                new[prm.name] = prm.value
        for name, allowed in (("normalise", NORMALISE_MODES), ("no_face", NO_FACE_POLICIES)):
            if new[name] not in allowed:
                return SetParametersResult(successful=False, reason=f"{name} must be one of {', '.join(allowed)}")
        if any(new[k] != self.p[k] for k in _RELOAD_PARAMS) and self.reenactor is not None:
            try:
                rea = self._load(new)
            except Exception as exc:  # noqa: BLE001 - refuse, keep the working model
                self._model_error = str(exc)
                self.stats["reloads_refused"] += 1
                msg = f"reload refused, keeping {self._describe()}: {exc}"
                self.get_logger().error(msg)
                return SetParametersResult(successful=False, reason=msg)
            with self._cv:  # swap between frames
                self.reenactor = rea
            self._model_error = ""
            self.stats["reloads"] += 1
            self.get_logger().info(f"reloaded: {self._describe()}")
        self.p = new
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- data path
    def _process_frame(self, msg: Image, rx: float) -> None:
        from face_tracker_core.reenact.renderer import side_by_side

        rea = self.reenactor  # one reference for the whole frame (a reload swaps it under _cv)

        if rea is None:
            return
        try:
            bgr = image_to_bgr(msg)
        except ImageDecodeError as exc:
            self.stats["bad_frames"] += 1
            self._last_error = f"bad frame: {exc}"
            self.get_logger().warning(f"bad frame skipped: {exc}", throttle_duration_sec=5.0)
            return
        t0 = time.perf_counter()
        res = rea.process(bgr)
        if res is None:
            self._no_face(msg)
            return
        self._proc_ms.append(1000 * (time.perf_counter() - t0))
        self.stats["rendered"] += 1
        self._last_output = res.output
        if self._out_pub is not None:
            self._out_pub.publish(bgr_to_image(res.output, msg.header))
        if self.p["publish_side_by_side"] and self._sbs_pub is not None:
            self._sbs_pub.publish(bgr_to_image(side_by_side(bgr, res.sketch, res.output), msg.header))

    def _no_face(self, msg: Image) -> None:
        self.stats["no_face"] += 1
        self._no_face_since_log += 1
        repeat = self.p["no_face"] == "last" and self._last_output is not None
        if repeat and self._out_pub is not None:
            self._out_pub.publish(bgr_to_image(self._last_output, msg.header))
        now = time.monotonic()
        if now - self._last_no_face_log >= float(self.p["no_face_log_period_s"]):
            what = "re-publishing the last rendered image" if repeat else "publishing nothing"
            self.get_logger().info(f"no face in {self._no_face_since_log} frame(s) on "
                                   f"'{self._sub.topic_name if self._sub else 'image'}': {what}")
            self._last_no_face_log, self._no_face_since_log = now, 0

    # ---------------------------------------------------------------- health
    def _on_timer(self) -> None:
        self._diag_pub.publish(self.diagnostics())

    def diagnostics(self) -> DiagnosticArray:
        """Current health (also published on /diagnostics)."""
        with self._cv:
            stats = dict(self.stats)
            proc = sorted(self._proc_ms)
        st = DiagnosticStatus()
        st.name = f"{self.get_name()}: face reenactment"
        st.hardware_id = self.get_fully_qualified_name()
        if self._model_error and self.reenactor is None:
            st.level, st.message = DiagnosticStatus.ERROR, f"no generator: {self._model_error}"
        elif not self._active:
            st.level, st.message = DiagnosticStatus.WARN, "inactive"
        elif stats.get("received", 0) and not stats.get("rendered", 0):
            st.level, st.message = DiagnosticStatus.WARN, "no face seen yet"
        else:
            st.level, st.message = DiagnosticStatus.OK, "ok"
        values = {"processing_p50_ms": f"{proc[len(proc) // 2] if proc else 0.0:.1f}", "model": self._describe(),
                  "last_error": self._last_error, "model_error": self._model_error}
        return self._diagnostic_array(st, values, stats, ("received", "rendered", "no_face", "dropped", "bad_frames",
                                                          "errors", "reloads", "reloads_refused"))


def main(args=None) -> None:
    run_node(FaceReenactmentNode, args, threads=2)  # services answer while on_configure loads the model


if __name__ == "__main__":
    main()
