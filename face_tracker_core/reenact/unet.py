"""The pix2pix U-Net generator (Isola et al. 2017, appendix 6.1.1), with a configurable width.

Encoder ``C(w)-C(2w)-C(4w)-C(8w)-...`` of 4x4 stride-2 convolutions (BatchNorm except on the
first, LeakyReLU 0.2) down to 1x1, a mirrored decoder of 4x4 stride-2 transposed convolutions
(BatchNorm, ReLU, dropout 0.5 on the innermost ``dropout_blocks``) with a skip connection from
each encoder level, and a final transposed convolution to 3 channels with ``tanh``.

The paper's width is ``base_filters=64, max_filters=512`` (54 M parameters at 256 px); a CPU at
10 fps needs far less (see ``docs/model_cards/reenactment.md`` for the chosen width). Only
standard Keras layers are used, so the saved model loads and converts (SavedModel, TFLite)
without this module.
"""

from __future__ import annotations

import dataclasses
import math

import keras

from ..dataclass_config import DataclassConfig


@dataclasses.dataclass(frozen=True)
class UNetConfig(DataclassConfig):
    """Hyper-parameters of :func:`build_unet_generator`.

    Attributes:
        resolution: input/output side in pixels, a power of two (128 or 256).
        base_filters: channels of the first encoder level (the paper: 64).
        max_filters: channel cap of the deeper levels (the paper: 512).
        depth: stride-2 levels; ``None`` = down to 1x1 (``log2(resolution)``).
        dropout: rate in the innermost decoder blocks (the paper: 0.5, its only noise source).
        dropout_blocks: how many innermost decoder blocks get dropout (the paper: 3).
        channels: image channels in and out (3, BGR).
    """

    resolution: int = 256
    base_filters: int = 16
    max_filters: int = 128
    depth: int | None = None
    dropout: float = 0.5
    dropout_blocks: int = 3
    channels: int = 3

    def levels(self) -> int:
        d = self.depth if self.depth is not None else int(round(math.log2(self.resolution)))
        if self.resolution % (2 ** d):
            raise ValueError(f"resolution {self.resolution} is not divisible by 2**depth = {2 ** d}")
        return d

    def widths(self) -> list:
        """Channels of each encoder level, outermost first."""
        return [min(self.base_filters * 2 ** i, self.max_filters) for i in range(self.levels())]


def build_unet_generator(config: UNetConfig = UNetConfig(), name: str = "generator") -> keras.Model:
    """Build the generator.

    Args:
        config: architecture.
        name: model name.

    Returns:
        Functional model ``[B, R, R, C]`` float32 sketch in ``[-1, 1]`` -> ``[B, R, R, C]`` image in
        ``[-1, 1]`` (``tanh``), ``R = config.resolution``.
    """
    init = keras.initializers.RandomNormal(0.0, 0.02)  # the paper's init
    widths = config.widths()
    inp = keras.Input((config.resolution, config.resolution, config.channels), name="sketch")
    x = inp
    skips = []
    for i, w in enumerate(widths):
        x = keras.layers.Conv2D(w, 4, strides=2, padding="same", use_bias=False, kernel_initializer=init,
                                name=f"enc{i}_conv")(x)
        if i > 0:
            x = keras.layers.BatchNormalization(name=f"enc{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"enc{i}_act")(x)
        skips.append(x)
    # Decoder: from the level above the bottleneck back up to the first level.
    for k, i in enumerate(range(len(widths) - 2, -1, -1)):
        x = keras.layers.Conv2DTranspose(widths[i], 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=init, name=f"dec{i}_deconv")(x)
        x = keras.layers.BatchNormalization(name=f"dec{i}_bn")(x)
        if k < config.dropout_blocks and config.dropout > 0:
            x = keras.layers.Dropout(config.dropout, name=f"dec{i}_drop")(x)
        x = keras.layers.ReLU(name=f"dec{i}_act")(x)
        x = keras.layers.Concatenate(name=f"dec{i}_skip")([x, skips[i]])
    x = keras.layers.Conv2DTranspose(config.channels, 4, strides=2, padding="same", kernel_initializer=init,
                                     name="out_deconv")(x)
    out = keras.layers.Activation("tanh", name="image", dtype="float32")(x)
    return keras.Model(inp, out, name=name)
