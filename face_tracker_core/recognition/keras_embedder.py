"""Our trained Keras embedders (``facenet``, ``siamese``) behind the :class:`Embedder` interface.

A model is a ``.keras`` file (the embedding network only, stock layers) with a JSON card beside
it (same name, ``.json``) giving the crop geometry and training facts::

    {"name": "facenet", "input_size": 112, "padding": 0.2, "dim": 128, "flip": true,
     "threshold": 0.8, "head": {"a": .., "b": ..}, ...}
"""

from __future__ import annotations

import json
import logging
import os
import threading

import numpy as np

from ..errors import ModelLoadError
from .align import FaceAligner
from ..digest import file_digest
from .embedders import ASSETS, Embedder, l2_normalize, register_embedder

log = logging.getLogger(__name__)

#: Shipped weights per embedder name, in ``face_tracker_core/assets``.
DEFAULT_MODELS = {"facenet": os.path.join(ASSETS, "embedder_facenet.keras"),
                  "siamese": os.path.join(ASSETS, "embedder_siamese.keras")}


def card_path(model_path: str) -> str:
    return os.path.splitext(model_path)[0] + ".json"


def read_card(model_path: str) -> dict:
    path = card_path(model_path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{path}: model card missing (needed beside {os.path.basename(model_path)})")
    try:
        with open(path) as f:
            card = json.load(f)
    except ValueError as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    for k in ("input_size", "padding"):
        if k not in card:
            raise ModelLoadError(f"{path}: missing '{k}'")
    return card


class KerasEmbedder(Embedder):
    """A ``.keras`` embedding network.

    Args:
        model_path: the ``.keras`` file (JSON card beside it).
        flip: also embed the mirrored crop and average (test-time augmentation: about +1 point
            of verification accuracy for twice the compute). ``None``: the card's choice.
        batch_size: crops per forward pass.
    """

    def __init__(self, name: str, model_path: str | None = None, flip: bool | None = None,
                 batch_size: int = 64, **_ignored) -> None:
        path = model_path or DEFAULT_MODELS[name]
        if not os.path.isfile(path):
            raise ModelLoadError(f"{path}: {name} embedder weights not found "
                                 f"(train one with 'face-tracker train embedder --model {name}')")
        card = read_card(path)
        super().__init__(FaceAligner(size=int(card["input_size"]), padding=float(card["padding"])))
        import keras

        try:
            self.model = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # truncated zip, wrong file, incompatible layers...
            raise ModelLoadError(f"{path}: cannot load Keras model ({exc})") from exc
        shape = tuple(self.model.input_shape[1:])
        if shape != (card["input_size"], card["input_size"], 3):
            raise ModelLoadError(f"{path}: model input {shape} does not match its card's input_size")
        self.name = name
        self.path = path
        self.card = card
        self.dim = int(self.model.output_shape[-1])
        self.flip = bool(card.get("flip", True) if flip is None else flip)
        self.batch_size = int(batch_size)
        self.default_threshold = float(card.get("threshold", 0.75))
        self.model_id = f"{name}:{file_digest(path, 12)}"
        self._lock = threading.Lock()

    def _forward(self, x: np.ndarray) -> np.ndarray:
        # predict_on_batch runs a compiled graph (about 10x faster than an eager call for one
        # face) but compiles once per batch shape: pad to power-of-two buckets so a live stream
        # with 1, 2, 3... faces reuses a handful of graphs.
        out = []
        for i in range(0, len(x), self.batch_size):
            chunk = x[i:i + self.batch_size]
            n = len(chunk)
            bucket = min(self.batch_size, 1 << max(1, (n - 1).bit_length()))
            if bucket > n:
                chunk = np.concatenate([chunk, np.zeros((bucket - n,) + chunk.shape[1:], chunk.dtype)])
            out.append(np.asarray(self.model.predict_on_batch(chunk))[:n])
        return np.concatenate(out)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        x = np.asarray(crops, np.float32)
        with self._lock:
            if self.flip:
                both = self._forward(np.concatenate([x, x[:, :, ::-1]]))
                v = both[:len(x)] + both[len(x):]
            else:
                v = self._forward(x)
        return l2_normalize(v)

    def pair_probability(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Siamese head: same-person probability of rows of ``a`` vs rows of ``b`` (``(N, M)``)."""
        head = self.card.get("head")
        if not head:
            raise ValueError(f"{self.path}: no siamese head in its card")
        d2 = np.maximum(2.0 - 2.0 * np.atleast_2d(a) @ np.atleast_2d(b).T, 0.0)
        return 1.0 / (1.0 + np.exp(-(head["a"] - head["b"] * d2)))


@register_embedder("facenet")
def make_facenet(**kw) -> KerasEmbedder:
    """Our triplet-loss MobileFaceNet (see :mod:`.facenet`)."""
    return KerasEmbedder("facenet", **kw)


@register_embedder("siamese")
def make_siamese(**kw) -> KerasEmbedder:
    """The siamese tower (see :mod:`.siamese`)."""
    return KerasEmbedder("siamese", **kw)
