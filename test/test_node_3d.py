"""3D faces through the tracker node: a synthetic camera with known intrinsics, a real face photo
rendered at 0.8, 1.5 and 3 m, distances from its size and from a synthetic depth image, TF frames
that appear with a track and stop with it.

The face is scaled so that the detector's box spans ``f * 0.16 / Z`` pixels: the width of the
detector's box on the full-resolution photo is the face's 0.16 m (``faces3d.face_width_m`` is
"the real width of what the detector's box spans"). Haar runs here: its boxes keep their
proportions from 30 to 120 px faces (the default detector's do not at 28 px, see the README).
"""

import glob
import math

import cv2
import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

Detection3DArray = pytest.importorskip("vision_msgs.msg", reason="vision_msgs").__dict__.get("Detection3DArray")
TFMessage = pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs not built (run scripts/setup.sh)").TFMessage
if Detection3DArray is None:
    pytest.skip("this vision_msgs has no Detection3DArray (run scripts/setup.sh)", allow_module_level=True)

from face_tracker_core.imaging import read_image  # noqa: E402
from face_tracker_core.infer import make_detector  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402

F, W, H = 525.0, 640, 480                 # a VGA camera (Kinect-like focal length)
CX, CY = 319.5, 239.5
FRAME = "camera_optical_frame"
DISTANCES = (0.8, 1.5, 3.0)
PHOTOS = ("000114", "000207", "000461")   # frontal CelebA faces, 140-190 px wide
FPS = 15.0


def _place(bg, img, box, width_px, u, v):
    """``img`` scaled so ``box`` is ``width_px`` wide, its centre at pixel (u, v) of ``bg``; returns
    the frame and the placed box (x1, y1, x2, y2)."""
    s = width_px / box.width
    x1, y1 = max(0, int(box.x1 - box.width)), max(0, int(box.y1 - box.height))
    x2, y2 = min(img.shape[1], int(box.x2 + box.width)), min(img.shape[0], int(box.y2 + box.height))
    crop = cv2.resize(img[y1:y2, x1:x2], None, fx=s, fy=s,
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    ox, oy = int(round(u - (box.center[0] - x1) * s)), int(round(v - (box.center[1] - y1) * s))
    out = bg.copy()
    sx, sy, dx, dy = max(0, -ox), max(0, -oy), max(0, ox), max(0, oy)
    w, h = min(crop.shape[1] - sx, W - dx), min(crop.shape[0] - sy, H - dy)
    out[dy:dy + h, dx:dx + w] = crop[sy:sy + h, sx:sx + w]
    bw, bh = width_px, box.height * s
    return out, (u - bw / 2, v - bh / 2, u + bw / 2, v + bh / 2)


def _depth(face_box, z, encoding, rng, step=1):
    """Synthetic aligned depth: a wall at 4 m, the face (an ellipse in its box) at ``z`` with 1 % noise
    and 15 % holes (zeros / NaN); ``step`` 2 = a depth stream at half the image's resolution."""
    d = np.full((H, W), 4.0, np.float32)
    x1, y1, x2, y2 = face_box
    yy, xx = np.mgrid[0:H, 0:W]
    inside = ((xx - (x1 + x2) / 2) / ((x2 - x1) / 2)) ** 2 + ((yy - (y1 + y2) / 2) / ((y2 - y1) / 2)) ** 2 <= 1
    d[inside] = z * (1 + 0.01 * rng.standard_normal(int(inside.sum())))
    d = np.ascontiguousarray(d[::step, ::step])
    h, w = d.shape
    holes = rng.random((h, w)) < 0.15
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0)
    if encoding == "16UC1":
        mm = np.round(d * 1000).astype(np.uint16)
        mm[holes] = 0
        msg.step, msg.data = w * 2, mm.tobytes()
    else:
        d[holes] = np.nan
        msg.step, msg.data = w * 4, d.tobytes()
    return msg


def _info(header):
    m = CameraInfo(header=header, width=W, height=H, distortion_model="plumb_bob")
    m.k = [F, 0.0, CX, 0.0, F, CY, 0.0, 0.0, 1.0]
    m.p = [F, 0.0, CX, 0.0, 0.0, F, CY, 0.0, 0.0, 0.0, 1.0, 0.0]
    m.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    m.d = [0.0] * 5
    return m


def _stamp(t):
    h = Header(frame_id=FRAME)
    h.stamp.sec, h.stamp.nanosec = int(t), int(round((t % 1) * 1e9)) % 1_000_000_000
    return h


def _key(h):
    return (h.stamp.sec, h.stamp.nanosec)


@pytest.fixture(scope="module")
def scene():
    """(background, [(photo, haar box on the full-resolution photo)])."""
    from conftest import shared_path

    haar = make_detector("haar")
    bg = cv2.resize(read_image(sorted(glob.glob(shared_path("detection", "noface") + "/*.jpg"))[3]), (W, H))
    faces = []
    for name in PHOTOS:
        img = read_image(shared_path("detection", "celeba_one_face", f"{name}.jpg"))
        faces.append((img, max(haar.detect(img), key=lambda d: d.box.width).box))
    return bg, faces


