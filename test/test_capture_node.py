"""Capture node in a real rclpy graph: publisher -> face_capture_node -> files (one process)."""

import glob
import json
import os

import pytest

from ros_helpers import RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from face_tracker_core.data.capture import list_captured  # noqa: E402
from face_tracker_core.data.dataset import import_folder  # noqa: E402
from face_tracker_core.data.labelme import REVIEW_FLAG, load_labelme, read_labelme  # noqa: E402
from face_tracker_core.imaging import read_image  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.face_capture_node import FaceCaptureNode  # noqa: E402
from test_data_capture import read_only_dir  # noqa: E402


@pytest.fixture(scope="module")
def photos():
    """Real one-face photos (BGR) and their labelled box."""
    from conftest import shared_path

    folder = shared_path("detection", "celeba_one_face")
    recs = [load_labelme(j) for j in sorted(glob.glob(os.path.join(folder, "*.json")))[:6]]
    return [(read_image(r.image_path), r.boxes[0]) for r in recs]


def _msg(bgr, i):
    h = Header()
    h.stamp.sec, h.stamp.nanosec = 2000 + i, 500
    h.frame_id = "camera_optical_frame"
    return bgr_to_image(bgr, h, "rgb8")


class Rig:
    """Harness + capture node + publisher + service clients."""

    def __init__(self, ros, out_dir, **params):
        overrides = [Parameter("output_dir", value=str(out_dir)), Parameter("min_interval_s", value=0.0),
                     Parameter("detector.backend", value="haar")]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        self.ros = ros
        self.node = ros.add(FaceCaptureNode(context=ros.context, parameter_overrides=overrides))
        helper = ros.node(f"capture_test_helper_{id(self)}")
        self.pub = helper.create_publisher(Image, "image", 10)
        self.enable_cli = helper.create_client(SetBool, "/face_capture/enable")
        self.snap_cli = helper.create_client(Trigger, "/face_capture/snapshot")
        ros.wait_matched(self.pub)
        assert self.enable_cli.wait_for_service(timeout_sec=10) and self.snap_cli.wait_for_service(timeout_sec=10)

    def call(self, client, request, timeout=20.0):
        fut = client.call_async(request)
        assert self.ros.wait_for(fut.done, timeout), "service call timed out"
        return fut.result()

    def enable(self, on):
        return self.call(self.enable_cli, SetBool.Request(data=on))

    def snapshot(self):
        return self.call(self.snap_cli, Trigger.Request())

    def send_until_saved(self, bgr, i, expect_total, timeout=20.0):
        """Publish (again) until the node reports ``expect_total`` saved frames (best effort QoS may drop)."""
        msg = _msg(bgr, i)
        for _ in range(int(timeout / 0.5)):
            self.pub.publish(msg)
            if self.ros.wait_for(lambda: self.node.status()["saved_total"] >= expect_total, 0.5):
                return True
        return False

    def send_and_settle(self, bgr, i):
        """Publish a frame that must NOT be saved; wait until the node has seen it."""
        msg = _msg(bgr, i)
        for _ in range(40):
            self.pub.publish(msg)
            if self.ros.wait_for(lambda: self.node._latest is not None and
                                 self.node._latest.header.stamp.sec == 2000 + i, 0.25):
                return
        raise AssertionError("frame never reached the node")


def test_capture_labels_services_and_resume(tmp_path, photos):
    out = tmp_path / "captures"
    with RosHarness() as ros:
        rig = Rig(ros, out, write_labels=True)
        for i, (bgr, _) in enumerate(photos[:3]):
            assert rig.send_until_saved(bgr, i, i + 1), f"frame {i} not saved: {rig.node.status()}"
        files = list_captured(str(out))
        assert len(files) == 3
        for (bgr, truth), path in zip(photos, files):
            assert read_image(path).shape == bgr.shape
            rec, _ = read_labelme(os.path.splitext(path)[0] + ".json")
            doc = json.load(open(rec.json_path))
            assert doc["flags"] == {REVIEW_FLAG: True} and doc["frame_id"] == "camera_optical_frame"
            assert doc["stamp"] == pytest.approx(2000 + files.index(path) + 500e-9)
            assert rec.boxes and max(b.iou(truth) for b in rec.boxes) > 0.3, f"{path}: labels miss the face"

        # stop: frames are no longer saved; snapshot still saves the newest frame on demand
        r = rig.enable(False)
        assert r.success and not rig.node.enabled
        rig.send_and_settle(photos[3][0], 3)
        assert len(list_captured(str(out))) == 3
        r = rig.snapshot()
        assert r.success and os.path.isfile(r.message) and len(list_captured(str(out))) == 4
        assert read_image(r.message).shape == photos[3][0].shape
        # start again
        r = rig.enable(True)
        assert r.success and "capturing" in r.message
        assert rig.send_until_saved(photos[4][0], 4, 5)
    first_run = {p: open(p, "rb").read() for p in glob.glob(str(out / "*"))}
    assert len(first_run) == 10  # 5 frames + 5 LabelMe files

    # second run, same folder: every earlier file is kept, numbering continues
    with RosHarness() as ros:
        rig = Rig(ros, out, write_labels=False)
        assert rig.send_until_saved(photos[5][0], 5, 1)
        r = rig.snapshot()
        assert r.success
    for p, data in first_run.items():
        assert open(p, "rb").read() == data, f"{p} changed by the second run"
    files = list_captured(str(out))
    assert len(files) == 7 and files[:5] == sorted(p for p in first_run if not p.endswith(".json"))
    rep = import_folder(str(out), negatives=True)
    assert rep.ok and len(rep.samples) == 7


def test_read_only_folder_is_a_clear_error_and_the_node_survives(tmp_path, photos):
    with read_only_dir(str(tmp_path / "ro")) as ro, RosHarness() as ros:
        rig = Rig(ros, ro)
        bgr = photos[0][0]
        rig.send_and_settle(bgr, 0)
        assert ros.wait_for(lambda: "not writable" in rig.node.status()["last_error"], 10), rig.node.status()
        assert not rig.node.enabled
        r = rig.enable(True)
        assert not r.success and "not writable" in r.message and ro in r.message
        r = rig.snapshot()
        assert not r.success and "not writable" in r.message
        # still alive: point it at a writable folder and capture
        good = tmp_path / "good"
        res = rig.node.set_parameters([Parameter("output_dir", value=str(good))])
        assert res[0].successful
        assert rig.enable(True).success
        assert rig.send_until_saved(bgr, 1, 1)
        assert len(list_captured(str(good))) == 1 and os.listdir(ro) == []


def test_bad_parameters_are_refused(tmp_path):
    with RosHarness() as ros:
        node = ros.add(FaceCaptureNode(context=ros.context, parameter_overrides=[
            Parameter("output_dir", value=str(tmp_path / "x")), Parameter("capture_on_start", value=False)]))
        assert not node.enabled
        assert not node.set_parameters([Parameter("prefix", value="a_b")])[0].successful
        assert not node.set_parameters([Parameter("jpeg_quality", value=101)])[0].successful
        assert not node.set_parameters([Parameter("image_format", value="gif")])[0].successful
        assert not os.path.exists(tmp_path / "x")  # nothing is created before the first save
