"""The embedder interface: face boxes in a frame -> L2-normalised identity vectors.

Every embedder aligns the faces itself (5-point landmarks, :mod:`.align`) so callers only pass
the boxes their detector or tracker produced. Two faces are compared with :func:`similarity`,
the cosine similarity mapped to a score in [0, 1] (``(1 + cos) / 2``: 1 = identical vectors,
0.5 = orthogonal), which is what thresholds, galleries and ``identity_score`` use.
"""

from __future__ import annotations

import abc
import logging
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..types import BBox
from ..vectors import l2_normalize  # noqa: F401  (re-exported: the embedders import it from here)

log = logging.getLogger(__name__)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise score in [0, 1] between L2-normalised vectors.

    Args:
        a: ``(N, D)`` or ``(D,)``.
        b: ``(M, D)`` or ``(D,)``.

    Returns:
        ``(N, M)`` scores (scalars squeezed away when an input was 1-D): ``(1 + cos) / 2``.
    """
    a2, b2 = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
    s = np.clip((1.0 + a2 @ b2.T) / 2.0, 0.0, 1.0)
    if np.ndim(a) == 1 and np.ndim(b) == 1:
        return s[0, 0]
    if np.ndim(a) == 1:
        return s[0]
    if np.ndim(b) == 1:
        return s[:, 0]
    return s


class Embedder(abc.ABC):
    """Face boxes -> identity vectors.

    Attributes:
        name: registry name (``"dlib"``, ``"facenet"``, ``"siamese"``).
        model_id: identifies the exact weights (name + digest); galleries refuse vectors of
            another ``model_id`` because they live in a different space.
        dim: vector length ``D``.
        default_threshold: same-person score threshold (in [0, 1]) used when no calibrated
            one is available.
        aligner: the :class:`~.align.FaceAligner` giving this model's input crops.
    """

    name: str = "base"
    model_id: str = "base"
    dim: int = 0
    default_threshold: float = 0.75

    def __init__(self, aligner) -> None:
        self.aligner = aligner

    @abc.abstractmethod
    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """Vectors of aligned crops.

        Args:
            crops: ``(N, S, S, 3)`` ``uint8`` BGR crops from :attr:`aligner`.

        Returns:
            ``(N, D)`` float32, rows of unit L2 norm.
        """

    def embed(self, bgr: np.ndarray, boxes: Sequence[BBox],
              points: Optional[Sequence[Optional[np.ndarray]]] = None) -> np.ndarray:
        """Vectors of the faces in ``boxes``.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` BGR frame.
            boxes: face boxes in pixels, ``(x1, y1, x2, y2)``; any detector's boxes work (the
                landmarks are found inside them).
            points: optional ``(5, 2)`` dlib-order landmarks per box (skips the predictor).

        Returns:
            ``(len(boxes), D)`` float32 L2-normalised vectors (``(0, D)`` for no boxes).
        """
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        crops = self.aligner.align(bgr, boxes, points)
        return self.embed_aligned(crops)

    def describe(self) -> str:
        return f"{self.name} ({self.model_id}, {self.dim}-D)"

    def time_per_face(self, crops: np.ndarray, repeats: int = 3) -> float:
        """Median milliseconds per face of :meth:`embed_aligned` on ``crops`` (after a warm-up)."""
        self.embed_aligned(crops[:1])
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            self.embed_aligned(crops)
            times.append((time.perf_counter() - t) * 1000.0 / max(1, len(crops)))
        return float(np.median(times))


_EMBEDDERS: Dict[str, Callable[..., Embedder]] = {}


def register_embedder(name: str):
    """Decorator registering a factory under ``name`` for :func:`make_embedder`."""

    def deco(factory):
        _EMBEDDERS[name] = factory
        return factory

    return deco


def _load_builtin() -> None:
    from . import dlib_embedder, keras_embedder  # noqa: F401


def available_embedders() -> List[str]:
    _load_builtin()
    return sorted(_EMBEDDERS)


def make_embedder(name: str = "dlib", **kwargs) -> Embedder:
    """Build an embedder.

    Args:
        name: ``"dlib"`` (pretrained ResNet, offline), ``"facenet"`` (ours, triplet loss) or
            ``"siamese"`` (ours, pair loss).
        **kwargs: ``model_path`` (a ``.keras`` file for facenet/siamese; the shipped asset by
            default), ``flip`` (average with the mirrored face, ours only)...

    Raises:
        ValueError: unknown name.
        ModelLoadError: missing or broken weights.
    """
    _load_builtin()
    if name not in _EMBEDDERS:
        raise ValueError(f"unknown embedder '{name}' (available: {', '.join(sorted(_EMBEDDERS))})")
    return _EMBEDDERS[name](**kwargs)


ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
