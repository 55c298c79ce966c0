"""Load, check and export detector models: ``.keras``, TensorFlow SavedModel and TFLite.

The exported SavedModel and TFLite graphs contain the whole inference path after letterboxing:
network, box decoding, score sigmoid and non-maximum suppression; they take one float32 BGR
frame ``[1, H, W, 3]`` (0..255, ``H``, ``W`` multiples of 32) and return

* ``boxes``: ``[K, 4]`` float32 ``(x1, y1, x2, y2)`` in input pixels,
* ``scores``: ``[K]`` float32 in [0, 1], highest first (K <= ``max_detections``).

Every exported file gets a sidecar ``<file>.json`` with the :class:`DetectorConfig`
(input size, thresholds) that the inference backends read.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from typing import Any, Dict, Optional

from .errors import ModelLoadError

log = logging.getLogger(__name__)


def sidecar_path(model_path: str) -> str:
    """``model.tflite`` -> ``model.tflite.json`` (a SavedModel folder gets ``<folder>.json``)."""
    return os.path.normpath(model_path) + ".json"


def read_json_sidecar(path: str, what: str = "model config") -> Dict[str, Any]:
    """The JSON object in the sidecar file ``path`` ({} when there is none).

    Args:
        path: the sidecar's own path (not the model's).
        what: what the file holds, for the error messages.

    Raises:
        ModelLoadError: the file exists but is unreadable, not valid JSON or not a JSON object
            (named in the message).
    """
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: unreadable {what} ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: {what} must be a JSON object")
    return data


def read_sidecar(model_path: str) -> Dict[str, Any]:
    """The detector config stored beside a model file ({} when there is none).

    Raises:
        ModelLoadError: the sidecar exists but is not valid JSON (named in the message).
    """
    return read_json_sidecar(sidecar_path(model_path))


def write_sidecar(model_path: str, config: Dict[str, Any]) -> str:
    path = sidecar_path(model_path)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(config, fh, indent=2, sort_keys=True)
    return path


def load_detector_model(path: str):
    """Load a trained detector ``.keras`` file and check it is the multi-face detector.

    Raises:
        ModelLoadError: missing, truncated/corrupt, or another architecture (named in the message).
    """
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a .keras model archive (truncated or wrong file type)")
    import keras

    from .models import face_detector  # noqa: F401  registers the custom layers

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for bad archives
        raise ModelLoadError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
    check_detector_model(model, path)
    return model


def check_detector_model(model, path: str) -> None:
    """Raise :class:`ModelLoadError` unless ``model`` maps ``[B, H, W, 3]`` to ``[B, N, 5]``."""
    try:
        in_shape = tuple(model.inputs[0].shape)
        out_shape = tuple(model.outputs[0].shape)
    except Exception as exc:
        raise ModelLoadError(f"{path}: not a functional detector model ({exc})") from exc
    if len(in_shape) != 4 or in_shape[-1] != 3 or len(out_shape) != 3 or out_shape[-1] != 5:
        raise ModelLoadError(f"{path}: wrong architecture: expected a face detector [B,H,W,3] -> [B,N,5], "
                             f"got {in_shape} -> {out_shape}")


def _inference_function(model, config):
    """``tf.function``: one BGR frame ``[1, H, W, 3]`` -> ``{"boxes": [K, 4], "scores": [K]}``."""
    import tensorflow as tf

    from .infer.keras_detector import MIN_SCORE

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="image")])
    def serve(image):
        raw = model(image, training=False)[0]
        scores = tf.sigmoid(raw[:, 0])
        boxes = raw[:, 1:5]
        # NMS' IoU does not care whether coordinates are (y, x) or (x, y) ordered.
        idx, kept = tf.image.non_max_suppression_with_scores(
            boxes, scores, max_output_size=int(config.max_detections), iou_threshold=float(config.nms_iou),
            score_threshold=MIN_SCORE)
        return {"boxes": tf.gather(boxes, idx), "scores": kept}

    return serve


def export_detector(model_path: str, out_path: str, fmt: str = "tflite", quantize: str = "float16",
                    config_overrides: Optional[Dict[str, Any]] = None) -> str:
    """Export a trained detector.

    Args:
        model_path: trained ``.keras`` file (``runs/detect/<name>/best.keras``).
        out_path: output file (``.keras``/``.tflite``) or folder (SavedModel).
        fmt: ``keras``, ``savedmodel`` or ``tflite``.
        quantize: TFLite weights: ``float32``, ``float16`` (default: half the size, same accuracy)
            or ``dynamic`` (int8 weights, float activations).
        config_overrides: :class:`DetectorConfig` fields to store in the sidecar (e.g. a
            ``score_threshold`` chosen on validation data).

    Returns:
        ``out_path``; a sidecar ``<out_path>.json`` is written beside it.

    Raises:
        ModelLoadError: the input model is bad.
        ValueError: unknown format or quantisation.
    """
    from .models.face_detector import DetectorConfig

    model = load_detector_model(model_path)
    cfg = dict(read_sidecar(model_path))
    cfg.update(config_overrides or {})
    config = DetectorConfig.from_config(cfg) if cfg else DetectorConfig()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    if fmt == "keras":
        model.save(out_path)
    elif fmt in ("savedmodel", "tflite"):
        import tensorflow as tf

        serve = _inference_function(model, config)
        if fmt == "savedmodel":
            module = tf.Module()
            module.model = model
            module.serve = serve
            tf.saved_model.save(module, out_path, signatures={"serving_default": serve})
        else:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            # Freeze weights into constants: with resource variables the TFLite graph would
            # re-read and transpose every kernel per frame and XNNPACK could not take the convs.
            frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
            conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
            if quantize == "float16":
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
                conv.target_spec.supported_types = [tf.float16]
            elif quantize == "dynamic":
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
            elif quantize != "float32":
                raise ValueError(f"unknown quantization '{quantize}' (float32, float16, dynamic)")
            with open(out_path, "wb") as fh:
                fh.write(conv.convert())
    else:
        raise ValueError(f"unknown export format '{fmt}' (keras, savedmodel, tflite)")
    write_sidecar(out_path, config.get_config())
    log.info("exported %s -> %s (%s)", model_path, out_path, fmt)
    return out_path
