"""Backends for trained multi-face detector files: ``.keras``, SavedModel folders and ``.tflite``.

``make_detector("keras", model_path=...)`` picks the runtime from the path; ``"tflite"`` and
``"savedmodel"`` are aliases. Frames are letterboxed (aspect kept, longest side =
``input_size``, padded right/bottom to multiples of 32), run, and boxes mapped back to frame pixels.
"""

from __future__ import annotations

import logging
import os
import time
from typing import List, Optional, Tuple

import cv2
import numpy as np

from ..errors import ModelLoadError
from ..tflite_runtime import tflite_interpreter
from ..types import BBox, Detection
from .base import FaceDetector, register_backend

log = logging.getLogger(__name__)

#: score below which the exported graphs drop boxes before NMS (the operating threshold is higher;
#: this only bounds the work and still leaves enough for AP curves).
MIN_SCORE = 0.05
STRIDE = 32


def prepare_input(bgr: np.ndarray, input_size: int) -> Tuple[np.ndarray, float]:
    """Letterbox a frame for the detector.

    Args:
        bgr: ``(H, W, 3)`` uint8 frame (a 2-D grey frame is expanded to 3 channels).
        input_size: longest side after resizing, pixels.

    Returns:
        ``(x, scale)``: ``x`` float32 ``[1, h, w, 3]`` with ``h``, ``w`` multiples of 32 (image at
        the top-left, zero padding), and the scale that maps frame pixels to input pixels.
    """
    if bgr.ndim == 2:
        bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    h, w = bgr.shape[:2]
    scale = input_size / max(h, w)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ph, pw = -(-nh // STRIDE) * STRIDE, -(-nw // STRIDE) * STRIDE
    x = np.zeros((1, ph, pw, 3), np.float32)
    x[0, :nh, :nw] = resized
    return x, scale


def _config(model_path: str, overrides: dict):
    from ..export import read_sidecar
    from ..models.detector_config import DetectorConfig

    cfg = read_sidecar(model_path)
    try:
        base = DetectorConfig.from_config(cfg) if cfg else DetectorConfig()
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{model_path}.json: bad detector config ({exc})") from exc
    return base


class _Runtime:
    """One loaded model: ``run(x [1,h,w,3]) -> (boxes [K,4] input px, scores [K])``."""

    kind = "?"

    def run(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


class _KerasRuntime(_Runtime):
    kind = "keras"

    def __init__(self, path: str, nms_iou: float, max_det: int):
        from ..export import load_detector_model

        self.model = load_detector_model(path)
        self.nms_iou, self.max_det = nms_iou, max_det

    def run(self, x):
        from ..boxes import postprocess

        raw = np.asarray(self.model(x, training=False))[0]
        return postprocess(raw, MIN_SCORE, self.nms_iou, self.max_det)


class _SavedModelRuntime(_Runtime):
    kind = "savedmodel"

    def __init__(self, path: str):
        import tensorflow as tf

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise ModelLoadError(f"{path}: not a SavedModel folder (no saved_model.pb)")
        try:
            loaded = tf.saved_model.load(path)
            self.fn = loaded.signatures["serving_default"]
        except Exception as exc:
            raise ModelLoadError(f"{path}: cannot load SavedModel ({type(exc).__name__}: {exc})") from exc
        outs = set(self.fn.structured_outputs)
        if not {"boxes", "scores"} <= outs:
            raise ModelLoadError(f"{path}: wrong architecture: SavedModel outputs {sorted(outs)}, "
                                 "expected 'boxes' and 'scores'")
        self._loaded = loaded

    def run(self, x):
        import tensorflow as tf

        out = self.fn(tf.constant(x))
        return out["boxes"].numpy(), out["scores"].numpy()


class _TFLiteRuntime(_Runtime):
    kind = "tflite"

    def __init__(self, path: str, num_threads: int):
        try:
            self.it, self.runtime = tflite_interpreter(path, num_threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{path}: not a valid TFLite model (truncated or corrupt: {exc})") from exc
        inp = self.it.get_input_details()
        outs = self.it.get_output_details()
        if len(inp) != 1 or len(inp[0]["shape"]) != 4 or inp[0]["shape"][-1] != 3:
            raise ModelLoadError(f"{path}: wrong architecture: expected one [1,H,W,3] input, got "
                                 f"{[list(d['shape']) for d in inp]}")
        ranks = sorted(len(d["shape"]) for d in outs)
        if ranks != [1, 2]:
            raise ModelLoadError(f"{path}: wrong architecture: expected outputs boxes [K,4] and scores [K], "
                                 f"got shapes {[list(d['shape']) for d in outs]}")
        self.input_index = inp[0]["index"]
        self.boxes_index = next(d["index"] for d in outs if len(d["shape"]) == 2)
        self.scores_index = next(d["index"] for d in outs if len(d["shape"]) == 1)
        self.path = path
        self._shape: Optional[tuple] = None

    def run(self, x):
        if self._shape != x.shape:
            # A camera keeps one frame size, so this reallocation happens once per stream.
            self.it.resize_tensor_input(self.input_index, list(x.shape))
            self.it.allocate_tensors()
            self._shape = x.shape
        self.it.set_tensor(self.input_index, x)
        self.it.invoke()
        return self.it.get_tensor(self.boxes_index).copy(), self.it.get_tensor(self.scores_index).copy()


def open_runtime(path: str, num_threads: int = 2, nms_iou: float = 0.45, max_det: int = 200) -> _Runtime:
    """Load a detector file by its type.

    Raises:
        ModelLoadError: missing, truncated/corrupt or wrong-architecture file (named in the message).
    """
    if not path:
        raise ModelLoadError("no model file given (model_path)")
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: model file not found")
    if os.path.isdir(path):
        return _SavedModelRuntime(path)
    if path.endswith(".tflite"):
        return _TFLiteRuntime(path, num_threads)
    if path.endswith(".keras"):
        return _KerasRuntime(path, nms_iou, max_det)
    raise ModelLoadError(f"{path}: unknown model format (expected .keras, .tflite or a SavedModel folder)")


@register_backend("keras")
@register_backend("tflite")
@register_backend("savedmodel")
class KerasFaceDetector(FaceDetector):
    """The multi-face detector from a trained file.

    Args:
        model_path: ``.keras`` file, SavedModel folder or ``.tflite`` file. Its sidecar
            ``<file>.json`` (written by :mod:`face_tracker_core.export`) gives the input size and
            thresholds; without one the architecture defaults are used.
        score_threshold: operating threshold; default from the sidecar.
        input_size: longest side of the network input, pixels (multiple of 32 recommended).
        nms_iou: NMS IoU for ``.keras`` files (exported graphs have theirs built in).
        num_threads: TFLite CPU threads.
    """

    name = "keras"

    def __init__(self, model_path: str = "", score_threshold: Optional[float] = None,
                 input_size: Optional[int] = None, nms_iou: Optional[float] = None, num_threads: int = 2,
                 **_ignored):
        cfg = _config(model_path, {}) if model_path and os.path.exists(model_path) else None
        from ..models.detector_config import DetectorConfig

        cfg = cfg or DetectorConfig()
        self.model_path = model_path
        self.score_threshold = float(cfg.score_threshold if score_threshold is None else score_threshold)
        self.input_size = int(input_size or cfg.input_size)
        requested = float(nms_iou or cfg.nms_iou)
        self.runtime = open_runtime(model_path, num_threads, requested, cfg.max_detections)
        self.name = self.runtime.kind
        # The NMS that actually runs: exported graphs carry the one they were exported with.
        self.nms_iou = requested if self.runtime.kind == "keras" else float(cfg.nms_iou)
        if nms_iou and abs(float(nms_iou) - self.nms_iou) > 1e-9:
            log.warning("%s: NMS (IoU %.2f) is part of the exported %s graph; nms_iou=%.2f is ignored "
                        "(export again with that value, or load the .keras file)",
                        model_path, self.nms_iou, self.runtime.kind, float(nms_iou))
        self.last_ms = 0.0

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        t0 = time.perf_counter()
        x, scale = prepare_input(bgr, self.input_size)
        boxes, scores = self.runtime.run(x)
        h, w = bgr.shape[:2]
        out: List[Detection] = []
        for b, s in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(scores).reshape(-1)):
            if s < self.score_threshold:
                continue
            box = BBox(*(float(v) / scale for v in b)).clip(w, h)
            if box.width > 1 and box.height > 1:
                out.append(Detection(box=box, score=float(s)))
        out.sort(key=lambda d: d.score, reverse=True)
        self.last_ms = (time.perf_counter() - t0) * 1000
        return out

    def describe(self) -> str:
        return (f"{self.runtime.kind}({os.path.basename(self.model_path)}, input {self.input_size}px, "
                f"threshold {self.score_threshold:.2f}, NMS IoU {self.nms_iou:.2f})")
