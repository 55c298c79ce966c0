"""Backbones of the classic FaceTracker (Keras applications without their classifier top)."""

from __future__ import annotations

import keras

#: names accepted by :func:`build_classic_backbone`.
BACKBONES = ("vgg16", "mobilenet_v2", "mobilenet_v3_small")


def build_classic_backbone(name: str = "vgg16", image_size: int = 120, weights=None) -> keras.Model:
    """A feature extractor taking ``[B, S, S, 3]`` RGB images in [0, 1] (the tutorials' input).

    Args:
        name: ``vgg16`` (the tutorials'), ``mobilenet_v2`` or ``mobilenet_v3_small``.
        image_size: input side ``S`` in pixels (>= 32).
        weights: ``None`` (random init, offline) or ``"imagenet"`` (downloads; needs internet).

    Returns:
        ``keras.Model`` ``[B, S, S, 3] -> [B, h, w, C]`` (``include_top=False``). The tutorials fed
        [0, 1] pixels straight into VGG16; the MobileNets get the [-1, 1] range they were built for.
    """
    if weights not in (None, "imagenet"):
        raise ValueError(f"weights must be None or 'imagenet', got {weights!r}")
    shape = (image_size, image_size, 3)
    inp = keras.Input(shape, name="image")
    if name == "vgg16":
        net = keras.applications.VGG16(include_top=False, weights=weights, input_shape=shape)
        x = inp
    elif name == "mobilenet_v2":
        net = keras.applications.MobileNetV2(include_top=False, weights=weights, input_shape=shape)
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(inp)
    elif name == "mobilenet_v3_small":
        net = keras.applications.MobileNetV3Small(include_top=False, weights=weights, input_shape=shape,
                                                  include_preprocessing=False)
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(inp)
    else:
        raise ValueError(f"unknown backbone '{name}' (choose from {', '.join(BACKBONES)})")
    return keras.Model(inp, net(x), name=f"{name}_backbone")
