"""Attributes per tracked face on the ``attributes`` topic: same ids and header as ``detections``."""

import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402


def test_attributes_follow_tracks():
    try:
        from face_tracker_core.attributes.predictor import AttributePredictor

        AttributePredictor()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no attribute model available: {exc}")
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="default"), Parameter("no_input_warn_s", value=60.0),
            Parameter("attributes.enabled", value=True), Parameter("attributes.threshold", value=0.0),
            Parameter("attributes.top_k", value=3)]))
        helper = ros.node("helper")
        dets = Collector(helper, Detection2DArray, "detections")
        attrs = Collector(helper, Detection2DArray, "attributes")
        pub = helper.create_publisher(Image, "image", 10)
        ros.wait_matched(pub)
        cam = SyntheticCamera(640, 480, 10.0)
        for i in range(6):
            msg = bgr_to_image(cam.read(), Image().header, "bgr8")
            msg.header.stamp.sec, msg.header.stamp.nanosec = 50, i * 100_000_000
            msg.header.frame_id = "camera_optical_frame"
            pub.publish(msg)
            assert ros.wait_for(lambda: len(attrs.snapshot()) >= i + 1 and len(dets.snapshot()) >= i + 1, 60)
        assert node.stats["errors"] == 0
    pairs = 0
    for a in attrs.snapshot():
        d = next(m for m in dets.snapshot() if m.header.stamp == a.header.stamp)
        assert a.header.frame_id == "camera_optical_frame"
        ids = {x.id for x in d.detections}
        for x in a.detections:
            assert x.id in ids and x.header.stamp == a.header.stamp
            assert 1 <= len(x.results) <= 3
            assert all(0.0 <= r.hypothesis.score <= 1.0 and r.hypothesis.class_id for r in x.results)
            pairs += 1
    assert pairs >= 3, "attributes never arrived for the tracked face"
