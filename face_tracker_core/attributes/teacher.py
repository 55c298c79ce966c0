"""Teacher targets for pre-training the conv base: dlib's face embedding (distillation).

417 labelled photos are too few to learn face features from scratch, and ~1,800 photos of ~150
people are too few for identity pre-training (tried: 22% validation accuracy, +2 attribute points,
0.73 transfer AUC). dlib's ResNet face embedding (``face_recognition_models``, offline, trained by
dlib's author on ~3M faces) is used instead as a *teacher*: our small conv base learns to map a
crop to the teacher's 128-D embedding of the same photo. Only the teacher's outputs are used, never
its weights or identity labels; the model card says so.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Sequence

import numpy as np

from ..errors import ModelLoadError
from ..imaging import read_image
from ..types import BBox
from .crops import CropCache

log = logging.getLogger(__name__)

__all__ = ["DlibEmbedder", "teacher_embeddings", "teacher_targets", "normalized_landmarks"]


class DlibEmbedder:
    """dlib's 128-D face descriptor of a face box (5-point alignment, 150 px chip)."""

    def __init__(self) -> None:
        import dlib

        try:
            import face_recognition_models as frm
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise ModelLoadError("face_recognition_models is not installed") from exc
        from ..infer.landmarks import LandmarkPredictor

        self._lm = LandmarkPredictor(points=5)
        self._lm68 = LandmarkPredictor(points=68)
        path = frm.face_recognition_model_location()
        try:
            self._net = dlib.face_recognition_model_v1(path)
        except RuntimeError as exc:
            raise ModelLoadError(f"{path}: not a dlib face recognition model ({exc})") from exc

    def embed(self, bgr: np.ndarray, box: BBox) -> np.ndarray:
        """``(128,)`` float32 descriptor (unit-ish norm) of the face in ``box`` (pixels)."""
        import dlib

        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rect = dlib.rectangle(int(round(box.x1)), int(round(box.y1)), int(round(box.x2)), int(round(box.y2)))
        shape = self._lm._predictor(rgb, rect)
        return np.asarray(self._net.compute_face_descriptor(rgb, shape, 0), np.float32)

    def landmarks68(self, bgr: np.ndarray, box: BBox) -> np.ndarray:
        """``(136,)`` 68 landmarks normalised for position and size (:func:`normalized_landmarks`)."""
        return normalized_landmarks(self._lm68.predict(bgr, box))


def normalized_landmarks(pts: np.ndarray) -> np.ndarray:
    """``(68, 2)`` pixels -> ``(136,)``: minus their centroid, divided by their RMS radius.

    Position and scale are removed (the crops' jitter changes them), the shape stays: mouth open,
    smile, face outline, eyebrow arch, eye opening -- what expression attributes depend on.
    """
    c = pts.mean(axis=0)
    r = float(np.sqrt(((pts - c) ** 2).sum(axis=1).mean())) or 1.0
    return ((pts - c) / r).astype(np.float32).ravel()


def teacher_embeddings(cache: CropCache, paths: Sequence[str], rows: Sequence[int]) -> np.ndarray:
    """dlib embeddings of the cached faces ``rows`` (computed once, stored in the cache folder).

    Args:
        cache: crop cache whose ``boxes`` locate the faces in the original photos.
        paths: original photo path of every cache row.
        rows: rows that need an embedding.

    Returns:
        ``(len(cache), 128)`` float32, NaN for rows without one.
    """
    path = os.path.join(cache.folder, "dlib_embeddings.npy")
    emb = np.load(path) if os.path.isfile(path) else np.full((len(cache), 128), np.nan, np.float32)
    todo = [r for r in rows if cache.usable[r] and np.isnan(emb[r, 0])]
    if todo:
        log.info("computing dlib teacher embeddings for %d photos (once; stored in %s)", len(todo), path)
        emb_model = DlibEmbedder()
        t0 = time.time()
        for n, r in enumerate(todo, start=1):
            emb[r] = emb_model.embed(read_image(paths[r]), BBox(*[float(v) for v in cache.boxes[r]]))
            if n % 200 == 0:
                log.info("teacher embeddings %d/%d (%.1f/s)", n, len(todo), n / (time.time() - t0))
                np.save(path, emb)
        np.save(path, emb)
    return emb


def teacher_targets(cache: CropCache, paths: Sequence[str], rows: Sequence[int]) -> np.ndarray:
    """Embedding (128) + normalised 68 landmarks (136) per cached face, computed once per cache.

    Returns:
        ``(len(cache), 264)`` float32, NaN for rows without targets.
    """
    emb = teacher_embeddings(cache, paths, rows)
    path = os.path.join(cache.folder, "dlib_landmarks68.npy")
    lm = np.load(path) if os.path.isfile(path) else np.full((len(cache), 136), np.nan, np.float32)
    todo = [r for r in rows if cache.usable[r] and np.isnan(lm[r, 0])]
    if todo:
        log.info("computing dlib 68-point landmark targets for %d photos (once; stored in %s)", len(todo), path)
        from ..infer.landmarks import LandmarkPredictor

        pred = LandmarkPredictor(points=68)
        for n, r in enumerate(todo, start=1):
            lm[r] = normalized_landmarks(pred.predict(read_image(paths[r]), BBox(*[float(v) for v in cache.boxes[r]])))
            if n % 500 == 0:
                log.info("landmark targets %d/%d", n, len(todo))
                np.save(path, lm)
        np.save(path, lm)
    return np.concatenate([emb, lm], axis=1)
