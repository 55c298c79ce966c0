"""Siamese network: one shared convolutional tower, distance -> sigmoid, pair loss.

Two faces go through the same tower (shared weights) to L2-normalised vectors ``e1``, ``e2``;
the probability that they show the same person is ``sigmoid(a - b * ||e1 - e2||^2)`` with two
learned scalars (``b`` kept positive), trained with binary cross-entropy on pairs. For
efficiency every batch of ``P x K`` faces is scored as *all* its ``B (B - 1)`` pairs at once
(:class:`PairwiseLogits`), positives and negatives weighted equally.

Since the probability falls monotonically with the distance, ranking pairs by the tower's cosine
similarity ranks them exactly as the sigmoid does: the tower alone is the shipped embedder and
``(a, b)`` are kept in its JSON card to report probabilities.
"""

from __future__ import annotations

from typing import Dict


def build_tower(input_size: int = 112, dim: int = 128, filters=(32, 64, 128, 256), dropout: float = 0.2,
                name: str = "siamese_tower"):
    """Plain conv/pool tower -> ``(B, dim)`` unit vectors.

    Args:
        input_size: crop side, pixels.
        dim: embedding size.
        filters: channels of the conv blocks (each block halves the resolution).
        dropout: dropout before the projection (training only).
    """
    import keras
    from keras import layers

    inp = keras.Input((input_size, input_size, 3), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inp)
    for i, f in enumerate(filters):
        for j in range(1 if i == 0 else 2):
            x = layers.Conv2D(f, 5 if i == 0 else 3, padding="same", use_bias=False, name=f"b{i}c{j}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"b{i}c{j}_bn")(x)
            x = layers.ReLU(name=f"b{i}c{j}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"b{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(dim, name="proj")(x)
    out = layers.UnitNormalization(name="l2")(x)
    return keras.Model(inp, out, name=name)


def _pairwise_logits_layer():
    import keras
    from keras import ops

    class PairwiseLogits(keras.layers.Layer):
        """``(B, D)`` unit vectors -> ``(B, B)`` same-person logits ``a - softplus(b') * d^2``."""

        def build(self, input_shape):
            self.a = self.add_weight(shape=(), initializer=keras.initializers.Constant(2.0), name="a")
            self.b = self.add_weight(shape=(), initializer=keras.initializers.Constant(1.0), name="b")

        def call(self, e):
            dot = ops.matmul(e, ops.transpose(e))
            d2 = ops.maximum(2.0 - 2.0 * dot, 0.0)
            return self.a - ops.softplus(self.b) * d2

        def get_config(self):
            return super().get_config()

    return PairwiseLogits


def build_pair_model(tower):
    """Training model: faces ``(B, S, S, 3)`` -> all-pairs logits ``(B, B)``."""
    import keras

    inp = keras.Input(tower.input_shape[1:], name="faces")
    logits = _pairwise_logits_layer()(name="pair_logits")(tower(inp))
    return keras.Model(inp, logits, name="siamese_pairs")


def head_params(pair_model) -> Dict[str, float]:
    """``{"a": a, "b": b}`` of the trained head (``b`` after the softplus)."""
    import numpy as np

    layer = pair_model.get_layer("pair_logits")
    a = float(np.asarray(layer.a.numpy() if hasattr(layer.a, "numpy") else layer.a))
    braw = float(np.asarray(layer.b.numpy() if hasattr(layer.b, "numpy") else layer.b))
    return {"a": a, "b": float(np.log1p(np.exp(braw)))}


def balanced_pair_bce(labels, logits):
    """Binary cross-entropy over all off-diagonal pairs, positives and negatives weighted 50/50.

    Args:
        labels: ``(B,)`` person ids.
        logits: ``(B, B)`` from :class:`PairwiseLogits`.
    """
    from keras import ops

    from .triplet import pair_targets

    same, off = pair_targets(labels)
    pos = same * off
    neg = (1.0 - same) * off
    # log(sigmoid(z)) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z)
    lp = ops.sum(ops.softplus(-logits) * pos) / ops.maximum(ops.sum(pos), 1.0)
    ln = ops.sum(ops.softplus(logits) * neg) / ops.maximum(ops.sum(neg), 1.0)
    return 0.5 * (lp + ln)


def get_config_dict(input_size: int = 112, dim: int = 128, filters=(32, 64, 128, 256),
                    dropout: float = 0.2) -> Dict:
    return {"arch": "siamese_tower", "input_size": input_size, "dim": dim, "filters": list(filters),
            "dropout": dropout}
