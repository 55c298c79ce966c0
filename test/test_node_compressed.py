"""image_transport: compressed in real rclpy graphs: JPEG/PNG in, corrupt payloads counted, JPEG out;
the tracker, the capture and the reenactment nodes."""

import glob
import os

import cv2
import numpy as np
import pytest

# ros_helpers first: importing it sets the DDS environment
from ros_helpers import (Collector, RosHarness, header_key, send_and_wait,  # noqa: I100
                         stamped_header)

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.data.labelme import load_labelme  # noqa: E402
from face_tracker_core.imaging import read_image  # noqa: E402
from face_tracker_ros.conversions import bgr_to_compressed, image_to_bgr, msg_to_bbox  # noqa: E402
from face_tracker_ros.face_capture_node import FaceCaptureNode  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402


@pytest.fixture(scope="module")
def photos():
    """Real one-face photos (BGR) with their labelled box."""
    from conftest import shared_path

    folder = shared_path("detection", "celeba_one_face")
    recs = [load_labelme(j) for j in sorted(glob.glob(os.path.join(folder, "*.json")))[:3]]
    return [(read_image(r.image_path), r.boxes[0]) for r in recs]


def _header(i: int) -> Header:
    return stamped_header(3000 + i, 4242, f"cam_{i}_optical_frame")


@pytest.fixture(scope="module")
def graph():
    """(harness, tracker node reading image/compressed, publisher, detections, annotated JPEG, diagnostics)."""
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="haar"), Parameter("tracking.enabled", value=False),
            Parameter("image_transport", value="compressed"), Parameter("publish_annotated", value=False),
            Parameter("publish_annotated_compressed", value=True), Parameter("no_input_warn_s", value=60.0),
            Parameter("diagnostics_period_s", value=0.2)]))
        helper = ros.node("compressed_test_helper")
        pub = helper.create_publisher(CompressedImage, "image/compressed", 10)
        dets = Collector(helper, Detection2DArray, "detections")
        ann = Collector(helper, CompressedImage, "image_annotated/compressed", image_qos(False, 10))
        diag = Collector(helper, DiagnosticArray, "/diagnostics")
        ros.wait_matched(pub, timeout=60)   # the node subscribes once active
        assert ros.wait_for(lambda: node._active and node._det_pub.get_subscription_count() >= 1, 10)
        yield ros, node, pub, dets, ann, diag


def test_subscribes_to_the_compressed_topic(graph):
    _, node, *_ = graph
    assert node._sub.topic_name == "/image/compressed" and node._sub.msg_type is CompressedImage


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_in_gives_detections_with_the_input_header(graph, photos, fmt):
    ros, node, pub, dets, ann, _ = graph
    for i, (img, box) in enumerate(photos):
        msg = bgr_to_compressed(img, _header(i + (0 if fmt == "jpeg" else 10)), fmt, 90)
        got = send_and_wait(ros, pub, dets, msg)
        assert got is not None, f"no detections for photo {i} as {fmt}"
        assert header_key(got.header) == header_key(msg.header)
        assert all(header_key(d.header) == header_key(msg.header) for d in got.detections)
        assert max((msg_to_bbox(d.bbox).iou(box) for d in got.detections), default=0.0) >= 0.4
    # the annotated output comes back as JPEG with the same header and size
    assert ros.wait_for(lambda: ann.find(lambda m: header_key(m.header) == header_key(msg.header)) is not None, 10)
    out = ann.find(lambda m: header_key(m.header) == header_key(msg.header))
    assert out.format == "bgr8; jpeg compressed bgr8"
    assert image_to_bgr(out).shape == photos[-1][0].shape
    assert node.stats["bad_frames"] == 0 and node.stats["errors"] == 0


