"""Depthwise-separable block (MobileNet v1 style, with a residual when shapes allow)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="face_tracker")
class DWSepBlock(keras.layers.Layer):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN (+ ReLU).

    A residual connection is added when ``strides == 1`` and input channels equal ``filters``,
    which keeps deeper stacks trainable from scratch on small data.

    Args:
        filters: output channels.
        strides: 1 or 2 (applied by the depthwise conv).

    Input ``[B, H, W, C]`` -> output ``[B, H/strides, W/strides, filters]``.
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.dw = keras.layers.DepthwiseConv2D(3, strides=self.strides, padding="same", use_bias=False, name="dw")
        self.bn1 = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name="bn1")
        self.pw = keras.layers.Conv2D(self.filters, 1, use_bias=False, name="pw")
        self.bn2 = keras.layers.BatchNormalization(momentum=0.97, epsilon=1e-3, name="bn2")
        self._residual = False

    def build(self, input_shape):
        self.dw.build(input_shape)
        s1 = self.dw.compute_output_shape(input_shape)
        self.bn1.build(s1)
        self.pw.build(s1)
        self.bn2.build(self.pw.compute_output_shape(s1))
        self._residual = self.strides == 1 and input_shape[-1] == self.filters
        self.built = True

    def call(self, x, training=None):
        y = keras.ops.relu(self.bn1(self.dw(x), training=training))
        y = self.bn2(self.pw(y), training=training)
        if self._residual:
            y = y + x
        return keras.ops.relu(y)

    def compute_output_shape(self, input_shape):
        return self.pw.compute_output_shape(self.dw.compute_output_shape(input_shape))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, strides=self.strides)
        return cfg
