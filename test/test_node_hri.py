"""REP-155 (ros4hri) output of the tracker node, in real rclpy graphs (one process).

A subscriber built from hri_msgs receives ``/humans/faces/tracked`` ids equal to the Detection2D ids
of the same frame, and per face ``roi``, ``cropped``, ``aligned`` and ``landmarks`` with the input
header; the per-face topics go away with the track. Off by default: no ``/humans`` topic, and
hri_msgs is never imported. Enabled without hri_msgs: configure fails with one clear error.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.hri_faces import check_id_prefix, crop_face, normalized_roi  # noqa: E402
from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_core.types import BBox  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image, msg_to_bbox  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402
from face_tracker_ros.hri_output import HRI_QOS  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tracker(ros, **params):
    base = {"detector.backend": "haar", "no_input_warn_s": 60.0, "tracking.min_hits": 2,
            "tracking.max_age_s": 0.3}
    base.update(params)
    return ros.add(FaceTrackerNode(context=ros.context,
                                   parameter_overrides=[Parameter(k, value=v) for k, v in base.items()]))


def _stamp(i: int):
    from std_msgs.msg import Header

    h = Header()
    h.stamp.sec, h.stamp.nanosec = 100 + i // 10, (i % 10) * 100_000_000  # 10 fps
    h.frame_id = "head_camera_optical_frame"
    return h


def _key(header):
    return (header.stamp.sec, header.stamp.nanosec, header.frame_id)


class _Stream:
    """Publishes frame i with stamp i and waits until the node has processed it (bounded)."""

    def __init__(self, ros, node, pub):
        self.ros, self.node, self.pub, self.i = ros, node, pub, 0
        self.cam = SyntheticCamera(640, 480, 10.0)

    def send(self, frame=None):
        frame = self.cam.read() if frame is None else frame
        msg = bgr_to_image(frame, _stamp(self.i), "bgr8")
        done = self.node.stats["processed"] + 1
        self.pub.publish(msg)
        self.i += 1
        assert self.ros.wait_for(lambda: self.node.stats["processed"] >= done, 30), f"frame {self.i - 1} lost"
        return msg, frame


def test_core_crops_and_roi():
    img = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    assert normalized_roi(BBox(-10, 48, 320, 600), 640, 480) == (0.0, 0.1, 0.5, 1.0)
    crop = crop_face(img, BBox(100, 100, 164, 228), (128, 128))   # 64x128 box -> 64x128 centred
    assert crop.shape == (128, 128, 3)
    assert not crop[:, :32].any() and not crop[:, 96:].any() and crop[:, 32:96].any()
    assert not crop_face(img, BBox(700, 10, 800, 50)).any()       # outside the frame: zeros, no error
    for bad in ("", "1f", "f__", "f-"):
        with pytest.raises(ValueError):
            check_id_prefix(bad)
    assert check_id_prefix("face_") == "face_"


def test_tracked_ids_equal_detection_ids_and_faces_published():
    msg_mod = pytest.importorskip("hri_msgs.msg", reason="hri_msgs not built (run scripts/setup.sh)")
    with RosHarness() as ros:
        node = _tracker(ros, **{"hri.enabled": True})
        helper = ros.node("hri_helper")
        pub = helper.create_publisher(Image, "image", 10)
        dets = Collector(helper, Detection2DArray, "detections")
        tracked = Collector(helper, msg_mod.IdsList, "/humans/faces/tracked", HRI_QOS)
        ros.wait_matched(pub)
        assert ros.wait_for(lambda: node.count_subscribers("/humans/faces/tracked") >= 1, 30)
        stream = _Stream(ros, node, pub)
        fid = None
        for _ in range(20):   # min_hits 2: a track is reported from the 2nd frame with a face
            msg, _ = stream.send()
            assert ros.wait_for(lambda: dets.find(lambda m: _key(m.header) == _key(msg.header)) is not None and
                                tracked.find(lambda m: _key(m.header) == _key(msg.header)) is not None, 20)
            d = dets.find(lambda m: _key(m.header) == _key(msg.header))
            t = tracked.find(lambda m: _key(m.header) == _key(msg.header))
            assert list(t.ids) == [x.id for x in d.detections]
            if t.ids:
                fid = t.ids[0]
                break
        assert fid is not None and fid.startswith("f"), "no face tracked in 20 synthetic frames"
        ns = f"/humans/faces/{fid}"
        subs = {name: Collector(helper, typ, f"{ns}/{name}", HRI_QOS) for name, typ in (
            ("roi", msg_mod.NormalizedRegionOfInterest2D), ("cropped", Image), ("aligned", Image),
            ("landmarks", msg_mod.FacialLandmarks))}
        assert ros.wait_for(lambda: all(node.count_subscribers(f"{ns}/{n}") >= 1 for n in subs), 30)
        got = None
        for _ in range(10):
            msg, frame = stream.send()
            if ros.wait_for(lambda: all(c.find(lambda m: _key(m.header) == _key(msg.header)) for c in subs.values()),
                            5):
                got = {n: c.find(lambda m: _key(m.header) == _key(msg.header)) for n, c in subs.items()}
                break
        assert got is not None, {n: len(c.snapshot()) for n, c in subs.items()}
        d = dets.find(lambda m: _key(m.header) == _key(msg.header))
        det = next(x for x in d.detections if x.id == fid)
        roi, box = got["roi"], msg_to_bbox(det.bbox).clip(640, 480)
        assert np.allclose([roi.xmin * 640, roi.ymin * 480, roi.xmax * 640, roi.ymax * 480],
                           [box.x1, box.y1, box.x2, box.y2], atol=0.01)
        assert 0.0 <= roi.c <= 1.0
        for name in ("cropped", "aligned"):
            img = got[name]
            assert (img.width, img.height, img.encoding) == (128, 128, "bgr8"), name
            assert _key(img.header) == _key(msg.header)
        crop = np.frombuffer(bytes(got["cropped"].data), np.uint8).reshape(128, 128, 3)
        assert np.array_equal(crop, crop_face(frame, box, (128, 128)))
        lm = got["landmarks"]
        assert (lm.width, lm.height, len(lm.landmarks)) == (640, 480, 70)
        filled = [i for i, p in enumerate(lm.landmarks) if p.c > 0]
        assert filled == [33, 36, 39, 42, 45]   # dlib's 5 points: eye corners and nose base
        eyes_x = [lm.landmarks[i].x * 640 for i in (36, 39, 42, 45)]
        assert box.x1 <= min(eyes_x) and max(eyes_x) <= box.x2

        blank = np.full((480, 640, 3), 127, np.uint8)   # the face leaves: its topics go with it
        for _ in range(15):
            msg, _ = stream.send(blank)
            if ros.wait_for(lambda: tracked.find(lambda m: _key(m.header) == _key(msg.header) and not m.ids), 5) \
                    and node.count_publishers(f"{ns}/roi") == 0:
                break
        assert node.count_publishers(f"{ns}/roi") == 0 and node.count_publishers(f"{ns}/cropped") == 0
        assert node._hri.face_ids == []


def test_off_by_default_no_humans_topics():
    with RosHarness() as ros:
        node = _tracker(ros)
        helper = ros.node("hri_off_helper")
        pub = helper.create_publisher(Image, "image", 10)
        Collector(helper, Detection2DArray, "detections")
        ros.wait_matched(pub)
        stream = _Stream(ros, node, pub)
        for _ in range(4):
            stream.send()
        assert node._hri is None
        assert node.get_parameter("hri.enabled").value is False
        names = [n for n, _ in node.get_publisher_names_and_types_by_node(node.get_name(), node.get_namespace())]
        assert not [n for n in names if n.startswith("/humans")], names
    # costs nothing when off: the node's module never imports hri_msgs
    code = ("import sys; import face_tracker_ros.face_tracker_node as m; "
            "assert 'hri_msgs' not in sys.modules, 'hri_msgs imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_enabled_without_hri_msgs_fails_configure_with_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "hri_msgs", None)   # what an install without hri_msgs looks like
    with RosHarness() as ros:
        node = _tracker(ros, **{"hri.enabled": True})
        assert ros.wait_for(lambda: "hri_msgs" in node._model_error, 30), node._model_error
        assert node.pipeline is None and node._hri is None
        diag = node.diagnostics().status[0]
        assert diag.level == diag.ERROR and "hri_msgs cannot be imported" in diag.message


def test_tf_smoothing_follows_the_face_ids_while_a_face_is_hidden():
    """With REP-155 on, the 3D output's TF smoothing is keyed by the face ids ("f" + track id): a
    face the detector misses for a frame, still held by the tracker, keeps its smoothed position."""
    pytest.importorskip("hri_msgs.msg", reason="hri_msgs not built (run scripts/setup.sh)")
    from sensor_msgs.msg import CameraInfo

    with RosHarness() as ros:
        node = _tracker(ros, **{"hri.enabled": True, "faces3d.enabled": True, "tracking.max_age_s": 2.0})
        helper = ros.node("hri_3d_helper")
        pub = helper.create_publisher(Image, "image", 10)
        info_pub = helper.create_publisher(CameraInfo, "camera_info", 10)
        ros.wait_matched(pub)
        ros.wait_matched(info_pub)
        stream = _Stream(ros, node, pub)

        def send(frame=None):
            info = CameraInfo(header=_stamp(stream.i), width=640, height=480, distortion_model="plumb_bob")
            info.k = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
            info_pub.publish(info)
            return stream.send(frame)

        smoothed = node._faces3d._smoother._state
        for _ in range(20):   # until a face is reported and located
            send()
            if smoothed:
                break
        fids = set(smoothed)
        assert fids and all(f.startswith("f") for f in fids), fids
        send(np.full((480, 640, 3), 127, np.uint8))   # the face is missed for one frame
        assert node.pipeline.tracker.tracks, "the tracker still holds the face"
        assert fids <= set(smoothed), f"smoothing state of {fids} dropped while the track lives: {set(smoothed)}"
