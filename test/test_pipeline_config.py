"""The typed pipeline config and the pipeline build_pipeline makes from it (no ROS: the core alone)."""

import dataclasses

import pytest

from face_tracker_core.enrolment import Enrolment
from face_tracker_core.pipeline_build import build_pipeline
from face_tracker_core.pipeline_config import PipelineConfig
from face_tracker_core.sources import SyntheticCamera


def test_config_round_trips_and_refuses_unknown_names():
    cfg = PipelineConfig.from_config({"tracking": {"min_hits": 3}, "detector.backend": "haar"})
    assert cfg.tracking.min_hits == 3 and cfg.detector.backend == "haar" and cfg.recognition.enabled is False
    assert PipelineConfig.from_config(cfg.get_config()) == cfg
    assert set(PipelineConfig.keys()) == {f"{s}.{k}" for s, d in cfg.get_config().items() for k in d}
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tracking.min_hits = 4
    with pytest.raises(ValueError, match="bogus"):
        PipelineConfig.from_config({"tracking.bogus": 1})
    with pytest.raises(ValueError, match="sections"):
        PipelineConfig.from_config({"bogus": {"x": 1}})


def test_score_floor_and_tracker_options_follow_the_threshold():
    t = PipelineConfig().tracking
    assert t.score_floor(0.5) == 0.1 and dataclasses.replace(t, enabled=False).score_floor(0.5) == 0.5
    assert t.tracker_kwargs(0.05) == {"min_hits": 2, "max_age_s": 1.0, "high_score": 0.05, "low_score": 0.05}


def test_built_pipeline_tracks_applies_threshold_and_tracking_changes():
    cfg = PipelineConfig.from_config({"detector": {"backend": "haar", "score_threshold": 0.4}})
    pipe = build_pipeline(cfg)
    assert pipe.config == cfg and pipe.score == 0.4 and pipe.min_score == 0.1
    assert pipe.recognition is None and pipe.enrolment is None and pipe.attributes is None and not pipe.stages
    cam = SyntheticCamera(640, 480, 10.0)
    stamp = iter(i / 10.0 for i in range(100))
    ids = {t.track_id for _ in range(4) for t in pipe.process(cam.read(), next(stamp)).items}
    assert len(ids) == 1
    pipe.set_threshold(0.6)
    assert pipe.tracker.config.high_score == 0.6 and pipe.min_score == 0.1
    pipe.reconfigure_tracking(dataclasses.replace(cfg.tracking, enabled=False))
    assert pipe.tracker is None and pipe.min_score == 0.6
    assert all(not hasattr(it, "track_id") for it in pipe.process(cam.read(), next(stamp)).items)
    pipe.reconfigure_tracking(dataclasses.replace(cfg.tracking, min_hits=3))
    assert pipe.tracker.config.min_hits == 3 and pipe.min_score == 0.1
    again = [[t.track_id for t in pipe.process(cam.read(), next(stamp)).items] for _ in range(4)]
    assert again[0] == [] and again[1] == [] and again[2], f"restored empty, min_hits 3: {again}"
    assert not set(again[2]) & ids, "a restored tracker never gives an old id again"
    pipe.close()


def test_enrolment_refuses_an_empty_name_and_counts_nothing_until_a_face():
    enrol = Enrolment(identifier=None, frames=2)
    assert not enrol.request("  ")
    enrol.step(None, [], 0.0)
    assert not enrol.counts
