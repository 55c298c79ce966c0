"""The multi-face detector (the shipped default): a small anchor-free single-stage network.

Architecture (see ``docs/model_cards/detector.md`` for why):

* input: ``[B, H, W, 3]`` float32 **BGR in 0..255**, ``H`` and ``W`` multiples of 32 (the
  inference wrappers letterbox any frame to that);
* backbone: 3x3 conv stem (stride 2) and depthwise-separable stages down to strides 4, 8, 16, 32;
* neck: top-down FPN on strides 8/16/32;
* heads: one tiny head per level predicting a face logit and ``(dx, dy, log w, log h)``;
* decoder: :class:`BoxDecoder`, giving ``[B, N, 5]`` = (logit, x1, y1, x2, y2 in input pixels).

Non-maximum suppression is added by the exported inference graphs (:mod:`face_tracker_core.export`).
"""

from __future__ import annotations

import keras

from .box_decoder import BoxDecoder
from .conv_bn_act import ConvBNAct
from .detection_head import DetectionHead
from .detector_config import DetectorConfig
from .dw_sep_block import DWSepBlock
from .fpn_neck import FPNNeck

__all__ = ["DetectorConfig", "build_face_detector"]


def build_face_detector(config: DetectorConfig = DetectorConfig(), name: str = "face_detector") -> keras.Model:
    """Build the (trainable) detector.

    Args:
        config: architecture; only the architecture fields matter here.

    Returns:
        A functional ``keras.Model``: ``[B, H, W, 3]`` BGR 0..255 -> ``[B, N, 5]`` (logit, x1, y1,
        x2, y2 in input pixels), with ``H``, ``W`` left dynamic.
    """
    if tuple(config.strides) != (8, 16, 32):
        raise ValueError("the detector's strides are fixed to (8, 16, 32)")
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inp)
    x = ConvBNAct(config.stem, 3, strides=2, name="stem")(x)
    feats = []
    for stage, (width, depth) in enumerate(zip(config.widths, config.depths)):
        x = DWSepBlock(width, strides=2, name=f"stage{stage}_down")(x)
        for i in range(depth):
            x = DWSepBlock(width, name=f"stage{stage}_block{i}")(x)
        if stage >= 1:  # strides 8, 16, 32
            feats.append(x)
    pyramid = FPNNeck(config.neck, name="fpn")(feats)
    head_out = []
    for level, feat in enumerate(pyramid):
        cls, reg = DetectionHead(config.neck, config.head_depth, name=f"head{level}")(feat)
        head_out += [cls, reg]
    out = BoxDecoder(config.strides, name="decode")(head_out)
    return keras.Model(inp, out, name=name)
