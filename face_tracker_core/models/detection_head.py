"""Per-level prediction head of the multi-face detector: face logit + box regression."""

from __future__ import annotations

import math

import keras

from .dw_sep_block import DWSepBlock

#: initial face probability of every point (focal-loss prior): keeps the first steps stable
#: when >99% of the points are background.
PRIOR_PROB = 0.01


@keras.saving.register_keras_serializable(package="face_tracker")
class DetectionHead(keras.layers.Layer):
    """``depth`` depthwise-separable blocks, then two 1x1 convs.

    Args:
        channels: channels of the shared tower.
        depth: number of tower blocks.

    Input ``[B, H, W, C]`` -> ``(cls [B, H, W, 1] logits, reg [B, H, W, 4] = (dx, dy, log w, log h))``
    in stride units (see :class:`~face_tracker_core.models.box_decoder.BoxDecoder`).
    """

    def __init__(self, channels: int = 64, depth: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.depth = int(depth)
        self.tower = [DWSepBlock(self.channels, name=f"tower{i}") for i in range(self.depth)]
        bias = -math.log((1 - PRIOR_PROB) / PRIOR_PROB)
        self.cls = keras.layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(bias), name="cls",
                                       kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.reg = keras.layers.Conv2D(4, 1, name="reg", kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for blk in self.tower:
            blk.build(shape)
            shape = shape[:-1] + (self.channels,)
        self.cls.build(shape)
        self.reg.build(shape)
        self.built = True

    def call(self, x, training=None):
        for blk in self.tower:
            x = blk(x, training=training)
        return self.cls(x), self.reg(x)

    def compute_output_shape(self, input_shape):
        s = tuple(input_shape[:-1])
        return s + (1,), s + (4,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(channels=self.channels, depth=self.depth)
        return cfg
