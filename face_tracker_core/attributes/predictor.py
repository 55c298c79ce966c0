"""``AttributePredictor``: CelebA attributes of faces in a frame (what the tracker node calls)."""

from __future__ import annotations

import logging
import os
import threading
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import ModelLoadError
from ..types import BBox
from .celeba import CELEBA_ATTRIBUTES
from .crops import crop_face

log = logging.getLogger(__name__)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
#: The shipped model (see ``docs/model_cards/attributes.md``).
DEFAULT_MODEL = os.path.join(ASSETS, "attributes.keras")

__all__ = ["AttributePredictor", "DEFAULT_MODEL"]


class AttributePredictor:
    """Predicts face attributes for boxes in a BGR frame.

    Args:
        model_path: ``.keras`` attribute model (with its ``.json`` sidecar: names and crop
            geometry); ``None`` loads the shipped model.
        threshold: report attributes whose probability is at least this.
        top_k: keep at most this many attributes per face (``None``: all above threshold).

    Raises:
        ModelLoadError: missing/corrupt model or sidecar, or names that do not match the outputs
            (the message names the file).
    """

    def __init__(self, model_path: Optional[str] = None, threshold: float = 0.5, top_k: Optional[int] = None) -> None:
        from .model import load_model

        self.model_path = model_path or DEFAULT_MODEL
        if model_path is None and not os.path.isfile(self.model_path):
            raise ModelLoadError(f"{self.model_path}: no attribute model shipped; train one with "
                                 "'face-tracker train attributes' and pass model_path")
        self.model, self.meta = load_model(self.model_path)
        n_out = int(self.model.output_shape[-1])
        names = self.meta.get("attributes")
        if not names:
            if n_out != len(CELEBA_ATTRIBUTES):
                raise ModelLoadError(f"{self.model_path}: no attribute names sidecar and {n_out} outputs "
                                     "(only 40-output CelebA models can go without one)")
            names = list(CELEBA_ATTRIBUTES)
        self.names: Tuple[str, ...] = tuple(names)
        shape = self.model.input_shape
        crop = self.meta.get("crop", {})
        self.size = int(crop.get("size", shape[1]))
        self.margin = float(crop.get("margin", 0.4))
        self.color = str(crop.get("color", "gray" if shape[-1] == 1 else "rgb"))
        if (shape[1], shape[2], shape[3]) != (self.size, self.size, 1 if self.color == "gray" else 3):
            raise ModelLoadError(f"{self.model_path}: input shape {shape[1:]} does not match its sidecar crop "
                                 f"({self.size}x{self.size}, {self.color})")
        self.threshold = float(threshold)
        self.top_k = top_k
        self._lock = threading.Lock()  # Keras models are not safe to call from two threads at once

    def crops(self, bgr: np.ndarray, boxes: Sequence[BBox]) -> np.ndarray:
        """``(N, S, S, C)`` ``float32`` model inputs for ``boxes`` (pixels of ``bgr``)."""
        if not boxes:
            c = 1 if self.color == "gray" else 3
            return np.zeros((0, self.size, self.size, c), np.float32)
        return np.stack([crop_face(bgr, b, self.margin, self.size, self.color) for b in boxes]).astype(np.float32)

    def predict_proba(self, bgr: np.ndarray, boxes: Sequence[BBox]) -> np.ndarray:
        """``(N, n_attributes)`` probabilities for the faces in ``boxes``.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` BGR frame.
            boxes: face boxes in pixels of ``bgr`` (corner format), e.g. from the detector/tracker.
        """
        x = self.crops(bgr, boxes)
        if len(x) == 0:
            return np.zeros((0, len(self.names)), np.float32)
        with self._lock:
            return np.asarray(self.model.predict_on_batch(x), np.float32)

    def predict(self, bgr: np.ndarray, boxes: Sequence[BBox]) -> List[List[Tuple[str, float]]]:
        """Attributes present on each face.

        Returns:
            One list per box, of ``(name, probability)`` with probability >= ``threshold``, most
            probable first (at most ``top_k``).
        """
        out = []
        for p in self.predict_proba(bgr, boxes):
            items = sorted(((n, float(v)) for n, v in zip(self.names, p) if v >= self.threshold),
                           key=lambda t: t[1], reverse=True)
            out.append(items[: self.top_k] if self.top_k else items)
        return out
