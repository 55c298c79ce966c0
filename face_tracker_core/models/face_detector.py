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

import dataclasses
import json
from typing import Any, Dict, Tuple

import keras

from .box_decoder import BoxDecoder
from .conv_bn_act import ConvBNAct
from .detection_head import DetectionHead
from .dw_sep_block import DWSepBlock
from .fpn_neck import FPNNeck


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Hyper-parameters of :func:`build_face_detector` and of its post-processing.

    Attributes:
        input_size: longest side (pixels) frames are letterboxed to at inference; training crops
            are ``input_size`` x ``input_size``.
        stem: channels of the stride-2 stem.
        widths: channels of the stride 4, 8, 16, 32 stages.
        depths: extra stride-1 blocks per stage.
        neck: FPN channels.
        head_depth: blocks in each head tower.
        strides: detection strides (fixed: 8, 16, 32).
        score_threshold: default operating threshold (chosen on the validation split).
        nms_iou: IoU above which the lower-scored of two boxes is suppressed.
        max_detections: most faces returned per frame.
    """

    input_size: int = 416
    stem: int = 16
    widths: Tuple[int, int, int, int] = (32, 64, 96, 128)
    depths: Tuple[int, int, int, int] = (1, 2, 2, 1)
    neck: int = 64
    head_depth: int = 1
    strides: Tuple[int, int, int] = (8, 16, 32)
    score_threshold: float = 0.4
    nms_iou: float = 0.45
    max_detections: int = 200

    def get_config(self) -> Dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "DetectorConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(cfg) - fields
        if unknown:
            raise ValueError(f"unknown detector config keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})

    def to_json(self) -> str:
        return json.dumps(self.get_config(), indent=2, sort_keys=True)


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
