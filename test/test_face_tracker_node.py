"""Face tracker node in a real rclpy graph (publisher -> node -> subscriber, one process)."""

import glob
import os

import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.data.labelme import load_labelme  # noqa: E402
from face_tracker_core.imaging import read_image  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image, msg_to_bbox  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402

ENCODINGS = ["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "yuv422", "yuv422_yuy2"]


def _header(i: int) -> Header:
    h = Header()
    h.stamp.sec, h.stamp.nanosec = 1000 + i, 12345
    h.frame_id = f"cam_{i}_optical_frame"
    return h


def _same_header(a: Header, b: Header) -> bool:
    return (a.stamp.sec, a.stamp.nanosec, a.frame_id) == (b.stamp.sec, b.stamp.nanosec, b.frame_id)


@pytest.fixture
def graph():
    """(harness, tracker node, image publisher, detections collector, annotated collector)."""
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="haar"),
            Parameter("tracking.enabled", value=False),
            Parameter("no_input_warn_s", value=60.0)]))
        helper = ros.node("test_helper")
        pub = helper.create_publisher(Image, "image", 10)
        dets = Collector(helper, Detection2DArray, "detections")
        ann = Collector(helper, Image, "image_annotated", image_qos(False, 10))
        ros.wait_matched(pub)
        assert ros.wait_for(lambda: node._det_pub is not None and
                            node._det_pub.get_subscription_count() >= 1, 10)
        yield ros, node, pub, dets, ann


def _send_and_wait(ros, pub, dets, msg, timeout=20.0):
    pub.publish(msg)
    ok = ros.wait_for(lambda: dets.find(lambda m: _same_header(m.header, msg.header)) is not None, timeout)
    return dets.find(lambda m: _same_header(m.header, msg.header)) if ok else None


def test_real_photos_in_every_encoding(graph, shared_data):
    ros, node, pub, dets, ann = graph
    folder = shared_data("detection", "celeba_one_face")
    records = [load_labelme(j) for j in sorted(glob.glob(os.path.join(folder, "*.json")))[:8]]
    i = 0
    for rec in records:
        img = read_image(rec.image_path)
        for enc in ENCODINGS:
            crop = img[:, : img.shape[1] // 2 * 2]  # YUV 4:2:2 needs an even width
            msg = bgr_to_image(crop, _header(i), enc)
            got = _send_and_wait(ros, pub, dets, msg)
            assert got is not None, f"no detections for {rec.image_path} as {enc}"
            assert _same_header(got.header, msg.header)
            assert all(_same_header(d.header, msg.header) for d in got.detections)
            ious = [msg_to_bbox(d.bbox).iou(rec.boxes[0]) for d in got.detections]
            assert max(ious, default=0.0) >= 0.4, f"{rec.image_path} as {enc}: IoUs {ious}"
            assert all(d.results[0].hypothesis.class_id == "face" for d in got.detections)
            assert all(0.0 <= d.results[0].hypothesis.score <= 1.0 for d in got.detections)
            i += 1
    assert ros.wait_for(lambda: any(_same_header(m.header, _header(i - 1)) for m in ann.snapshot()), 10)
    a = ann.find(lambda m: _same_header(m.header, _header(i - 1)))
    assert (a.height, a.width, a.encoding) == (msg.height, msg.width, "bgr8")
    assert node.stats["bad_frames"] == 0


def _bad_frames():
    good = bgr_to_image(np.full((48, 64, 3), 127, np.uint8), _header(0), "bgr8")

    def mk(**kw):
        m = Image()
        m.height, m.width, m.encoding, m.step = good.height, good.width, good.encoding, good.step
        m.data = good.data
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    return {
        "zero size": mk(height=0, width=0, step=0, data=b""),
        "step too small": mk(step=10),
        "short data": mk(data=bytes(good.data)[:1000]),
        "unknown encoding": mk(encoding="fancy42"),
        "depth image": mk(encoding="32FC1", step=64 * 4, data=np.zeros((48, 64), np.float32).tobytes()),
    }


def test_bad_frames_are_skipped_and_node_keeps_running(graph, shared_data):
    ros, node, pub, dets, ann = graph
    rec = load_labelme(sorted(glob.glob(os.path.join(shared_data("detection", "celeba_one_face"), "*.json")))[0])
    img = read_image(rec.image_path)
    assert _send_and_wait(ros, pub, dets, bgr_to_image(img, _header(1), "bgr8")) is not None
    for k, (name, bad) in enumerate(_bad_frames().items()):
        before = node.stats["bad_frames"]
        bad.header = _header(100 + k)
        pub.publish(bad)
        assert ros.wait_for(lambda: node.stats["bad_frames"] == before + 1, 10), name
        assert name and node.stats["errors"] == 0
        # the next good frame is processed
        got = _send_and_wait(ros, pub, dets, bgr_to_image(img, _header(200 + k), "bgr8"))
        assert got is not None and got.detections, f"good frame after '{name}' not processed"
    assert not any(_same_header(m.header, _header(100 + k)) for m in dets.snapshot() for k in range(5))
    diag = {kv.key: kv.value for kv in node.diagnostics().status[0].values}
    assert diag["bad_frames"] == "5" and "depth/float" in diag["last_error"]


def test_diagnostics_are_published(graph):
    from diagnostic_msgs.msg import DiagnosticArray

    ros, node, pub, dets, ann = graph
    col = Collector(ros.nodes[1], DiagnosticArray, "/diagnostics")
    assert ros.wait_for(lambda: len(col.snapshot()) > 0, 5)
    st = col.snapshot()[-1].status[0]
    keys = {kv.key for kv in st.values}
    assert {"input_rate_hz", "latency_p95_ms", "dropped", "bad_frames", "detector"} <= keys
