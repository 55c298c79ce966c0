"""The per-frame pipeline and the per-track scheduling of expensive per-face models."""

from face_tracker_core.pipeline import FacePipeline, PerTrackCache, with_attributes, with_identity
from face_tracker_core.sources import SyntheticCamera
from face_tracker_core.types import BBox, Track


def _track(tid, confirmed=True, since=0.0):
    return Track(track_id=tid, box=BBox(10, 10, 50, 60), score=0.9, confirmed=confirmed, time_since_update=since)


def test_per_track_cache_runs_once_per_track_then_refreshes():
    calls = []

    def compute(bgr, boxes):
        calls.append(len(boxes))
        return [("alice", 0.8)] * len(boxes)

    cache = PerTrackCache(compute, with_identity, refresh_s=1.0)
    out = cache.annotate(None, [_track("1"), _track("2", confirmed=False)], 0.0)
    assert calls == [1] and out[0].identity == "alice" and out[1].identity is None
    out = cache.annotate(None, [_track("1")], 0.5)  # cached, not recomputed
    assert calls == [1] and out[0].identity == "alice" and out[0].identity_score == 0.8
    cache.annotate(None, [_track("1")], 1.2)  # refresh due
    assert calls == [1, 1]
    cache.annotate(None, [_track("1", since=0.1)], 5.0)  # coasting track: no fresh box to compute on
    assert calls == [1, 1]
    cache.annotate(None, [], 6.0)  # track gone: forgotten
    out = cache.annotate(None, [_track("1")], 6.1)
    assert calls == [1, 1, 1]


def test_per_track_cache_bounds_work_per_frame():
    calls = []
    cache = PerTrackCache(lambda b, boxes: calls.append(len(boxes)) or [(("smiling", 0.9),)] * len(boxes),
                          with_attributes, refresh_s=10.0, max_per_frame=3)
    tracks = [_track(str(i)) for i in range(7)]
    cache.annotate(None, tracks, 0.0)
    cache.annotate(None, tracks, 0.1)
    out = cache.annotate(None, tracks, 0.2)
    assert calls == [3, 3, 1]
    assert all(t.attributes == (("smiling", 0.9),) for t in out)


def test_pipeline_on_the_embedded_camera():
    pipe = FacePipeline(backend="haar", tracking=True, tracker_kwargs={"min_hits": 2})
    cam = SyntheticCamera(640, 480, 10.0)
    ids = []
    for i in range(8):
        res = pipe.process(cam.read(), stamp=i / 10.0)
        assert res.annotated is not None and res.annotated.shape == (480, 640, 3)
        assert set(res.timings_ms) >= {"detect", "track", "total"}
        ids += [t.track_id for t in res.items]
    assert len(ids) >= 5 and len(set(ids)) == 1
