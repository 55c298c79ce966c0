"""Live enrolment and identification through the tracker node (real rclpy graph, real photos).

A person is enrolled by publishing a name on ``enroll`` while their face is in view; afterwards
new photos of that person are named in ``detections`` (``results[1]``), and another person's are not.
"""

import glob
import os
import time

import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.imaging import letterbox, read_image  # noqa: E402
from face_tracker_core.infer import make_detector  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402


def _one_face_photos(folder, det, need):
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*.jpg"))):
        img = letterbox(read_image(path), (640, 480))[0]
        faces = [d for d in det.detect(img) if d.score >= 0.5]
        if len(faces) == 1 and faces[0].box.width >= 60:
            out.append(img)
        if len(out) == need:
            return out
    return None


@pytest.fixture(scope="module")
def people():
    from conftest import shared_path

    root = shared_path("identity", "celeba")
    det = make_detector("default")
    found = []
    for person in sorted(os.listdir(root)):
        photos = _one_face_photos(os.path.join(root, person), det, 4 if not found else 2)
        if photos:
            found.append((person, photos))
        if len(found) == 2:
            return found
    pytest.skip("not enough single-face photos")


class Clock:
    def __init__(self):
        self.t = 100.0

    def header(self, gap=0.1):
        self.t += gap
        h = Image().header
        h.stamp.sec, h.stamp.nanosec = int(self.t), int(round((self.t % 1) * 1e9))
        h.frame_id = "camera_optical_frame"
        return h


@pytest.mark.parametrize("own_process", [True, False], ids=["embedder_process", "inline"])
def test_enrol_then_identify(people, tmp_path, own_process):
    """Enrol through the topic, then new photos of the person are named, a stranger's are not;
    with the embedder in its own process (the default) the name comes a few frames later."""
    (alice_id, alice), (bob_id, bob) = people
    gallery = str(tmp_path / "gallery.db")
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="default"), Parameter("no_input_warn_s", value=60.0),
            Parameter("recognition.enabled", value=True), Parameter("recognition.gallery_path", value=gallery),
            Parameter("recognition.enroll_frames", value=4),
            Parameter("recognition.own_process", value=own_process)]))
        helper = ros.node("helper")
        dets = Collector(helper, Detection2DArray, "detections")
        pub = helper.create_publisher(Image, "image", 10)
        enroll = helper.create_publisher(String, "enroll", 10)
        ros.wait_matched(pub)
        ros.wait_matched(enroll)
        clock = Clock()

        def send(img, gap=0.1):
            msg = bgr_to_image(img, clock.header(gap), "bgr8")
            stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)
            pub.publish(msg)

            def same(m):
                return (m.header.stamp.sec, m.header.stamp.nanosec) == stamp

            assert ros.wait_for(lambda: dets.find(same) is not None, 60)
            return dets.find(same)

        def names(img):
            """Show a photo (a person stepping in) until a name comes; the names of that frame.

            Inline, the name is there as soon as the track is confirmed (3rd frame at the latest);
            with the embedder process, the frames go on while it computes (bounded wait)."""
            send(img, gap=5.0)  # long gap: the previous person's track is gone
            deadline = time.monotonic() + 60.0
            for k in range(200):
                out = send(img)
                found = [d.results[1].hypothesis.class_id for d in out.detections if len(d.results) > 1]
                if found or (not own_process and k >= 1) or time.monotonic() > deadline:
                    return found
                time.sleep(0.03)
            return found

        send(alice[0])
        enroll.publish(String(data="alice"))
        for k in range(12):  # a live camera: the same face, moving a little
            shifted = np.roll(alice[0], k * 2, axis=1)
            send(shifted)
            if node.stats["enrolled"]:
                break
        assert node.stats["enrolled"] == 1 and node.stats["enroll_failed"] == 0
        from face_tracker_core.recognition import Gallery

        with Gallery(gallery, readonly=True) as g:
            assert [p.name for p in g.people()] == ["alice"]
        diag = {kv.key: kv.value for kv in node.diagnostics().status[0].values}
        if own_process:  # the embedding process is reported (and alive)
            assert diag["recognition_process"].startswith("pid ") and diag["recognition_errors"] == "0"
        else:
            assert "recognition_process" not in diag
        named_alice = [names(img) for img in alice[1:]]
        named_bob = [names(img) for img in bob]
    assert sum(n == ["alice"] for n in named_alice) >= 2, (alice_id, named_alice)
    assert all("alice" not in n for n in named_bob), (bob_id, named_bob)
    assert all(n == ["unknown"] for n in named_bob), named_bob
