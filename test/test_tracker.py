"""Tracker arithmetic on plain boxes: ids, occlusion, crossings, birth, time-based removal, scale.

Real-picture sequences are in ``test_tracker_synthetic.py``; here the point is the logic, so
detections are exact boxes we move ourselves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from face_tracker_core.infer.kalman import BoxKalman, xyxy_to_z, z_to_xyxy
from face_tracker_core.infer.tracker import Tracker, TrackerConfig, iou_matrix
from face_tracker_core.types import BBox, Detection

FPS = 30.0


def det(cx, cy, size=60.0, score=0.9):
    return Detection(BBox.from_cxcywh(cx, cy, size, size), score)


def ids_of(tracks):
    return [t.track_id for t in tracks]


def test_moving_face_keeps_one_id_and_box_follows():
    tr = Tracker()
    seen = set()
    for k in range(90):
        cx = 100 + 4.0 * k                       # 120 px/s to the right
        out = tr.update([det(cx, 200)], k / FPS)
        if k >= 1:
            assert len(out) == 1
            seen.add(out[0].track_id)
            # smoothed output lags a little (< 2 px at 120 px/s once the velocity is known)
            assert abs(out[0].box.center[0] - cx) < (5.0 if k < 8 else 2.0)
    assert seen == {"1"}


def test_face_hidden_for_a_few_frames_keeps_its_id():
    tr = Tracker()
    ids = []
    for k in range(80):
        cx = 80 + 5.0 * k
        hidden = 30 <= k < 42                    # 12 frames = 0.4 s behind something
        out = tr.update([] if hidden else [det(cx, 240)], k / FPS)
        if hidden:
            # coasting tracks are reported for report_lost_s (0.1 s), then only kept
            assert len(out) == (1 if (k - 29) / FPS <= 0.1 + 1e-9 else 0)
            assert len(tr.tracks) == 1
        elif k >= 1:
            ids.append(out[0].track_id)
    assert set(ids) == {"1"}


def test_two_crossing_faces_keep_their_ids():
    tr = Tracker()
    by_side = {"left": set(), "right": set()}
    for k in range(100):
        xa = 60 + 5.0 * k                         # A goes right, B goes left, same height
        xb = 560 - 5.0 * k
        dets = [det(xa, 200, 70), det(xb, 215, 64)]
        if abs(xa - xb) < 40:                     # B is behind A while they overlap
            dets = dets[:1]
        out = tr.update(dets, k / FPS)
        for t in out:
            if abs(xa - xb) > 30:                 # attribute a track to a face only when unambiguous
                side = "left" if abs(t.box.center[0] - xa) < abs(t.box.center[0] - xb) else "right"
                by_side[side].add(t.track_id)
    assert by_side["left"] == {"1"} and by_side["right"] == {"2"}


def test_track_is_born_only_after_min_hits_and_tentative_dies_at_first_miss():
    tr = Tracker(min_hits=3)
    assert tr.update([det(100, 100)], 0.0) == []
    assert tr.update([det(101, 100)], 0.033) == []
    out = tr.update([det(102, 100)], 0.066)
    assert ids_of(out) == ["1"] and out[0].hits == 3 and out[0].confirmed
    # a one-frame false detection never becomes a track
    tr.update([det(102, 100), det(400, 300)], 0.1)
    assert len(tr.tracks) == 2 and not [t for t in tr.tracks if t.track_id == "2"][0].confirmed
    tr.update([det(103, 100)], 0.133)
    assert ids_of(tr.tracks) == ["1"]
    # min_hits=1 reports at once
    assert len(Tracker(min_hits=1).update([det(5, 5)], 0.0)) == 1


def test_removal_is_time_based_long_gap_removes_short_irregular_gaps_do_not():
    tr = Tracker(max_age_s=1.0)
    stamps = [0.0, 0.03, 0.07, 0.31, 0.33, 0.95, 1.0, 1.85, 1.9, 2.6]   # gaps up to 0.85 s
    for t in stamps:
        out = tr.update([det(200 + 30 * t, 200)], t)
    assert ids_of(out) == ["1"]
    # updates keep coming without the face: gone only once 1 s has passed since its last detection
    tr.update([], 3.0)
    tr.update([], 3.55)
    assert ids_of(tr.tracks) == ["1"]
    tr.update([], 3.65)
    assert tr.tracks == []
    # a face at the same place after the gap is a new person for the tracker
    tr.update([det(278, 200)], 3.7)
    out = tr.update([det(278, 200)], 3.73)
    assert ids_of(out) == ["2"]


def test_dropped_frames_are_a_longer_prediction_not_misses():
    tr = Tracker(max_age_s=1.0)
    for k in range(20):
        tr.update([det(100 + 6 * k, 150)], k / FPS)
    # 0.5 s with no frame at all (camera hiccup); the face kept moving at 180 px/s
    t = 19 / FPS + 0.5
    out = tr.update([det(100 + 6 * 19 + 90, 150)], t)
    assert ids_of(out) == ["1"]


def test_zero_faces_and_fifty_faces():
    tr = Tracker()
    for k in range(5):
        assert tr.update([], k / FPS) == []
    assert tr.tracks == []
    grid = [(40 + 80 * (i % 10), 40 + 90 * (i // 10)) for i in range(50)]
    tr = Tracker()
    first = None
    for k in range(30):
        dets = [det(x + 2.0 * k, y + 1.0 * k, 50) for x, y in grid]
        out = tr.update(dets, k / FPS)
        if k >= 1:
            assert len(out) == 50
            assert len(set(ids_of(out))) == 50
            pairs = {t.track_id: int(np.argmin([abs(t.box.center[0] - x - 2.0 * k) + abs(t.box.center[1] - y - 1.0 * k)
                                               for x, y in grid])) for t in out}
            if first is None:
                first = pairs
            assert pairs == first


def test_low_score_detections_extend_tracks_but_never_start_them():
    tr = Tracker(high_score=0.5, low_score=0.1)
    for k in range(5):
        tr.update([det(100 + 3 * k, 100, score=0.9)], k / FPS)
    for k in range(5, 15):   # the face turns: the detector is unsure
        out = tr.update([det(100 + 3 * k, 100, score=0.3)], k / FPS)
        assert ids_of(out) == ["1"] and out[0].score == pytest.approx(0.3)
    tr2 = Tracker()
    for k in range(10):
        assert tr2.update([det(50, 50, score=0.3)], k / FPS) == []
    assert tr2.update([det(50, 50, score=0.05)], 1.0) == []   # below low_score: ignored


def _walk_behind_two(tr):
    """C walks left behind B then A; while it is hidden the detector boxes the gap between A and B
    (a weaker box covering half of each, as a detector trained on partly hidden faces does)."""
    c_ids, gap_ids = set(), set()
    for k in range(45):
        xc = 520 - 10.0 * k
        hidden = 180 < xc < 380
        dets = [det(230, 200, 80), det(330, 200, 80),
                det(280, 200, 80, score=0.6) if hidden else det(xc, 205, 76)]
        for t in tr.update(dets, k / FPS):
            if hidden and abs(t.box.center[0] - 280) < 15:
                gap_ids.add(t.track_id)
            elif not hidden and abs(t.box.center[0] - xc) < 20:
                c_ids.add(t.track_id)
    return c_ids, gap_ids


def test_box_bridging_two_faces_neither_starts_a_track_nor_takes_a_hidden_face():
    c_ids, gap_ids = _walk_behind_two(Tracker())
    assert gap_ids == set()          # never reported as a face
    assert c_ids == {"3"}            # C keeps its id when it comes out
    # Without the rule the gap box becomes a face of its own (what the rule is for).
    _, gap_ids = _walk_behind_two(Tracker(bridge_overlap=0.0))
    assert gap_ids


def test_tracked_face_between_two_stronger_ones_stays_tracked():
    tr = Tracker()
    for k in range(40):
        # D sits between A and B, which close in on it; half hidden, its score drops below theirs.
        gap = max(60.0, 120.0 - 4.0 * k)
        d_score = 0.9 if k < 10 else 0.6
        out = tr.update([det(300 - gap, 200, 80), det(300, 200, 80, score=d_score), det(300 + gap, 200, 80)], k / FPS)
        if k >= 1:
            assert "2" in ids_of(out), (k, ids_of(out))
    assert len(ids_of(out)) == 3


def test_smoothing_reduces_jitter_of_a_still_face():
    rng = np.random.default_rng(0)
    tr = Tracker()
    raw, out = [], []
    for k in range(150):
        d = det(320 + rng.normal(0, 3), 240 + rng.normal(0, 3), 100 + rng.normal(0, 3))
        o = tr.update([d], k / FPS)
        if k > 30:
            raw.append(d.box.center)
            out.append(o[0].box.center)
    assert np.std(out, axis=0).mean() < 0.6 * np.std(raw, axis=0).mean()


def test_scale_change_is_followed():
    tr = Tracker()
    for k in range(90):
        size = 40 + 2.0 * k                 # approaching: 40 -> 220 px
        out = tr.update([det(300, 240, size)], k / FPS)
    assert ids_of(out) == ["1"]
    assert abs(out[0].box.width - size) < 0.05 * size


def test_appearance_embeddings_restore_the_id_of_a_face_that_came_back():
    rng = np.random.default_rng(1)
    e_a, e_b = rng.normal(size=64), rng.normal(size=64)
    tr = Tracker(max_age_s=0.5, appearance_interval_s=0.0, appearance_threshold=0.8)

    def step(t, faces):
        dets = [det(x, y) for x, y, _ in faces]
        emb = np.array([e + rng.normal(scale=0.1, size=64) for _, _, e in faces]).reshape(len(faces), 64)
        return tr.update(dets, t, embeddings=emb if faces else None)

    for k in range(20):
        step(k / FPS, [(100 + 3 * k, 200, e_a), (500, 200, e_b)])
    # A leaves for 2 s (removed after 0.5 s); comes back elsewhere; a new person C shows up too
    for k in range(20, 80):
        step(k / FPS, [(500, 200, e_b)])
    assert sorted(ids_of(tr.tracks)) == ["2"]
    e_c = rng.normal(size=64)
    out = step(80 / FPS, [(300, 300, e_a), (500, 200, e_b), (120, 80, e_c)])
    got = {t.track_id for t in out}
    assert got == {"1", "2"}                  # A is reported with its old id at once
    out = step(81 / FPS, [(301, 300, e_a), (500, 200, e_b), (120, 80, e_c)])
    got = {t.track_id for t in out}
    assert len(got) == 3 and {"1", "2"} < got             # C is a new person with a new id
    # without embeddings the same return gives a new id
    tr2 = Tracker(max_age_s=0.5)
    for k in range(20):
        tr2.update([det(100 + 3 * k, 200)], k / FPS)
    for k in range(20, 80):
        tr2.update([], k / FPS)
    tr2.update([det(300, 300)], 80 / FPS)
    assert ids_of(tr2.update([det(300, 300)], 81 / FPS)) == ["2"]


def test_face_walking_in_is_judged_on_a_view_not_cut_by_the_border():
    """Detectors clip boxes to the image: a face cut by the left border has x1 == 0 exactly. Its
    embedding is poor, so the id decision must wait until the box is clear of the border."""
    rng = np.random.default_rng(3)
    e_a = rng.normal(size=64)
    frame = np.zeros((480, 640, 3), np.uint8)

    def hook(_frame, dets):   # the embedder sees a cut face as somebody else
        return np.array([e_a if d.box.x1 > 1.0 else rng.normal(size=64) for d in dets])

    tr = Tracker(max_age_s=0.5, appearance=hook)
    for k in range(15):
        tr.update([det(300, 200, 80)], k / FPS, frame=frame)
    for k in range(15, 60):                       # gone for 1.5 s: removed, remembered
        tr.update([], k / FPS, frame=frame)
    ids = set()
    for k in range(60, 80):                       # walks in from the left: clipped, then clear
        cx = 10.0 + 8.0 * (k - 60)
        d = det(cx, 200, 80)
        d = Detection(BBox(max(d.box.x1, 0.0), d.box.y1, d.box.x2, d.box.y2), 0.9)
        ids |= set(ids_of(tr.update([d], k / FPS, frame=frame)))
    assert ids == {"1"}


def test_failing_appearance_hook_does_not_stop_tracking():
    calls = []

    def broken(frame, dets):
        calls.append(len(dets))
        raise RuntimeError("recogniser crashed")

    tr = Tracker(appearance=broken, appearance_interval_s=0.0)
    for k in range(10):
        out = tr.update([det(100 + k, 100)], k / FPS, frame=np.zeros((240, 320, 3), np.uint8))
    assert ids_of(out) == ["1"] and calls


def test_invalid_detections_and_stamps():
    tr = Tracker()
    bad = [Detection(BBox(float("nan"), 0, 10, 10), 0.9), Detection(BBox(5, 5, 5, 20), 0.9),
           Detection(BBox(0, 0, 10, 10), float("nan"))]
    for k in range(3):
        out = tr.update(bad + [det(50, 50)], k / FPS)
    assert ids_of(out) == ["1"]
    with pytest.raises(ValueError, match="stamp"):
        tr.update([], float("inf"))
    # slightly out-of-order frame: same instant, no crash, id kept
    assert ids_of(tr.update([det(50, 50)], 1 / FPS)) == ["1"]
    # stream restarted (stamp jumps back by more than max_age_s): tracks dropped, ids not reused
    tr.update([det(50, 50)], 100.0)
    tr.update([det(50, 50)], 0.0)
    out = tr.update([det(50, 50)], 0.033)
    assert ids_of(out) == ["3"]
    tr.reset(restart_ids=True)
    tr.update([det(50, 50)], 0.0)
    assert ids_of(tr.update([det(50, 50)], 0.033)) == ["1"]


def test_config_is_validated_with_clear_messages():
    with pytest.raises(ValueError, match="unknown setting"):
        Tracker(max_age=1.0)
    with pytest.raises(ValueError, match="low_score"):
        Tracker(low_score=0.8, high_score=0.5)
    with pytest.raises(ValueError, match="min_hits"):
        Tracker(min_hits=0)
    with pytest.raises(ValueError, match="max_age_s"):
        Tracker(max_age_s=-1)
    tr = Tracker()
    tr.update([det(10, 10)], 0.0)
    with pytest.raises(ValueError):
        tr.configure(iou_threshold=2.0)
    assert tr.config.iou_threshold == 0.3 and len(tr) == 1   # unchanged on error
    tr.configure(min_hits=1, max_age_s=2.0)
    assert tr.config.min_hits == 1 and isinstance(tr.config, TrackerConfig)


def test_kalman_predicts_with_irregular_dt():
    kf = BoxKalman()
    mean, cov = kf.initiate(np.array([[100.0, 50.0, 40.0, 40.0]]))
    t = 0.0
    rng = np.random.default_rng(3)
    for _ in range(40):
        dt = float(rng.uniform(0.01, 0.12))
        t += dt
        mean, cov = kf.predict(mean, cov, dt)
        mean, cov = kf.update(mean, cov, np.array([[100.0 + 90.0 * t, 50.0 - 30.0 * t, 40.0, 40.0]]))
    assert mean[0, 4] == pytest.approx(90.0, abs=3.0) and mean[0, 5] == pytest.approx(-30.0, abs=3.0)
    pm, pc = kf.predict(mean, cov, 0.5)
    assert pm[0, 0] == pytest.approx(100.0 + 90.0 * (t + 0.5), abs=3.0)
    assert np.all(np.linalg.eigvalsh(pc[0]) > 0) and np.allclose(pc[0], pc[0].T)
    assert pc[0, 0, 0] > cov[0, 0, 0]         # uncertainty grows while predicting


def test_box_conversions_and_iou():
    b = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 1.0, 1.0]])
    assert np.allclose(z_to_xyxy(xyxy_to_z(b)), b)
    assert np.allclose(xyxy_to_z(b)[0], [30.0, 60.0, 40.0, 80.0])
    iou = iou_matrix(b, np.array([[10.0, 20.0, 50.0, 60.0], [200.0, 200.0, 210.0, 210.0], [5, 5, 5, 5]]))
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(0.5) and iou[0, 1] == 0.0 and iou[0, 2] == 0.0
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 2)
    assert math.isclose(iou[0, 0], BBox(*b[0]).iou(BBox(10, 20, 50, 60)))
