"""Our compact FaceNet-style embedder network (MobileFaceNet layout, Keras 3, any backend).

Input: aligned face crops ``(S, S, 3)`` BGR pixel values in [0, 255] (``S`` = 112 by default),
output: ``dim``-D L2-normalised vectors. Layout after Chen et al., *MobileFaceNets* (2018): a
stride-2 stem, inverted-residual bottlenecks down to 7 x 7, a 1x1 expansion, then a *global
depthwise* convolution instead of global average pooling (faces are aligned, so each position of
the 7 x 7 map has a fixed meaning worth its own weights) and a linear 128-D projection.

Only stock Keras layers are used so the ``.keras`` file loads on any backend without custom
objects.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple


def _conv_bn(x, filters: int, kernel: int, stride: int = 1, act: bool = True, name: str = ""):
    from keras import layers

    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x) if act else x


def _dw_bn(x, kernel: int, stride: int = 1, act: bool = True, name: str = ""):
    from keras import layers

    x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.PReLU(shared_axes=[1, 2], name=f"{name}_prelu")(x) if act else x


def _bottleneck(x, expand: int, out: int, stride: int, name: str):
    """Inverted residual: 1x1 expand -> 3x3 depthwise -> 1x1 linear project (+ skip)."""
    from keras import layers

    inp = x
    c = int(x.shape[-1])
    x = _conv_bn(x, c * expand, 1, name=f"{name}_exp")
    x = _dw_bn(x, 3, stride, name=f"{name}_dw")
    x = _conv_bn(x, out, 1, act=False, name=f"{name}_proj")
    if stride == 1 and c == out:
        x = layers.Add(name=f"{name}_add")([inp, x])
    return x


#: (expansion, channels, repeats, first stride) per stage, MobileFaceNet's table.
STAGES: Tuple[Tuple[int, int, int, int], ...] = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1),
                                                 (4, 128, 1, 2), (2, 128, 2, 1))


def build_facenet(input_size: int = 112, dim: int = 128, width: float = 1.0, dropout: float = 0.2,
                  stages: Sequence[Tuple[int, int, int, int]] = STAGES, name: str = "facenet"):
    """Build the embedding network.

    Args:
        input_size: crop side ``S`` (pixels, multiple of 16).
        dim: embedding size.
        width: channel multiplier (0.5 for a quicker, smaller net).
        dropout: dropout rate before the projection (training only).
        stages: bottleneck table ``(expansion, channels, repeats, stride)``.
        name: model name.

    Returns:
        ``keras.Model`` mapping ``(B, S, S, 3)`` float pixel values in [0, 255] to ``(B, dim)``
        unit vectors.
    """
    import keras
    from keras import layers

    if input_size % 16:
        raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
    ch = lambda c: max(16, int(round(c * width / 8)) * 8)  # noqa: E731
    inp = keras.Input((input_size, input_size, 3), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inp)
    x = _conv_bn(x, ch(64), 3, 2, name="stem")
    x = _dw_bn(x, 3, 1, name="stem_dw")
    for si, (t, c, n, s) in enumerate(stages):
        for i in range(n):
            x = _bottleneck(x, t, ch(c), s if i == 0 else 1, name=f"s{si}b{i}")
    x = _conv_bn(x, ch(512), 1, name="head")
    k = int(x.shape[1])
    # Global depthwise conv: one learned weight per channel and position of the aligned face.
    x = layers.DepthwiseConv2D(k, padding="valid", use_bias=False, name="gdc")(x)
    x = layers.BatchNormalization(momentum=0.9, name="gdc_bn")(x)
    x = layers.Flatten(name="flat")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(dim, use_bias=False, name="proj")(x)
    x = layers.BatchNormalization(momentum=0.9, name="proj_bn")(x)
    out = layers.UnitNormalization(name="l2")(x)
    return keras.Model(inp, out, name=name)


def get_config_dict(input_size: int = 112, dim: int = 128, width: float = 1.0,
                    dropout: float = 0.2) -> Dict:
    """The arguments of :func:`build_facenet` as a JSON-able dict (for run folders)."""
    return {"arch": "mobilefacenet", "input_size": input_size, "dim": dim, "width": width, "dropout": dropout}
