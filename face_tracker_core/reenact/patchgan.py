"""The pix2pix PatchGAN discriminator (Isola et al. 2017, appendix 6.1.2).

``C(w)-C(2w)-C(4w)-C(8w)`` of 4x4 convolutions (strides 2, 2, 2, 1; BatchNorm except on the first;
LeakyReLU 0.2) and a 4x4 convolution to one logit per patch. With 3 stride-2 layers each output
logit sees a 70x70 patch of the input: real/fake is judged on local texture, while the L1 term
takes care of the low frequencies.
"""

from __future__ import annotations

import dataclasses

import keras

from ..dataclass_config import DataclassConfig


@dataclasses.dataclass(frozen=True)
class PatchGANConfig(DataclassConfig):
    """Hyper-parameters of :func:`build_patchgan`.

    Attributes:
        resolution: input side in pixels.
        base_filters: channels of the first layer (the paper: 64).
        max_filters: channel cap (the paper: 512).
        stride2_layers: stride-2 layers (3 gives the paper's 70x70 receptive field).
        channels: channels of each of the two inputs (sketch and image).
    """

    resolution: int = 256
    base_filters: int = 64
    max_filters: int = 512
    stride2_layers: int = 3
    channels: int = 3

    def receptive_field(self) -> int:
        """Input pixels seen by one output logit (70 for the default)."""
        # Layers from the output back: final 4x4 s1, one 4x4 s1, then the stride-2 layers.
        rf = 1
        for stride in [1, 1] + [2] * self.stride2_layers:
            rf = rf * stride + (4 - stride)
        return rf


def build_patchgan(config: PatchGANConfig = PatchGANConfig(), name: str = "discriminator") -> keras.Model:
    """Build the discriminator.

    Args:
        config: architecture.
        name: model name.

    Returns:
        Functional model ``([B, R, R, C] sketch, [B, R, R, C] image)``, both in ``[-1, 1]`` ->
        ``[B, P, P, 1]`` logits (``P = R / 2**stride2_layers - 2``; 30 at 256 px).
    """
    init = keras.initializers.RandomNormal(0.0, 0.02)
    r, c = config.resolution, config.channels
    sketch = keras.Input((r, r, c), name="sketch")
    image = keras.Input((r, r, c), name="image")
    x = keras.layers.Concatenate(name="pair")([sketch, image])
    n = config.stride2_layers + 1
    for i in range(n):
        w = min(config.base_filters * 2 ** i, config.max_filters)
        stride = 2 if i < config.stride2_layers else 1
        # The paper pads explicitly before the stride-1 layers (valid convolutions) for the 70 px field.
        if stride == 1:
            x = keras.layers.ZeroPadding2D(1, name=f"c{i}_pad")(x)
        x = keras.layers.Conv2D(w, 4, strides=stride, padding="same" if stride == 2 else "valid", use_bias=False,
                                kernel_initializer=init, name=f"c{i}_conv")(x)
        if i > 0:
            x = keras.layers.BatchNormalization(name=f"c{i}_bn")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"c{i}_act")(x)
    x = keras.layers.ZeroPadding2D(1, name="out_pad")(x)
    out = keras.layers.Conv2D(1, 4, padding="valid", kernel_initializer=init, name="logits", dtype="float32")(x)
    return keras.Model([sketch, image], out, name=name)
