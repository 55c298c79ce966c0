"""Export ("reduce and freeze") a trained reenactment generator.

From a run folder (``generator.keras`` + ``generator.json``) or any generator file with its sidecar,
write to an output folder:

* ``<name>.keras`` + ``<name>.json``: the generator alone (no discriminator, no optimizer state:
  "reduce"); loads with plain Keras on any backend;
* ``<name>_saved_model/``: a TensorFlow SavedModel with a ``serve`` signature
  (``[B, R, R, 3]`` float32 in ``[-1, 1]`` -> same shape), for TF Serving and converters;
* ``<name>.tflite``: a batch-1 TFLite flatbuffer ("freeze"), optionally with float16 or
  dynamic-range int8 weights; it shares the ``.json`` sidecar.

SavedModel and TFLite need the TensorFlow backend.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Dict, Sequence

from ..errors import ModelLoadError
from .renderer import Generator, meta_path

log = logging.getLogger(__name__)

FORMATS = ("keras", "saved_model", "tflite")
QUANTIZATIONS = ("none", "float16", "dynamic")


def resolve_generator(path: str) -> str:
    """A run folder -> its ``generator.keras``; a file -> itself."""
    if os.path.isdir(path):
        path = os.path.join(path, "generator.keras")
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: no generator to export (train first: face-tracker reenact train)")
    return path


def export_generator(source: str, out_dir: str, name: str = "reenact_generator",
                     formats: Sequence[str] = FORMATS, quantize: str = "none") -> Dict[str, str]:
    """Export a generator.

    Args:
        source: run folder or ``.keras`` generator (with its ``.json`` sidecar).
        out_dir: output folder (created).
        name: file stem.
        formats: any of :data:`FORMATS`.
        quantize: TFLite weights: one of :data:`QUANTIZATIONS`.

    Returns:
        ``{format: path}`` of what was written (plus ``"meta"``).

    Raises:
        ModelLoadError: no/invalid generator.
        ValueError: unknown format/quantization, or SavedModel/TFLite asked for on a non-TF backend.
    """
    import keras

    bad = set(formats) - set(FORMATS)
    if bad or quantize not in QUANTIZATIONS:
        raise ValueError(f"unknown format(s) {sorted(bad)} or quantization '{quantize}'")
    src = resolve_generator(source)
    gen = Generator(src)
    model = gen.model
    os.makedirs(out_dir, exist_ok=True)
    written: Dict[str, str] = {}
    meta = dict(gen.meta, exported_from=os.path.relpath(src))
    mpath = os.path.join(out_dir, f"{name}.json")
    with open(mpath, "w") as f:
        json.dump(meta, f, indent=1)
    written["meta"] = mpath
    if "keras" in formats:
        kpath = os.path.join(out_dir, f"{name}.keras")
        model.save(kpath)
        written["keras"] = kpath
    needs_tf = [f for f in formats if f in ("saved_model", "tflite")]
    if needs_tf and keras.backend.backend() != "tensorflow":
        raise ValueError(f"{', '.join(needs_tf)} export needs KERAS_BACKEND=tensorflow")
    if "saved_model" in formats:
        spath = os.path.join(out_dir, f"{name}_saved_model")
        if os.path.isdir(spath):
            shutil.rmtree(spath)
        model.export(spath, format="tf_saved_model", verbose=False)
        written["saved_model"] = spath
    if "tflite" in formats:
        written["tflite"] = _to_tflite(model, gen.resolution, os.path.join(out_dir, f"{name}.tflite"), quantize)
    for k, v in written.items():
        log.info("exported %s: %s", k, v)
    return written


def _to_tflite(model, resolution: int, path: str, quantize: str) -> str:
    import tempfile

    import tensorflow as tf

    # Via a SavedModel with a fixed batch of 1: the converter then folds BatchNorm and plans
    # every buffer statically. (Converting a tf.function's concrete function directly gave
    # garbage weights with TF 2.21 / Keras 3.15.)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec([1, resolution, resolution, 3], tf.float32, name="sketch")])
        conv = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize == "float16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        elif quantize == "dynamic":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        flat = conv.convert()
    with open(path, "wb") as f:
        f.write(flat)
    return path


def copy_sidecar(model_path: str, target_path: str) -> None:
    """Copy ``model_path``'s ``.json`` next to ``target_path`` (same stem)."""
    shutil.copyfile(meta_path(model_path), meta_path(target_path))
