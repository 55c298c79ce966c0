"""TFLite interpreters for every ``.tflite`` the package runs (detector, reenactment generator).

LiteRT (``ai_edge_litert``) runs a ``.tflite`` without TensorFlow, which takes seconds to import;
where it is not installed, TensorFlow's ``tf.lite`` does, said once per process.
"""

from __future__ import annotations

import logging
import os

from .errors import ModelLoadError

log = logging.getLogger(__name__)

__all__ = ["tflite_interpreter"]

_FALLBACK_LOGGED = False


def tflite_interpreter(path: str, num_threads: int):
    """A TFLite interpreter: LiteRT (``ai_edge_litert``) when installed, else ``tf.lite``.

    LiteRT runs the file without TensorFlow, which takes seconds to import; the fallback is said
    once per process. The file is passed as bytes on purpose: only that path runs the flatbuffer
    verifier, while ``model_path=`` memory-maps the file unverified and a truncated model crashes
    the process.

    Returns:
        ``(interpreter, runtime name)`` with the name ``"litert"`` or ``"tf.lite"``.
    """
    global _FALLBACK_LOGGED
    try:
        with open(path, "rb") as fh:
            content = fh.read()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read model file ({exc})") from exc
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore
        runtime = "litert"
    except ImportError:
        if not _FALLBACK_LOGGED:
            log.warning("LiteRT (pip install ai-edge-litert) is not installed: running %s with TensorFlow's "
                        "tf.lite, which takes seconds to import", os.path.basename(path))
            _FALLBACK_LOGGED = True
        import tensorflow as tf

        Interpreter, runtime = tf.lite.Interpreter, "tf.lite"
    return Interpreter(model_content=content, num_threads=num_threads), runtime
