"""Top-down feature pyramid (FPN) over the stride 8/16/32 backbone features."""

from __future__ import annotations

import keras
from keras import ops

from .conv_bn_act import ConvBNAct
from .dw_sep_block import DWSepBlock


@keras.saving.register_keras_serializable(package="face_tracker")
class FPNNeck(keras.layers.Layer):
    """Lateral 1x1 convs, nearest 2x upsampling + add from coarse to fine, one smoothing block each.

    Small faces live on the stride-8 map, whose backbone features are shallow; the top-down path
    gives them the context of the deeper maps (is this blob a head?) at almost no cost.

    Args:
        channels: channels of every output level.

    Inputs ``[C3, C4, C5]`` with spatial sizes ``(H, W), (H/2, W/2), (H/4, W/4)``;
    outputs ``[P3, P4, P5]`` with the same sizes and ``channels`` channels.
    """

    def __init__(self, channels: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.lateral = [ConvBNAct(self.channels, 1, name=f"lateral{i}") for i in range(3)]
        self.smooth = [DWSepBlock(self.channels, name=f"smooth{i}") for i in range(3)]

    def build(self, input_shapes):
        for lat, smooth, shape in zip(self.lateral, self.smooth, input_shapes):
            lat.build(shape)
            out = tuple(shape[:-1]) + (self.channels,)
            smooth.build(out)
        self.built = True

    @staticmethod
    def _up2(x):
        # Nearest-neighbour 2x via repeat: maps to one cheap op on every backend and in TFLite.
        return ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)

    def call(self, inputs, training=None):
        c3, c4, c5 = inputs
        p5 = self.lateral[2](c5, training=training)
        p4 = self.lateral[1](c4, training=training) + self._up2(p5)
        p3 = self.lateral[0](c3, training=training) + self._up2(p4)
        return [self.smooth[0](p3, training=training), self.smooth[1](p4, training=training),
                self.smooth[2](p5, training=training)]

    def compute_output_shape(self, input_shapes):
        return [tuple(s[:-1]) + (self.channels,) for s in input_shapes]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(channels=self.channels)
        return cfg
