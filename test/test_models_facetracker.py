"""The classic FaceTracker: the masked localisation loss and save -> load."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from face_tracker_core.losses import facetracker_losses, localization_loss  # noqa: E402
from face_tracker_core.models.face_tracker import FaceTracker  # noqa: E402


def test_masked_loss_gives_no_box_gradient_for_no_face_samples():
    y_cls = tf.constant([[1.0], [0.0], [1.0], [0.0]])
    y_box = tf.constant([[0.1, 0.1, 0.5, 0.6], [0, 0, 0, 0], [0.3, 0.2, 0.9, 0.8], [0, 0, 0, 0]])
    pred_box = tf.Variable([[0.2, 0.1, 0.4, 0.7], [0.5, 0.5, 0.9, 0.9], [0.1, 0.1, 0.2, 0.3], [0.4, 0.3, 0.6, 0.7]])
    pred_cls = tf.Variable([[0.7], [0.4], [0.6], [0.2]])
    with tf.GradientTape() as tape:
        total, cls, box = facetracker_losses(y_cls, y_box, pred_cls, pred_box)
    g_box, g_cls = tape.gradient(total, [pred_box, pred_cls])
    g_box = g_box.numpy()
    assert np.all(g_box[[1, 3]] == 0.0), "no-face samples must not pull the box head"
    assert np.all(np.abs(g_box[[0, 2]]).sum(axis=1) > 0)
    assert np.all(g_cls.numpy() != 0.0)  # the class head still learns from every sample
    # Unmasked (the tutorials' bug) does produce a gradient for the no-face rows.
    with tf.GradientTape() as tape:
        tutorial_loss = localization_loss(y_box, pred_box)
    assert np.abs(tape.gradient(tutorial_loss, pred_box).numpy()[[1, 3]]).sum() > 0


def test_localization_loss_matches_the_tutorials_formula():
    yt = np.array([[0.1, 0.2, 0.5, 0.6]], np.float32)
    yp = np.array([[0.2, 0.1, 0.4, 0.9]], np.float32)
    expected = (0.1 ** 2 + 0.1 ** 2) + ((0.4 - 0.2) ** 2 + (0.4 - 0.8) ** 2)
    assert float(localization_loss(yt, yp)) == pytest.approx(expected, rel=1e-5)
    assert float(localization_loss(yt, yp, mask=np.ones((1, 1)))) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small"])
def test_save_load_same_predictions(tmp_path, backbone):
    model = FaceTracker(backbone, image_size=64, weights=None, dense_units=32)
    x = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    cls, box = model(x)
    assert cls.shape == (2, 1) and box.shape == (2, 4)
    path = str(tmp_path / "ft.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    cls2, box2 = loaded(x)
    np.testing.assert_allclose(np.asarray(cls), np.asarray(cls2), atol=1e-6)
    np.testing.assert_allclose(np.asarray(box), np.asarray(box2), atol=1e-6)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backbone"):
        FaceTracker("resnet9000", image_size=64)