def _corrupt(good: bytes):
    return {
        "truncated JPEG": CompressedImage(format="jpeg", data=good[: len(good) // 2]),
        "JPEG header only": CompressedImage(format="jpeg", data=good[:600]),
        "random bytes": CompressedImage(format="jpeg", data=np.random.default_rng(0).bytes(5000)),
        "garbled JPEG body": CompressedImage(format="jpeg", data=b"\xff\xd8" + bytes(3000) + b"\xff\xd9"),
        "empty": CompressedImage(format="jpeg", data=b""),
        "truncated PNG": CompressedImage(format="png", data=b"\x89PNG\r\n\x1a\n" + bytes(100)),
        "compressedDepth": CompressedImage(format="16UC1; compressedDepth png", data=good),
    }


def test_corrupt_payloads_are_counted_bad_frames_in_diagnostics(graph, photos):
    ros, node, pub, dets, _, diag = graph
    img = photos[0][0]
    good = bytes(bgr_to_compressed(img, _header(0), "jpeg", 90).data)
    before = node.stats["bad_frames"]
    for k, (name, bad) in enumerate(_corrupt(good).items()):
        bad.header = _header(100 + k)
        pub.publish(bad)
        assert ros.wait_for(lambda: node.stats["bad_frames"] == before + k + 1, 20), name
        # the node is alive: the next good frame is processed
        got = send_and_wait(ros, pub, dets, bgr_to_compressed(img, _header(200 + k), "jpeg", 90))
        assert got is not None and got.detections, f"good frame after '{name}' not processed"
    n = before + len(_corrupt(good))
    assert node.stats["errors"] == 0
    assert not any(header_key(m.header) == header_key(_header(100 + k)) for m in dets.snapshot() for k in range(10))

    def counted(m):
        vals = {kv.key: kv.value for st in m.status for kv in st.values}
        return vals.get("bad_frames") == str(n) and vals.get("errors") == "0"

    assert ros.wait_for(lambda: diag.find(counted) is not None, 20), "bad_frames not in /diagnostics"


def test_capture_node_saves_compressed_frames_and_counts_bad_ones(photos, tmp_path):
    img = photos[1][0]
    with RosHarness() as ros:
        node = ros.add(FaceCaptureNode(context=ros.context, parameter_overrides=[
            Parameter("output_dir", value=str(tmp_path)), Parameter("min_interval_s", value=0.0),
            Parameter("image_transport", value="compressed")]))
        helper = ros.node("capture_compressed_helper")
        pub = helper.create_publisher(CompressedImage, "image/compressed", 10)
        ros.wait_matched(pub)
        assert node._sub.topic_name == "/image/compressed"
        good = bgr_to_compressed(img, _header(1), "jpeg", 95)
        pub.publish(CompressedImage(header=_header(2), format="jpeg", data=bytes(good.data)[:1000]))
        assert ros.wait_for(lambda: node.status()["bad_frames"] == 1, 20)
        pub.publish(good)
        assert ros.wait_for(lambda: node.status()["saved_total"] >= 1, 20)
    saved = glob.glob(os.path.join(str(tmp_path), "*.jpg"))
    assert len(saved) == 1 and read_image(saved[0]).shape == img.shape


def test_reenactment_node_renders_compressed_frames():
    from conftest import shared_path
    from face_tracker_core.reenact.renderer import DEFAULT_MODEL
    from face_tracker_ros.face_reenactment_node import FaceReenactmentNode

    if not os.path.isfile(DEFAULT_MODEL):
        pytest.skip("shipped reenactment generator missing")
    cap = cv2.VideoCapture(shared_path("video", "talking_face_2.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    with RosHarness() as ros:
        node = ros.add(FaceReenactmentNode(context=ros.context, parameter_overrides=[
            Parameter("image_transport", value="compressed")]))
        helper = ros.node("reenact_compressed_helper")
        pub = helper.create_publisher(CompressedImage, "image/compressed", 10)
        out = Collector(helper, Image, "image_reenacted", image_qos(False, 10))
        assert ros.wait_for(lambda: node._active, 90), "generator not loaded"
        ros.wait_matched(pub)
        assert node._sub.topic_name == "/image/compressed"
        assert ros.wait_for(lambda: node._out_pub is not None and node._out_pub.get_subscription_count() >= 1, 10)
        msg = bgr_to_compressed(frame, _header(500), "jpeg", 90)
        pub.publish(msg)
        assert ros.wait_for(lambda: out.find(lambda m: header_key(m.header) == header_key(msg.header)) is not None, 60)
