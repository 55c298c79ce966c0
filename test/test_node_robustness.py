"""Face tracker node under faults: hot/bad model reload, overload, missing model, QoS mismatch."""

import os
import threading
import time

import cv2
import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402

ALT_CASCADE = os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_alt2.xml")


def _diag(node):
    return {kv.key: kv.value for kv in node.diagnostics().status[0].values}


class Streamer:
    """Publishes synthetic camera frames at ``fps`` from a thread until stopped."""

    def __init__(self, node, fps, size=(320, 240)):
        self.pub = node.create_publisher(Image, "image", image_qos(False, 1))
        self.node = node
        cam = SyntheticCamera(size[0], size[1], 30.0)
        self.frames = [cam.read() for _ in range(30)]
        self.fps, self.sent, self._stop = fps, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            msg = bgr_to_image(self.frames[self.sent % len(self.frames)], Image().header, "bgr8")
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.pub.publish(msg)
            self.sent += 1
            self._stop.wait(max(0.0, t0 + self.sent / self.fps - time.monotonic()))

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()
        self.thread.join(5)


def _tracker(ros, **params):
    base = {"detector.backend": "haar", "no_input_warn_s": 60.0}
    base.update(params)
    return ros.add(FaceTrackerNode(context=ros.context,
                                   parameter_overrides=[Parameter(k, value=v) for k, v in base.items()]))


def test_hot_reload_and_bad_reload(tmp_path):
    with RosHarness() as ros:
        node = _tracker(ros)
        helper = ros.node("helper")
        dets = Collector(helper, Detection2DArray, "detections")
        s = Streamer(helper, 15).start()
        try:
            ros.wait_matched(s.pub)
            assert ros.wait_for(lambda: len(dets.snapshot()) >= 3, 30)
            # a valid new model: swapped in without restarting the node
            res = node.set_parameters([Parameter("detector.model_path", value=ALT_CASCADE)])[0]
            assert res.successful, res.reason
            assert "alt2" in _diag(node)["detector"]
            n = len(dets.snapshot())
            assert ros.wait_for(lambda: len(dets.snapshot()) >= n + 3, 30), "no output after hot reload"
            # a corrupt model file: refused, the old model keeps running
            bad = tmp_path / "corrupt_cascade.xml"
            bad.write_bytes(b"<?xml version='1.0'?><opencv_storage><cascade>garbage")
            res = node.set_parameters([Parameter("detector.model_path", value=str(bad))])[0]
            assert not res.successful and "corrupt_cascade.xml" in res.reason
            assert node.get_parameter("detector.model_path").value == ALT_CASCADE
            assert "alt2" in _diag(node)["detector"] and _diag(node)["reloads_refused"] == "1"
            # a missing file: refused too
            res = node.set_parameters([Parameter("detector.model_path", value=str(tmp_path / "nope.xml"))])[0]
            assert not res.successful and "nope.xml" in res.reason
            n = len(dets.snapshot())
            assert ros.wait_for(lambda: len(dets.snapshot()) >= n + 3, 30), "no output after a refused reload"
            # reload service re-reads the current (good) file
            from std_srvs.srv import Trigger

            cli = helper.create_client(Trigger, "/face_tracker/reload_model")
            assert cli.wait_for_service(timeout_sec=10)
            fut = cli.call_async(Trigger.Request())
            assert ros.wait_for(fut.done, 30)
            assert fut.result().success, fut.result().message
            assert node.stats["errors"] == 0
        finally:
            s.stop()


def test_overload_keeps_latency_bounded():
    """A camera much faster than the model: stale frames are dropped, never queued."""
    with RosHarness() as ros:
        node = _tracker(ros)
        helper = ros.node("helper")
        s = Streamer(helper, 120, size=(640, 480)).start()
        try:
            ros.wait_matched(s.pub)
            assert ros.wait_for(lambda: node.stats["processed"] >= 8, 60)
            time.sleep(1.0)
        finally:
            s.stop()
        d = _diag(node)
        received, processed, dropped = node.stats["received"], node.stats["processed"], node.stats["dropped"]
        assert processed < received and dropped > 0
        assert dropped >= received - processed - 2  # every frame not processed was counted as dropped
        proc = float(d["processing_p50_ms"])
        assert float(d["latency_p95_ms"]) < 3 * proc + 50, d


def test_missing_model_keeps_node_up_and_reports(tmp_path):
    missing = str(tmp_path / "missing_model.tflite")
    with RosHarness() as ros:
        node = _tracker(ros, **{"detector.backend": "default", "detector.model_path": missing})
        assert ros.wait_for(lambda: node._model_error != "", 20)
        st = node.diagnostics().status[0]
        assert st.level == st.ERROR and "missing_model.tflite" in st.message
        assert node.pipeline is None  # configure failed: stays unconfigured, still spinning
        # fixing the parameter and configuring again recovers, without restarting the process
        res = node.set_parameters([Parameter("detector.model_path", value=ALT_CASCADE)])[0]
        assert res.successful, res.reason
        from rclpy.lifecycle import TransitionCallbackReturn

        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.pipeline is not None and "alt2" in node.pipeline.detector.describe()
        assert node.diagnostics().status[0].level != st.ERROR


def test_incompatible_qos_is_reported():
    with RosHarness() as ros:
        node = _tracker(ros, **{"image_qos.reliable": True})
        helper = ros.node("helper")
        helper.create_publisher(Image, "image", image_qos(False, 1))  # best effort offered
        assert ros.wait_for(lambda: node.stats["qos_incompatible"] >= 1, 20)


def test_track_ids_persist_on_a_moving_face():
    with RosHarness() as ros:
        node = _tracker(ros, **{"tracking.enabled": True, "tracking.min_hits": 2})
        helper = ros.node("helper")
        dets = Collector(helper, Detection2DArray, "detections")
        pub = helper.create_publisher(Image, "image", 10)
        ros.wait_matched(pub)
        cam = SyntheticCamera(640, 480, 10.0)  # 10 fps: large motion between frames
        for i in range(15):
            msg = bgr_to_image(cam.read(), Image().header, "bgr8")
            msg.header.stamp.sec, msg.header.stamp.nanosec = 10 + i // 10, (i % 10) * 100_000_000
            pub.publish(msg)
            assert ros.wait_for(lambda: node.stats["processed"] >= i + 1, 30)
        ids = [d.id for m in dets.snapshot() for d in m.detections]
        assert len(ids) >= 10 and all(ids)
        assert len(set(ids)) == 1, f"ids changed on one moving face: {ids}"
