"""Track ids through the node: real face crops moving over real backgrounds, published as Images.

Scenarios from :mod:`face_tracker_core.eval.mot` (exact ground truth): two faces crossing (one
passes in front of the other), a face hidden behind an occluder for a few frames, and (with
``tracking.reid``) faces that leave the view for longer than ``tracking.max_age_s`` and come back.
Each person must keep one track id for the whole sequence.
"""

import numpy as np
import pytest

from ros_helpers import Collector, RosHarness  # noqa: I100 - sets the DDS environment first

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.eval import mot  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image, msg_to_bbox  # noqa: E402
from face_tracker_ros.face_tracker_node import FaceTrackerNode  # noqa: E402


@pytest.fixture(scope="module")
def scenarios(request):
    from conftest import shared_path

    root = shared_path()
    sprites = mot.load_face_sprites(root, 5, seed=0)
    bgs = mot.load_backgrounds(root, 4, seed=0)
    out = {}
    for i, name in enumerate(("crossing", "occlusion", "exit_reentry")):
        need = 2 if name == "occlusion" else 3
        heads = sprites[3:3 + need] if name == "occlusion" else sprites[:need]
        scn = mot.make_scenario(name, heads, bgs[(2 * i) % 4:(2 * i) % 4 + 2], 640, 480, seed=i, drop_rate=0.0)
        scn.fps = 15.0  # half the frames of a 30 fps camera (CI time): motion per frame is doubled
        out[name] = scn
    return out


def _ids_per_person(ros, node, pub, dets, scn):
    per_person = {}
    for k, (t, frame, gt) in enumerate(mot.frames(scn)):
        msg = bgr_to_image(frame, Image().header, "bgr8")
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        pub.publish(msg)
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)

        def same(m):
            return (m.header.stamp.sec, m.header.stamp.nanosec) == stamp

        assert ros.wait_for(lambda: dets.find(same) is not None, 60), f"frame {k} not processed"
        out = dets.find(same)
        boxes = [(d.id, msg_to_bbox(d.bbox)) for d in out.detections]
        for g in gt:
            if g.visibility < 0.6:
                continue
            ious = [(g.box.iou(b), tid) for tid, b in boxes]
            if ious and max(ious)[0] >= 0.3:
                per_person.setdefault(g.gt_id, []).append(max(ious)[1])
    return per_person


@pytest.mark.parametrize("name", ["crossing", "occlusion", "exit_reentry"])
def test_people_keep_their_ids(scenarios, name):
    scn = scenarios[name]
    # Leaving the view for longer than max_age_s needs appearance (dlib embeddings) to keep the id.
    reid = name == "exit_reentry"
    with RosHarness() as ros:
        node = ros.add(FaceTrackerNode(context=ros.context, parameter_overrides=[
            Parameter("detector.backend", value="default"), Parameter("no_input_warn_s", value=60.0),
            Parameter("tracking.reid", value=reid)]))
        helper = ros.node("helper")
        dets = Collector(helper, Detection2DArray, "detections")
        pub = helper.create_publisher(Image, "image", 10)
        ros.wait_matched(pub)
        per_person = _ids_per_person(ros, node, pub, dets, scn)
    assert len(per_person) >= 2, per_person
    for person, ids in per_person.items():
        assert len(ids) >= 0.6 * len(np.unique(ids)) * 5, (person, ids)  # tracked most of the time
        assert len(set(ids)) == 1, f"{name}: person {person} changed id: {ids}"
    all_ids = [ids[0] for ids in per_person.values()]
    assert len(set(all_ids)) == len(all_ids), "two people share one id"
