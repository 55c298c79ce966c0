"""Configuration of the multi-face detector, importable without Keras.

The inference path (LiteRT) reads a model's sidecar into this class; keeping it apart from the
Keras layers lets a node load the shipped ``.tflite`` detector without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

from ..dataclass_config import DataclassConfig


@dataclasses.dataclass(frozen=True)
class DetectorConfig(DataclassConfig):
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
