"""Face reenactment node in a real rclpy graph: another speaker's frames in, the target's face out."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

# ros_helpers first: importing it sets the DDS environment
from ros_helpers import (Collector, RosHarness, header_key, send_and_wait,  # noqa: I100
                         stamped_header)

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from face_tracker_core.reenact.renderer import DEFAULT_MODEL  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image, image_to_bgr  # noqa: E402
from face_tracker_ros.face_reenactment_node import FaceReenactmentNode  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isfile(DEFAULT_MODEL), reason="shipped reenactment generator missing")


def _header(i: int) -> Header:
    return stamped_header(2000 + i, 777, f"driver_cam_{i}")


@pytest.fixture(scope="module")
def frames(request):
    from conftest import shared_path

    cap = cv2.VideoCapture(shared_path("video", "talking_face_2.mp4"))
    out = []
    for i in range(60):
        ok, f = cap.read()
        if not ok:
            break
        if i % 15 == 0:
            out.append(f)
    cap.release()
    return out


@pytest.fixture(scope="module")
def graph():
    with RosHarness() as ros:
        node = ros.add(FaceReenactmentNode(context=ros.context, parameter_overrides=[
            Parameter("publish_side_by_side", value=True),
            Parameter("no_face_log_period_s", value=0.1)]))
        helper = ros.node("reenact_test_helper")
        pub = helper.create_publisher(Image, "image", 10)
        out = Collector(helper, Image, "image_reenacted", image_qos(False, 10))
        sbs = Collector(helper, Image, "image_side_by_side", image_qos(False, 10))
        ros.wait_matched(pub, timeout=90)  # the subscription exists once the generator is loaded
        assert ros.wait_for(lambda: node._out_pub is not None and node._out_pub.get_subscription_count() >= 1, 10)
        yield ros, node, pub, out, sbs


def test_other_speaker_frames_come_back_rendered_with_the_same_header(graph, frames):
    ros, node, pub, out, sbs = graph
    outputs = []
    for i, f in enumerate(frames):
        msg = bgr_to_image(f, _header(i), "rgb8" if i % 2 else "bgr8")
        got = send_and_wait(ros, pub, out, msg)
        assert got is not None, f"no rendered image for frame {i}"
        assert header_key(got.header) == header_key(msg.header)
        assert (got.height, got.width, got.encoding) == (256, 256, "bgr8")
        img = image_to_bgr(got)
        assert img.std() > 20
        outputs.append(img)
        assert ros.wait_for(lambda: sbs.find(lambda m: header_key(m.header) == header_key(msg.header)) is not None, 10)
    side = sbs.find(lambda m: header_key(m.header) == header_key(_header(0)))
    assert side.height == 256 and side.width > 3 * 256 - 1
    # The driver's expression changes, so do the rendered faces.
    assert max(np.abs(outputs[0].astype(int) - o).mean() for o in outputs[1:]) > 1.0
    diag = {kv.key: kv.value for kv in node.diagnostics().status[0].values}
    assert int(diag["rendered"]) >= len(frames) and diag["errors"] == "0"


def test_no_face_publishes_nothing_or_the_last_frame(graph, frames):
    ros, node, pub, out, _ = graph
    assert send_and_wait(ros, pub, out, bgr_to_image(frames[0], _header(100))) is not None
    blank = np.full((240, 320, 3), 90, np.uint8)
    pub.publish(bgr_to_image(blank, _header(101)))
    assert ros.wait_for(lambda: node.stats["no_face"] >= 1, 20)
    assert out.find(lambda m: header_key(m.header) == header_key(_header(101))) is None
    # Policy "last": the previous rendered image again, under the new frame's header.
    assert node.set_parameters([Parameter("no_face", value="last")])[0].successful
    try:
        got = send_and_wait(ros, pub, out, bgr_to_image(blank, _header(102)))
        assert got is not None
        last = out.find(lambda m: header_key(m.header) == header_key(_header(100)))
        assert bytes(got.data) == bytes(last.data)
    finally:
        node.set_parameters([Parameter("no_face", value="skip")])


def test_parameters_are_described_and_bad_models_refused(graph, frames, tmp_path):
    ros, node, pub, out, _ = graph
    for name in node._parameters:
        if name in ("use_sim_time", "start_type_description_service"):
            continue
        assert node.describe_parameter(name).description, f"{name} has no description"
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"junk")
    res = node.set_parameters([Parameter("model_path", value=str(bad))])[0]
    assert not res.successful and "broken" in res.reason
    assert node.get_parameter("model_path").value == ""
    assert not node.set_parameters([Parameter("normalise", value="sideways")])[0].successful
    assert not node.set_parameters([Parameter("no_face", value="blur")])[0].successful
    # A valid change reloads between frames and keeps rendering.
    reloads = node.stats["reloads"]
    assert node.set_parameters([Parameter("normalise", value="similarity")])[0].successful
    assert node.reenactor.normalise == "similarity" and node.stats["reloads"] == reloads + 1
    assert send_and_wait(ros, pub, out, bgr_to_image(frames[1], _header(200))) is not None
    node.set_parameters([Parameter("normalise", value="relative")])
