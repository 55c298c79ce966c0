"""Turns per-level head outputs into one list of scored boxes in input pixels (anchor-free)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

#: log-size outputs are clipped to this before ``exp`` so a bad step cannot overflow.
MAX_LOG_SIZE = 6.0


@keras.saving.register_keras_serializable(package="face_tracker")
class BoxDecoder(keras.layers.Layer):
    """Decode anchor-free predictions of several strides.

    Every feature-map cell ``(i, j)`` of stride ``s`` is a point ``p = ((j + .5) s, (i + .5) s)``.
    The head predicts ``(dx, dy, log w, log h)`` in stride units, so the box is centred at
    ``p + (dx, dy) s`` with size ``exp(log w) s`` x ``exp(log h) s``. Unlike FCOS' distances to the
    sides this also lets a point *outside* a tiny face (a 5 px face at stride 8) predict it.

    Args:
        strides: one stride (pixels) per level, in the order of the inputs.

    Inputs: a flat list ``[cls_0, reg_0, cls_1, reg_1, ...]`` with ``cls_l`` ``[B, H_l, W_l, 1]``
    (logits) and ``reg_l`` ``[B, H_l, W_l, 4]``.

    Output: ``[B, N, 5]`` with ``N = sum(H_l W_l)``; channel 0 is the face logit, channels 1..4
    the box ``(x1, y1, x2, y2)`` in pixels of the (letterboxed) network input.
    """

    def __init__(self, strides: Sequence[int] = (8, 16, 32), **kwargs):
        super().__init__(**kwargs)
        self.strides = tuple(int(s) for s in strides)

    def call(self, inputs):
        outs = []
        for level, stride in enumerate(self.strides):
            cls, reg = inputs[2 * level], inputs[2 * level + 1]
            shape = ops.shape(reg)
            h, w = shape[1], shape[2]
            s = float(stride)
            xs = (ops.cast(ops.arange(w), "float32") + 0.5) * s
            ys = (ops.cast(ops.arange(h), "float32") + 0.5) * s
            gx = ops.tile(ops.expand_dims(xs, 0), [h, 1])  # [H, W]
            gy = ops.tile(ops.expand_dims(ys, 1), [1, w])
            cx = gx[None] + reg[..., 0] * s  # [B, H, W]
            cy = gy[None] + reg[..., 1] * s
            bw = ops.exp(ops.clip(reg[..., 2], -MAX_LOG_SIZE, MAX_LOG_SIZE)) * s
            bh = ops.exp(ops.clip(reg[..., 3], -MAX_LOG_SIZE, MAX_LOG_SIZE)) * s
            out = ops.stack([cls[..., 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=-1)
            outs.append(ops.reshape(out, (ops.shape(out)[0], -1, 5)))
        return ops.concatenate(outs, axis=1)

    def compute_output_shape(self, input_shapes):
        n = 0
        for level in range(len(self.strides)):
            h, w = input_shapes[2 * level + 1][1:3]
            if h is None or w is None:
                n = None
                break
            n += h * w
        return (input_shapes[0][0], n, 5)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(strides=list(self.strides))
        return cfg

