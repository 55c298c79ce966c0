"""tracking.enabled, tracking.min_hits and tracking.max_age_s change a running tracker node.

They are writable parameters: ``ros2 param set`` must change what the node publishes, between two
frames, without a reconfigure. Frames come from the embedded synthetic camera (a moving face),
published as Images; the node uses the Haar detector (fast on CI).
"""

import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.sources import open_source  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402


class _Stream:
    """Publishes synthetic-camera frames one at a time and returns the node's answer to each."""

    def __init__(self, ros, pub, dets) -> None:
        self.ros, self.pub, self.dets = ros, pub, dets
        self.camera = open_source("synthetic", 320, 240, 30.0)
        self.k = 0

    def step(self):
        """Publish the next frame (stamp k/30 s); returns the Detection2DArray answering it."""
        self.k += 1
        msg = bgr_to_image(self.camera.read(), Image().header, "bgr8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + self.k // 30, (self.k % 30) * 33_333_333
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)

        def same(m):
            return (m.header.stamp.sec, m.header.stamp.nanosec) == key

        self.pub.publish(msg)
        assert self.ros.wait_for(lambda: self.dets.find(same) is not None, 30), f"frame {self.k} not answered"
        return self.dets.find(same)

    def ids(self, n):
        """Track ids reported for each of the next ``n`` frames (``[]``: nothing reported)."""
        return [[d.id for d in self.step().detections] for _ in range(n)]


@pytest.fixture
def stream():
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="haar"), Parameter("no_input_warn_s", value=60.0),
            Parameter("publish_annotated", value=False), Parameter("tracking.min_hits", value=2)]))
        helper = ros.node("tracking_params_helper")
        dets = Collector(helper, Detection2DArray, "detections")
        pub = helper.create_publisher(Image, "image", 10)
        ros.wait_matched(pub)
        assert ros.wait_for(lambda: node._det_pub is not None and node._det_pub.get_subscription_count() >= 1, 30)
        yield node, _Stream(ros, pub, dets)


def _set(node, name, value):
    res = node.set_parameters([Parameter(name, value=value)])[0]
    assert res.successful, res.reason


def test_tracking_enabled_applies_live(stream):
    node, s = stream
    tracked = s.ids(6)
    assert all(ids and all(ids) for ids in tracked[2:]), f"confirmed tracks carry ids: {tracked}"
    _set(node, "tracking.enabled", False)
    raw = s.ids(3)
    assert all(ids and not any(ids) for ids in raw), f"tracking off: raw detections, no ids: {raw}"
    _set(node, "tracking.enabled", True)
    again = s.ids(6)
    assert not again[0], f"tracking back on starts afresh (min_hits=2): {again}"
    new_ids = {i for ids in again for i in ids}
    old_ids = {i for ids in tracked for i in ids}
    assert new_ids and not new_ids & old_ids, f"a new track, never an old id: {old_ids} -> {new_ids}"


def test_min_hits_and_max_age_apply_live(stream):
    node, s = stream
    _set(node, "tracking.enabled", False)  # forget the current track...
    s.ids(1)
    _set(node, "tracking.min_hits", 5)
    _set(node, "tracking.enabled", True)   # ...so that the next one must earn 5 hits
    ids = s.ids(8)
    first = next(i for i, x in enumerate(ids) if x)
    assert first == 4, f"min_hits=5: first report at the 5th frame, got {ids}"
    _set(node, "tracking.max_age_s", 7.5)
    s.ids(1)
    assert node.pipeline.tracker.config.max_age_s == 7.5
    assert node.pipeline.tracker.config.min_hits == 5
