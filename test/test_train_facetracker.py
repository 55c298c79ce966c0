"""Classic FaceTracker training on real single-face photos (tiny in CI, longer when slow)."""

import csv
import os

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def _run(tmp_path, shared_data, **kw):
    from face_tracker_core.train.facetracker_trainer import FaceTrackerTrainConfig, train_facetracker

    root = os.path.dirname(shared_data("detection", "celeba_one_face"))
    cfg = FaceTrackerTrainConfig(runs_root=str(tmp_path), data_root=root, verbose=0, **kw)
    return train_facetracker(cfg)


def test_tiny_real_run_trains_end_to_end(tmp_path, shared_data):
    run_dir = _run(tmp_path, shared_data, name="tiny", backbone="mobilenet_v3_small", image_size=64,
                   batch_size=8, epochs=1, max_images=8, max_steps=2, lr=1e-3,
                   run_eagerly=True)
    for name in ("config.json", "best.keras", "metrics.csv", "loss_total.png", "loss_class.png", "loss_box.png",
                 "predictions.png"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    assert len(rows) == 1
    for key in ("loss", "class_loss", "box_loss", "val_loss", "val_class_loss", "val_box_loss"):
        assert np.isfinite(float(rows[-1][key])), key
    import keras

    model = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    x = np.random.default_rng(0).uniform(0, 1, (1, 64, 64, 3)).astype(np.float32)
    cls, box = model(x)
    assert 0 <= float(cls[0, 0]) <= 1 and np.all((np.asarray(box) >= 0) & (np.asarray(box) <= 1))


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["vgg16", "mobilenet_v2"])
def test_longer_run_lowers_validation_loss(tmp_path, shared_data, backbone):
    run_dir = _run(tmp_path, shared_data, name=backbone, backbone=backbone, image_size=120, batch_size=8,
                   epochs=4, max_images=96)
    rows = list(csv.DictReader(open(os.path.join(run_dir, "metrics.csv"))))
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_config_file_and_cli_overrides(tmp_path):
    from face_tracker_core.errors import DataError
    from face_tracker_core.train.facetracker_trainer import FaceTrackerTrainConfig

    path = tmp_path / "ft.yaml"
    path.write_text("sets: [celeba_one_face]\nbackbone: mobilenet_v2\n")
    cfg = FaceTrackerTrainConfig.from_file(str(path), ["weights=none", "epochs=3"])
    assert cfg.sets == ("celeba_one_face",) and cfg.backbone == "mobilenet_v2"
    assert cfg.weights is None and cfg.epochs == 3
    with pytest.raises(DataError, match="unknown FaceTrackerTrainConfig keys"):
        FaceTrackerTrainConfig.from_file(None, ["backbon=vgg16"])
