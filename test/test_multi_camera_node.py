"""Multi-camera node in a real rclpy graph: two camera namespaces, one shared detector, one tracker each."""

import importlib.util
import os
import threading
import time

import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.multi_camera_node import MultiCameraNode, check_cameras  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402

CAMS = ("cam0", "cam1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _header(cam: str, i: int) -> Header:
    h = Header()
    h.stamp.sec, h.stamp.nanosec = 200 + i // 10, (i % 10) * 100_000_000 + (7 if cam == "cam1" else 3)
    h.frame_id = f"{cam}_optical_frame"
    return h


def _key(h):
    return (h.stamp.sec, h.stamp.nanosec, h.frame_id)


def test_check_cameras():
    assert check_cameras(["cam0", "front/left"]) == ["cam0", "front/left"]
    for bad in ([], ["cam0", "cam0"], ["/cam0"], ["0cam"], [""]):
        with pytest.raises(ValueError):
            check_cameras(bad)


def test_launch_file_gives_each_camera_a_source():
    path = os.path.join(ROOT, "launch", "multi_camera.launch.py")
    spec = importlib.util.spec_from_file_location("multi_camera_launch", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)   # needs no `launch` at import time
    assert mod.split_list(" left, right,,") == ["left", "right"]
    assert mod.camera_sources(["a", "b"], ["/dev/video0"]) == [("a", "/dev/video0"), ("b", "/dev/video0")]
    assert mod.camera_sources(["a", "b"], ["0", "2"]) == [("a", "0"), ("b", "2")]
    with pytest.raises(ValueError, match="3 cameras"):
        mod.camera_sources(["a", "b", "c"], ["0", "2"])


def test_two_cameras_each_get_their_own_detections():
    with RosHarness() as ros:
        node = ros.add(MultiCameraNode(context=ros.context, parameter_overrides=[
            Parameter("cameras", value=list(CAMS)), Parameter("detector.backend", value="haar")]))
        helper = ros.node("multi_helper")
        pubs = {c: helper.create_publisher(Image, f"{c}/image", 10) for c in CAMS}
        dets = {c: Collector(helper, Detection2DArray, f"{c}/detections") for c in CAMS}
        ann = Collector(helper, Image, "cam1/image_annotated", image_qos(False, 10))
        for p in pubs.values():
            ros.wait_matched(p)
        assert ros.wait_for(lambda: all(node.count_subscribers(f"{c}/detections") >= 1 for c in CAMS), 30)
        cams = node.cameras
        assert cams["cam0"].pipeline.detector is cams["cam1"].pipeline.detector   # one model
        assert cams["cam0"].pipeline.tracker is not cams["cam1"].pipeline.tracker  # one tracker each

        frames = {c: SyntheticCamera(640, 480, 10.0) for c in CAMS}
        sent = {c: [] for c in CAMS}
        for i in range(8):   # both cameras publish at once; each frame is answered on its own camera
            for c in CAMS:
                msg = bgr_to_image(frames[c].read(), _header(c, i), "bgr8")
                pubs[c].publish(msg)
                sent[c].append(_key(msg.header))
            assert ros.wait_for(lambda: all(any(_key(m.header) == sent[c][-1] for m in dets[c].snapshot())
                                            for c in CAMS), 30), f"frame {i} not answered on both cameras"
        for c in CAMS:
            got = dets[c].snapshot()
            assert [_key(m.header) for m in got] == sent[c], c   # own headers, in order, none from the other
            assert all(_key(d.header) == _key(m.header) for m in got for d in m.detections)
            assert sum(len(m.detections) for m in got) >= 4, f"{c}: the synthetic face was hardly found"
        assert ros.wait_for(lambda: any(m.header.frame_id == "cam1_optical_frame" for m in ann.snapshot()), 10)
        diag = {s.name.split(": ")[-1]: s for s in node.diagnostics().status}
        assert set(diag) == set(CAMS)
        for c in CAMS:
            values = {kv.key: kv.value for kv in diag[c].values}
            assert int(values["processed"]) == 8 and int(values["errors"]) == 0


def test_a_busy_camera_does_not_starve_the_other():
    """cam0 floods at ~100 fps while cam1 sends 5 frames: every cam1 frame is still answered."""
    with RosHarness() as ros:
        node = ros.add(MultiCameraNode(context=ros.context, parameter_overrides=[
            Parameter("cameras", value=list(CAMS)), Parameter("detector.backend", value="haar"),
            Parameter("publish_annotated", value=False)]))
        helper = ros.node("multi_flood_helper")
        pubs = {c: helper.create_publisher(Image, f"{c}/image", image_qos(False, 1)) for c in CAMS}
        dets = Collector(helper, Detection2DArray, "cam1/detections")
        for p in pubs.values():
            ros.wait_matched(p)
        frame = SyntheticCamera(640, 480, 10.0).read()
        stop = threading.Event()

        def flood():
            i = 0
            while not stop.is_set() and i < 3000:
                pubs["cam0"].publish(bgr_to_image(frame, _header("cam0", i), "bgr8"))
                i += 1
                time.sleep(0.01)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            for i in range(5):
                msg = bgr_to_image(frame, _header("cam1", i), "bgr8")
                pubs["cam1"].publish(msg)
                assert ros.wait_for(lambda: any(_key(m.header) == _key(msg.header) for m in dets.snapshot()), 30)
        finally:
            stop.set()
            t.join(timeout=5)
        assert node.cameras["cam0"].stats["processed"] >= 1
