"""The tracker on synthetic sequences made of real pictures (real heads over real scenes).

Cheap variants of the tracking benchmark (``benchmarks/bench_tracking.py``): short scenes, and
detections either from the real Haar detector (crossing) or from the exact ground truth with
simulated misses and box noise (where the point is the tracker, not the detector).
"""

from __future__ import annotations

import numpy as np
import pytest

from face_tracker_core.eval import mot
from face_tracker_core.infer.tracker import Tracker, embedder_hook

from conftest import SHARED_DATA, shared_path


@pytest.fixture(scope="module")
def assets():
    shared_path("identity", "celeba")
    shared_path("detection", "noface")
    sprites = mot.load_face_sprites(SHARED_DATA, 3, seed=1)
    bgs = mot.load_backgrounds(SHARED_DATA, 2, seed=1)
    return sprites, bgs


def ids_per_person(scn, tracker, detect, min_visibility=0.5, with_frames=False):
    """Run ``scn``; returns ({gt_id: [track ids in order of frames]}, evaluator)."""
    ev = mot.MotEvaluator(min_visibility=min_visibility)
    seen = {}
    it = mot.frames(scn) if with_frames else ((t, None, mot.render_gt(scn, t)) for t in scn.stamps())
    for stamp, frame, gt in it:
        dets = detect(frame, gt)
        tracks = tracker.update(dets, stamp, frame=frame)
        ev.update(gt, tracks)
        for g in gt:
            if g.visibility < min_visibility:
                continue
            best = max(tracks, key=lambda t: t.box.iou(g.box), default=None)
            if best is not None and best.box.iou(g.box) >= 0.5:
                seen.setdefault(g.gt_id, []).append(best.track_id)
    return seen, ev


def oracle(miss_rate=0.1, box_noise=0.03, seed=0):
    rng = np.random.default_rng(seed)

    def detect(_frame, gt):
        return mot.perturb_detections(mot.oracle_detections(gt), rng, miss_rate, box_noise)

    return detect


def test_generator_gives_exact_ground_truth_on_real_pictures(assets):
    sprites, bgs = assets
    scn = mot.make_scenario("occlusion", sprites, bgs, 320, 240, seed=0)
    frame, gt = mot.render(scn, 0.0)
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    a = gt[0]
    assert a.visibility == pytest.approx(1.0, abs=0.02)
    cx, cy = a.box.center
    assert (cx, cy) == pytest.approx((0.1 * 320, 0.3 * 240), abs=0.5 * 0.02 * 75 * 0.5 + 1)  # keyframe + head bob
    assert a.box.width == pytest.approx(75 * 0.5, rel=1e-6)
    # the face pixels really are there: the rendered box differs from the empty background
    x1, y1, x2, y2 = (int(v) for v in a.box.as_xyxy())
    assert np.abs(frame[y1:y2, x1:x2].astype(int) - scn.background[y1:y2, x1:x2]).mean() > 10
    # behind the pillar the same person is (nearly) invisible
    hidden = [g for g in mot.render_gt(scn, 1.1) if g.gt_id == 0][0]
    assert hidden.visibility < 0.3
    st = scn.stamps()
    assert np.all(np.diff(st) > 0) and np.diff(st).max() > 1.5 / scn.fps   # irregular: frames dropped


def test_real_faces_crossing_keep_their_ids_with_the_real_detector(assets):
    from face_tracker_core.infer.base import make_detector

    sprites, bgs = assets
    scn = mot.make_scenario("crossing", sprites, bgs, 320, 240, seed=0, duration_s=2.0)   # first crossing at 1.4 s
    det = make_detector("haar")
    rng = np.random.default_rng(0)
    seen, ev = ids_per_person(scn, Tracker(), lambda f, gt: mot.perturb_detections(det.detect(f), rng, 0.05, 0.02),
                              with_frames=True)
    summary = mot.summarize({"crossing": ev})["crossing"]
    assert set(seen) == {0, 1, 2}
    for gid, ids in seen.items():
        assert len(set(ids)) == 1, f"person {gid} got ids {sorted(set(ids))}"
    assert summary["ID_switches"] == 0


def test_face_hidden_behind_an_occluder_keeps_its_id(assets):
    sprites, bgs = assets
    scn = mot.make_scenario("occlusion", sprites, bgs, 640, 480, seed=0)
    seen, ev = ids_per_person(scn, Tracker(), oracle())
    summary = mot.summarize({"occlusion": ev})["occlusion"]
    # A passes behind the pillar twice, B behind the pillar and the panel: one id each
    assert {g: len(set(ids)) for g, ids in seen.items()} == {0: 1, 1: 1}
    assert summary["ID_switches"] == 0 and summary["IDF1"] > 0.9


def test_appearance_hook_restores_the_id_of_a_face_that_came_back(assets):
    from face_tracker_core.recognition.embedders import make_embedder

    sprites, bgs = assets
    scn = mot.make_scenario("exit_reentry", sprites, bgs, 640, 480, seed=0, duration_s=4.3)
    # person 0 is away 1.5 s, longer than max_age_s: motion alone must give a new id
    seen, _ = ids_per_person(scn, Tracker(max_age_s=1.0), oracle(seed=1))
    assert len(set(seen[0])) == 2
    hook = embedder_hook(make_embedder("dlib"))
    # an embedding per track every 2 s is plenty here and keeps the test fast
    tracker = Tracker(max_age_s=1.0, appearance=hook, appearance_interval_s=2.0)
    seen, ev = ids_per_person(scn, tracker, oracle(seed=1), with_frames=True)
    assert len(set(seen[0])) == 1, seen[0]           # never shown with a new id, not even briefly
    assert len(set(seen[1])) == 1, seen[1]           # the short exit too
    assert len(set(seen[2])) == 1 and set(seen[2]).isdisjoint(seen[0] + seen[1])   # a newcomer is new
    assert mot.summarize({"x": ev})["x"]["ID_switches"] == 0
