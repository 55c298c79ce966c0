"""A small plain conv stack: (Conv2D -> ReLU -> MaxPool) x 3, flattened (``--arch small_cnn``)."""

from __future__ import annotations

from typing import Sequence, Tuple

import keras


def build_small_cnn_base(input_shape: Tuple[int, int, int] = (64, 64, 3), filters: Sequence[int] = (32, 64, 128),
                    name: str = "conv_base") -> keras.Model:
    """Plain conv base, the baseline architecture next to the default small ResNet.

    Args:
        input_shape: ``(H, W, C)`` crop shape; pixel values 0..255 (RGB or gray), scaled inside.
        filters: channels of each Conv2D(3x3, ReLU) + MaxPool(2) block.

    Returns:
        Model ``[B, H, W, C] -> [B, (H/8) * (W/8) * filters[-1]]`` whose layers are named
        ``block<k>_conv`` / ``block<k>_pool`` (k from 1), so "the top block" is the last ``k``.
    """
    inp = keras.Input(input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inp)
    for k, f in enumerate(filters, start=1):
        x = keras.layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{k}_conv")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{k}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, x, name=name)
