"""Detector backends: the shipped default model, dlib HOG, Haar fallback."""

import logging
import os

import numpy as np
import pytest

from face_tracker_core.imaging import read_image
from face_tracker_core.infer import available_backends, make_detector
from face_tracker_core.infer import default as default_mod


def _celeba_test_images(shared_data, n=3):
    from face_tracker_core.eval.detection_split import split_of
    from face_tracker_core.data.labelme import load_labelme

    folder = shared_data("detection", "celeba_one_face")
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and split_of("celeba_one_face", name) == "test":
            rec = load_labelme(os.path.join(folder, name))
            out.append((read_image(rec.image_path), rec.boxes[0]))
        if len(out) == n:
            break
    return out


def test_backends_registered():
    names = available_backends()
    for b in ("default", "haar", "keras", "tflite", "savedmodel", "dlib_hog", "dlib_mmod"):
        assert b in names


@pytest.mark.skipif(not os.path.isfile(default_mod.DEFAULT_MODEL), reason="no shipped detector")
def test_shipped_default_model_finds_celeba_faces(shared_data):
    det = make_detector("default")
    assert det.name == "default" and "detector.tflite" in det.describe()
    for img, gt in _celeba_test_images(shared_data):
        dets = det.detect(img)
        assert dets and max(d.box.iou(gt) for d in dets) >= 0.4
        assert all(0 <= d.score <= 1 for d in dets)
        assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


@pytest.mark.skipif(not os.path.isfile(default_mod.DEFAULT_MODEL), reason="no shipped detector")
def test_default_model_on_empty_and_odd_frames():
    det = make_detector("default")
    assert det.detect(np.zeros((480, 640, 3), np.uint8)) == []
    for shape in ((31, 17, 3), (1080, 1920, 3), (200, 50, 3)):
        out = det.detect(np.full(shape, 128, np.uint8))
        for d in out:
            assert 0 <= d.box.x1 <= d.box.x2 <= shape[1] and 0 <= d.box.y1 <= d.box.y2 <= shape[0]


@pytest.mark.skipif(not os.path.isfile(default_mod.DEFAULT_MODEL), reason="no shipped detector")
def test_nms_iou_is_the_one_that_runs(caplog, shared_data):
    """``nms_iou`` applies to ``.keras`` files; an exported graph has its NMS built in, so the
    value is refused with a warning, and ``describe()`` (which keys caches of detector output)
    always names the NMS that runs."""
    keras_file = os.path.join(default_mod.ASSETS, "detector.keras")
    loose = make_detector("default", model_path=keras_file, nms_iou=0.9, score_threshold=0.05)
    strict = make_detector("default", model_path=keras_file, nms_iou=0.2, score_threshold=0.05)
    assert "NMS IoU 0.90" in loose.describe() and "NMS IoU 0.20" in strict.describe()
    img = _celeba_test_images(shared_data, 1)[0][0]
    assert len(loose.detect(img)) > len(strict.detect(img))   # overlapping weak boxes survive IoU 0.9
    with caplog.at_level(logging.WARNING):
        exported = make_detector("default", nms_iou=0.9)
    assert "NMS IoU 0.45" in exported.describe()
    assert any("nms_iou=0.90 is ignored" in r.getMessage() for r in caplog.records)


def test_default_falls_back_to_haar_with_warning_only_when_absent(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(default_mod, "DEFAULT_MODEL", str(tmp_path / "absent.tflite"))
    with caplog.at_level(logging.WARNING):
        det = make_detector("default")
    assert det.name == "haar"
    assert any(r.levelno == logging.WARNING and "absent.tflite" in r.getMessage() for r in caplog.records)
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x00" * 100)
    monkeypatch.setattr(default_mod, "DEFAULT_MODEL", str(broken))
    from face_tracker_core.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="broken.tflite"):
        make_detector("default")


def test_dlib_hog_finds_a_celeba_face(shared_data):
    pytest.importorskip("dlib")
    det = make_detector("dlib_hog")
    hits = 0
    for img, gt in _celeba_test_images(shared_data):
        dets = det.detect(img)
        hits += bool(dets) and max(d.box.iou(gt) for d in dets) >= 0.3
    assert hits >= 2


def test_weights_signature_follows_the_model_file(tmp_path):
    """Caches of detector output key on it: new weights under the same file name give a new key."""
    from types import SimpleNamespace

    from face_tracker_core.infer.base import weights_signature

    f = tmp_path / "detector.tflite"
    f.write_bytes(b"weights v1")
    det = SimpleNamespace(model_path=str(f))
    first = weights_signature(det)
    assert first == weights_signature(det) and len(first) == 40
    f.write_bytes(b"weights v2")
    assert weights_signature(det) != first
    assert weights_signature(SimpleNamespace()) == ""  # e.g. Haar: no file of ours


def test_calibrated_threshold_comes_from_the_model_sidecar(tmp_path):
    import json
    import shutil

    from face_tracker_core.infer.base import calibrated_threshold

    shipped = json.load(open(default_mod.DEFAULT_MODEL + ".json"))["score_threshold"]
    assert calibrated_threshold("default") == shipped
    model = tmp_path / "mine.tflite"
    shutil.copy(default_mod.DEFAULT_MODEL, model)
    (tmp_path / "mine.tflite.json").write_text(json.dumps({"score_threshold": 0.61}))
    assert calibrated_threshold("keras", str(model)) == 0.61
    assert calibrated_threshold("default", str(model)) == 0.61
    assert calibrated_threshold("dlib_hog") == 0.5  # the constructor's default
    with pytest.raises(ValueError, match="unknown detector backend"):
        calibrated_threshold("nope")
