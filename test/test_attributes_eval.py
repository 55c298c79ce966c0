"""Attribute evaluation pairs every prediction with its own photo's labels, whatever the row order."""

from __future__ import annotations

import numpy as np

from face_tracker_core.attributes.training import evaluate_attribute_model


def _oracle_model(size: int):
    """A model that reads the label off the crop: probability = mean pixel / 255."""
    import keras

    inp = keras.Input((size, size, 1))
    out = keras.layers.Rescaling(1.0 / 255.0)(keras.layers.GlobalAveragePooling2D()(inp))
    return keras.Model(inp, out)


def test_evaluation_on_shuffled_rows_matches_each_photo():
    rng = np.random.default_rng(3)
    n, size = 60, 4
    labels = rng.integers(0, 2, (n, 1)).astype(np.float32)
    crops = np.repeat(labels[:, None, None, :] * 255, size, axis=1).repeat(size, axis=2).astype(np.uint8)
    rows = rng.permutation(n)[:50]  # shuffled, as `--split all` concatenates test, val and train rows
    report, prob = evaluate_attribute_model(_oracle_model(size), crops, labels, rows, np.zeros(1, np.uint8),
                                            ["Male"], batch_size=8)
    assert report[0]["accuracy"] == 1.0
    assert report[0]["balanced_accuracy"] == 1.0
    # the returned probabilities follow the order of ``rows``
    np.testing.assert_allclose(prob[:, 0], labels[rows, 0], atol=1e-6)
