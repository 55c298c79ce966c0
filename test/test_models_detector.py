"""The multi-face detector's building blocks: shapes, decoding, config and save/load round trips."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from face_tracker_core.models.box_decoder import BoxDecoder  # noqa: E402
from face_tracker_core.models.conv_bn_act import ConvBNAct  # noqa: E402
from face_tracker_core.models.detection_head import DetectionHead  # noqa: E402
from face_tracker_core.models.dw_sep_block import DWSepBlock  # noqa: E402
from face_tracker_core.models.face_detector import DetectorConfig, build_face_detector  # noqa: E402
from face_tracker_core.models.fpn_neck import FPNNeck  # noqa: E402
from face_tracker_core.train.detector_data import grid_points  # noqa: E402

SMALL = DetectorConfig(stem=8, widths=(8, 16, 16, 16), depths=(0, 1, 0, 0), neck=16)


def test_output_shape_any_aspect():
    model = build_face_detector(SMALL)
    for h, w in ((64, 96), (96, 64), (128, 128)):
        out = model(np.zeros((2, h, w, 3), np.float32))
        n = sum((h // s) * (w // s) for s in (8, 16, 32))
        assert tuple(out.shape) == (2, n, 5)


def test_decoder_zero_regression_gives_stride_boxes_on_grid():
    h, w = 64, 96
    inputs = []
    for s in (8, 16, 32):
        inputs += [np.zeros((1, h // s, w // s, 1), np.float32), np.zeros((1, h // s, w // s, 4), np.float32)]
    out = np.asarray(BoxDecoder((8, 16, 32))(inputs))[0]
    points, strides = grid_points(h, w)
    centers = (out[:, 1:3] + out[:, 3:5]) / 2
    np.testing.assert_allclose(centers, points, atol=1e-4)
    np.testing.assert_allclose(out[:, 3] - out[:, 1], strides, atol=1e-4)


def test_decoder_offsets_and_log_size():
    reg = np.zeros((1, 1, 1, 4), np.float32)
    reg[..., :] = [0.5, -1.0, np.log(2.0), 0.0]
    out = np.asarray(BoxDecoder((32,))([np.zeros((1, 1, 1, 1), np.float32), reg]))[0, 0]
    # point (16, 16), centre (16 + 16, 16 - 32), size 64 x 32
    np.testing.assert_allclose(out[1:], [32 - 32, -16 - 16, 32 + 32, -16 + 16], atol=1e-4)


@pytest.mark.parametrize("layer", [ConvBNAct(8, 3, 2), DWSepBlock(8), FPNNeck(16), DetectionHead(16, 2),
                                   BoxDecoder((8, 16, 32))])
def test_layers_config_round_trip(layer):
    cfg = layer.get_config()
    clone = type(layer).from_config(cfg)
    assert clone.get_config() == cfg


def test_detector_config_round_trip_and_unknown_key():
    cfg = DetectorConfig(input_size=320, neck=48)
    assert DetectorConfig.from_config(cfg.get_config()) == cfg
    with pytest.raises(ValueError):
        DetectorConfig.from_config({"nek": 3})


def test_save_load_same_predictions(tmp_path):
    model = build_face_detector(SMALL)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    from face_tracker_core.export import load_detector_model

    loaded = load_detector_model(path)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(loaded(x)), rtol=1e-5, atol=1e-4)


def test_detector_loss_ignores_ignored_points_and_is_non_negative():
    from face_tracker_core.losses import detector_loss_terms

    rng = np.random.default_rng(0)
    y_pred = np.concatenate([rng.normal(0, 2, (2, 6, 1)), rng.uniform(0, 20, (2, 6, 2)),
                             rng.uniform(30, 50, (2, 6, 2))], axis=-1).astype(np.float32)
    y_true = np.zeros((2, 6, 5), np.float32)
    y_true[0, 0] = [1, 0, 0, 40, 40]
    y_true[1, 2] = [1, 5, 5, 45, 45]
    cls, box = (float(v) for v in detector_loss_terms(y_true, y_pred))
    assert cls >= 0 and box >= 0
    ignored = y_true.copy()
    ignored[0, 3, 0] = ignored[1, 4, 0] = -1  # these points must not count at all
    cls_i, box_i = (float(v) for v in detector_loss_terms(ignored, y_pred))
    assert box_i == pytest.approx(box)
    masked = y_pred.copy()
    masked[0, 3, 0] = masked[1, 4, 0] = -50.0  # ~ zero loss as background: removing them changes little
    assert cls_i <= cls + 1e-6
    assert cls_i == pytest.approx(float(detector_loss_terms(ignored, masked)[0]), rel=1e-5)
