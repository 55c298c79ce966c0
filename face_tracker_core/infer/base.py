"""The detector interface and the backend factory used by the nodes, the demo and the CLI."""

from __future__ import annotations

import abc
import logging
import os
from typing import Callable, Dict, List

import numpy as np

from ..types import Detection

log = logging.getLogger(__name__)


class FaceDetector(abc.ABC):
    """Finds faces in one BGR frame.

    Implementations are cheap to call repeatedly and hold their model in memory; construction
    loads the model and raises :class:`~face_tracker_core.errors.ModelLoadError` on failure.
    """

    #: short backend name, e.g. ``"haar"``.
    name: str = "base"

    @abc.abstractmethod
    def detect(self, bgr: np.ndarray) -> List[Detection]:
        """Detect faces.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` BGR frame.

        Returns:
            Detections in pixels of ``bgr``, highest score first, scores in [0, 1].
        """

    def describe(self) -> str:
        """One line for logs and diagnostics."""
        return self.name


_BACKENDS: Dict[str, Callable[..., FaceDetector]] = {}


def weights_signature(detector) -> str:
    """SHA-1 of a detector's model file (``""`` for detectors without one, e.g. Haar).

    Caches of detector output key on it: a retrained model under the same file name and threshold
    must not reuse the old model's boxes.
    """
    from ..digest import file_digest

    for attr in ("model_path", "path"):
        path = getattr(detector, attr, None)
        if isinstance(path, str) and os.path.isfile(path):
            return file_digest(path)
    return ""


def register_backend(name: str):
    """Class decorator registering a detector under ``name`` for :func:`make_detector`."""

    def deco(factory):
        _BACKENDS[name] = factory
        return factory

    return deco


def _load_builtin_backends() -> None:
    # Imported lazily so that e.g. the Haar backend never pays for importing TensorFlow.
    from . import default, haar  # noqa: F401

    for mod in ("keras_detector", "dlib_detector", "blazeface"):
        try:
            __import__(f"{__package__}.{mod}")
        except ImportError as exc:  # optional backends
            log.debug("detector backend module %s unavailable: %s", mod, exc)


def available_backends() -> List[str]:
    """Names accepted by :func:`make_detector`."""
    _load_builtin_backends()
    return sorted(_BACKENDS)


def make_detector(backend: str = "default", **kwargs) -> FaceDetector:
    """Build a detector by backend name.

    Args:
        backend: ``"default"`` (the shipped model), ``"haar"``, ``"keras"``/``"tflite"`` (a model
            file given by ``model_path``), ``"dlib_hog"``...
        **kwargs: backend options (``model_path``, ``score_threshold``, ...).

    Raises:
        ValueError: unknown backend.
        ModelLoadError: the model could not be loaded.
    """
    _load_builtin_backends()
    if backend not in _BACKENDS:
        raise ValueError(f"unknown detector backend '{backend}' (available: {', '.join(sorted(_BACKENDS))})")
    return _BACKENDS[backend](**kwargs)


def calibrated_threshold(backend: str = "default", model_path: str = "") -> float:
    """The operating threshold a backend uses when none is given.

    For a trained model file (``default``, ``keras``, ``tflite``, ``savedmodel``) that is the
    threshold stored in its sidecar ``<file>.json``, chosen on validation data when the model was
    exported; for the other backends their constructor's default. Reads no model, imports no
    framework: a node resolves "the model's own threshold" before loading the model.

    Raises:
        ValueError: unknown backend.
        ModelLoadError: the sidecar exists but cannot be read.
    """
    import inspect

    _load_builtin_backends()
    if backend not in _BACKENDS:
        raise ValueError(f"unknown detector backend '{backend}' (available: {', '.join(sorted(_BACKENDS))})")
    if backend in ("default", "keras", "tflite", "savedmodel"):
        from ..export import read_sidecar
        from ..models.detector_config import DetectorConfig
        from .default import DEFAULT_MODEL

        path = model_path or (DEFAULT_MODEL if backend == "default" else "")
        return float(read_sidecar(path).get("score_threshold", DetectorConfig.score_threshold) if path
                     else DetectorConfig.score_threshold)
    factory = _BACKENDS[backend]
    target = factory.__init__ if isinstance(factory, type) else factory
    param = inspect.signature(target).parameters.get("score_threshold")
    if param is not None and param.default is not inspect.Parameter.empty:
        return float(param.default)
    return 0.5