class Rig:
    """Harness + tracker node (faces3d on, depth on) + camera publishers + output collectors."""

    def __init__(self, ros, camera_info=True):
        self.ros, self.t = ros, 100.0
        self.node = ros.add(_tracker(ros, [Parameter("faces3d.use_depth", value=True),
                                           Parameter("faces3d.depth_wait_s", value=0.05)]))
        helper = ros.node("faces3d_helper")
        self.img_pub = helper.create_publisher(Image, "image", 10)
        self.info_pub = helper.create_publisher(CameraInfo, "camera_info", 10) if camera_info else None
        self.depth_pub = helper.create_publisher(Image, "depth", 10)
        self.dets = Collector(helper, Detection2DArray, "detections")
        self.d3 = Collector(helper, Detection3DArray, "detections_3d")
        self.tf = Collector(helper, TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        for pub in filter(None, (self.img_pub, self.info_pub, self.depth_pub)):
            ros.wait_matched(pub, timeout=60)
        assert ros.wait_for(lambda: self.node._active and self.node._det_pub.get_subscription_count() >= 1, 20)

    def frame(self, bgr, depth=None, dt=1.0 / FPS, timeout=30.0):
        """Publish camera_info (+ depth) then the image at the next stamp; returns (2D, 3D) outputs."""
        self.t += dt
        header = _stamp(self.t)
        if self.info_pub is not None:
            self.info_pub.publish(_info(header))
        if depth is not None:
            depth.header = header
            self.depth_pub.publish(depth)
        self.img_pub.publish(bgr_to_image(bgr, header, "bgr8"))
        want = self.d3 if self.info_pub is not None else self.dets
        assert self.ros.wait_for(lambda: want.find(lambda m: _key(m.header) == _key(header)) is not None, timeout), \
            f"no output for the frame at {self.t:.3f}"
        got3 = self.d3.find(lambda m: _key(m.header) == _key(header))
        return self.dets.find(lambda m: _key(m.header) == _key(header)), got3


def _tracker(ros, extra):
    from face_tracker_ros.face_tracker_node import FaceTrackerNode

    return FaceTrackerNode(context=ros.context, parameter_overrides=[
        Parameter("detector.backend", value="haar"), Parameter("faces3d.enabled", value=True),
        Parameter("no_input_warn_s", value=60.0), Parameter("publish_annotated", value=False)] + extra)


def _nearest(arr3, u, v):
    """The Detection3D whose position projects nearest to pixel (u, v)."""
    def err(d):
        p = d.bbox.center.position
        return math.hypot(F * p.x / p.z + CX - u, F * p.y / p.z + CY - v)
    return min(arr3.detections, key=err, default=None)


def _phase(rig, bg, img, box, z, u, v, depth_enc=None, frames=5):
    """Show the face at distance ``z`` for ``frames`` frames, then an empty scene until its track ends.

    Returns (relative distance errors of the confirmed frames, track ids, stamp after the track ended).
    """
    rng = np.random.default_rng(int(z * 100))
    errors, ids = [], set()
    for k in range(frames):
        uk, vk = u + 2.3 * k, v + 1.1 * k            # a little motion: new sub-pixel sampling each frame
        frame, fbox = _place(bg, img, box, F * 0.16 / z, uk, vk)
        depth = _depth(fbox, z, depth_enc, rng, 1 if depth_enc == "16UC1" else 2) if depth_enc else None
        d2, d3 = rig.frame(frame, depth)
        assert [d.id for d in d3.detections] == [d.id for d in d2.detections]   # same ids, same order
        assert all(_key(d.header) == _key(d3.header) and d.header.frame_id == FRAME for d in d3.detections)
        hit = _nearest(d3, uk, vk)
        if hit is not None and hit.id:
            p = hit.bbox.center.position
            errors.append((p.z - z) / z)
            ids.add(hit.id)
            # x right, y down (REP-103 optical frame), from the same distance
            assert p.x == pytest.approx((uk - CX) * p.z / F, abs=0.03 * p.z)
            assert p.y == pytest.approx((vk - CY) * p.z / F, abs=0.03 * p.z)
    rig.frame(bg)                                     # the face leaves...
    _, d3 = rig.frame(bg, dt=1.5)                     # ...for longer than tracking.max_age_s
    assert d3.detections == []
    return errors, ids, rig.t


@pytest.fixture(scope="module")
def run(scene):
    """Every photo at every distance from size, the first two also with a depth image (16UC1 mm at the
    image's resolution, 32FC1 m at half of it)."""
    bg, faces = scene
    out = {"size": {}, "depth": {}, "ended": [], "tf": None, "node_stats": None}
    with RosHarness() as ros:
        rig = Rig(ros)
        for i, (img, box) in enumerate(faces):
            for j, z in enumerate(DISTANCES):
                u, v = 250 + 60 * j, 200 + 20 * i
                errs, ids, t_end = _phase(rig, bg, img, box, z, u, v)
                out["size"][(i, z)] = errs
                out["ended"].append((ids, t_end))
                if i < 2:
                    enc = ("16UC1", "32FC1")[i]
                    errs, ids, t_end = _phase(rig, bg, img, box, z, u, v, depth_enc=enc)
                    out["depth"][(i, z)] = errs
                    out["ended"].append((ids, t_end))
        assert ros.wait_for(lambda: len(rig.tf.snapshot()) > 0, 5)
        out["tf"] = rig.tf.snapshot()
        out["node_stats"] = dict(rig.node._faces3d.stats)
        out["tf_frames_now"] = list(rig.node._faces3d.tf_frames)
    return out


@pytest.mark.parametrize("z", DISTANCES)
def test_distance_from_face_size_within_10_percent(run, z):
    for i in range(len(PHOTOS)):
        errs = run["size"][(i, z)]
        assert len(errs) >= 3, f"photo {PHOTOS[i]} at {z} m: confirmed on {len(errs)} of 5 frames"
        mean = float(np.mean(errs))
        print(f"size   {PHOTOS[i]} z={z} m: mean error {100 * mean:+.1f} % (frames {len(errs)})")
        assert abs(mean) <= 0.10, f"photo {PHOTOS[i]} at {z} m: {100 * mean:+.1f} %"
        assert max(abs(e) for e in errs) <= 0.15


@pytest.mark.parametrize("z", DISTANCES)
def test_distance_from_depth_within_3_percent(run, z):
    for i in range(2):
        errs = run["depth"][(i, z)]
        assert len(errs) >= 3
        print(f"depth  {PHOTOS[i]} z={z} m: max error {100 * max(abs(e) for e in errs):.2f} %")
        assert max(abs(e) for e in errs) <= 0.03
    assert run["node_stats"]["from_depth"] >= 2 * 3 * 3 and run["node_stats"]["from_size"] >= len(PHOTOS) * 3 * 3


def test_tf_frames_appear_with_tracks_and_stop_when_they_end(run):
    by_child = {}
    for msg in run["tf"]:
        for t in msg.transforms:
            assert t.header.frame_id == FRAME and t.transform.rotation.w == 1.0
            by_child.setdefault(t.child_frame_id, []).append(t.header.stamp.sec + t.header.stamp.nanosec * 1e-9)
    assert by_child, "no TF frame published"
    for ids, t_end in run["ended"]:
        assert ids, "no confirmed track in a phase"
        for tid in ids:
            stamps = by_child.get(f"face_{tid}")
            assert stamps, f"no TF frame face_{tid} for track {tid}"
            assert max(stamps) < t_end - 1.0, f"face_{tid} still published after its track ended"
    assert all(name.startswith("face_") for name in by_child)
    assert run["tf_frames_now"] == []


def test_missing_camera_info_keeps_2d_output_with_one_warning(scene):
    bg, faces = scene
    img, box = faces[0]
    with RosHarness() as ros:
        rig = Rig(ros, camera_info=False)
        n = 0
        for k in range(4):
            frame, _ = _place(bg, img, box, 100, 300 + 2 * k, 240)
            d2, d3 = rig.frame(frame)
            n += len(d2.detections)
            assert d3 is None
        assert n >= 3, "2D detections must go on without camera_info"
        assert rig.node._faces3d._warned == {"no_info"}
        diag = {kv.key: kv.value for kv in rig.node.diagnostics().status[0].values}
        assert diag["faces3d_tf_frames"] == "" and diag["errors"] == "0"


def test_off_by_default_subscribes_and_publishes_nothing_3d():
    from face_tracker_ros.face_tracker_node import FaceTrackerNode

    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="haar"), Parameter("no_input_warn_s", value=60.0)]))
        assert ros.wait_for(lambda: node._active, 20)
        assert not node._faces3d.enabled and node._faces3d._pub is None and node._faces3d._subs == []
        name, ns = node.get_name(), node.get_namespace()
        subs = {t for t, _ in node.get_subscriber_names_and_types_by_node(name, ns)}
        pubs = {t for t, _ in node.get_publisher_names_and_types_by_node(name, ns)}
        assert "/image" in subs and "/camera_info" not in subs and "/depth" not in subs
        assert "/detections" in pubs and "/detections_3d" not in pubs and "/tf" not in pubs
        assert not any(k.startswith("faces3d") for k in (kv.key for kv in node.diagnostics().status[0].values))
        new = [n for n in node._parameters if n.startswith("faces3d.") or n in (
            "image_transport", "publish_annotated_compressed", "publish_annotated_jpeg_quality")]
        assert len(new) == 13
        for desc in node.describe_parameters(new):   # what `ros2 param describe` shows
            assert desc.description and desc.read_only, desc.name
