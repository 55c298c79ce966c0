"""Export of the detector: .keras, SavedModel and TFLite give the same faces; bad files fail clearly."""

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from face_tracker_core.errors import ModelLoadError  # noqa: E402
from face_tracker_core.export import export_detector, read_sidecar  # noqa: E402
from face_tracker_core.infer import make_detector  # noqa: E402
from face_tracker_core.models.face_detector import DetectorConfig, build_face_detector  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    model = build_face_detector(DetectorConfig(stem=8, widths=(8, 16, 16, 16), depths=(0, 1, 0, 0), neck=16))
    rng = np.random.default_rng(0)
    # Random but confident weights so that NMS has work to do.
    for level in range(3):
        head = model.get_layer(f"head{level}")
        k, b = head.cls.get_weights()
        head.cls.set_weights([rng.normal(0, 0.5, k.shape).astype(np.float32), np.full_like(b, 1.0)])
        k, b = head.reg.get_weights()
        head.reg.set_weights([rng.normal(0, 0.05, k.shape).astype(np.float32), np.array([0, 0, 1.0, 1.0], np.float32)])
    src = str(d / "tiny.keras")
    model.save(src)
    over = {"input_size": 128, "score_threshold": 0.3}
    paths = {
        "keras": export_detector(src, str(d / "out.keras"), "keras", config_overrides=over),
        "savedmodel": export_detector(src, str(d / "out_savedmodel"), "savedmodel", config_overrides=over),
        "tflite16": export_detector(src, str(d / "out16.tflite"), "tflite", "float16", over),
    }
    return paths


def _detect(path, img):
    det = make_detector("keras", model_path=path)
    return det, det.detect(img)


def test_formats_agree(exported):
    img = np.random.default_rng(1).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    results = {k: _detect(p, img) for k, p in exported.items()}
    det, ref = results["keras"]
    assert det.input_size == 128 and det.score_threshold == pytest.approx(0.3)
    assert ref, "the confident tiny model should report boxes"
    ref_boxes = np.array([d.box.as_xyxy() for d in ref])
    boxes = np.array([d.box.as_xyxy() for d in results["savedmodel"][1]])
    assert boxes.shape == ref_boxes.shape
    np.testing.assert_allclose(boxes, ref_boxes, atol=0.05)
    # float16 weights: the same faces up to rounding (NMS may swap a near-tie).
    from face_tracker_core.eval.detection_metrics import iou_matrix

    b16 = np.array([d.box.as_xyxy() for d in results["tflite16"][1]]).reshape(-1, 4)
    assert abs(len(b16) - len(ref)) <= max(1, len(ref) // 10)
    assert np.mean(iou_matrix(ref_boxes, b16).max(axis=1) > 0.9) >= 0.9
    assert read_sidecar(exported["tflite16"])["input_size"] == 128


def test_missing_truncated_and_wrong_files_fail_clearly(exported, tmp_path):
    with pytest.raises(ModelLoadError, match="nope.tflite"):
        make_detector("keras", model_path=str(tmp_path / "nope.tflite"))
    data = open(exported["tflite16"], "rb").read()
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelLoadError, match="truncated.tflite"):
        make_detector("keras", model_path=str(bad))
    bad_keras = tmp_path / "truncated.keras"
    bad_keras.write_bytes(open(exported["keras"], "rb").read()[:1000])
    with pytest.raises(ModelLoadError, match="truncated.keras"):
        make_detector("keras", model_path=str(bad_keras))
    import keras

    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    wrong = str(tmp_path / "classifier.keras")
    other.save(wrong)
    with pytest.raises(ModelLoadError, match="classifier.keras.*wrong architecture"):
        make_detector("keras", model_path=wrong)
    conv = tf.lite.TFLiteConverter.from_keras_model(other)
    wrong_tfl = tmp_path / "classifier.tflite"
    wrong_tfl.write_bytes(conv.convert())
    with pytest.raises(ModelLoadError, match="classifier.tflite.*wrong architecture"):
        make_detector("keras", model_path=str(wrong_tfl))


def test_cli_exits_nonzero_with_one_line_naming_the_file(exported, tmp_path, caplog, shared_data):
    from face_tracker_core.cli.main import main

    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a model")
    img = os.path.join(shared_data("detection", "noface"), sorted(os.listdir(shared_data("detection", "noface")))[0])
    assert main(["detect", img, "--detector", "keras", "--model", str(bad)]) == 2
    assert any("broken.tflite" in r.getMessage() for r in caplog.records)
    assert main(["export", str(tmp_path / "missing.keras")]) == 2
