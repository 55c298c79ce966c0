"""dlib's pretrained face-recognition ResNet (``face_recognition_models``, offline).

A 29-layer ResNet giving 128-D vectors from 150 x 150 chips aligned on dlib's 5-point mean face
(99.38 % on LFW per dlib): the strong, pretrained reference the trainable embedders are compared
with, and the default for recognition.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import ModelLoadError
from ..infer.landmarks import load_dlib_model
from .align import FaceAligner
from ..digest import file_digest
from .embedders import Embedder, l2_normalize, register_embedder

_LOCK = threading.Lock()  # dlib's network object is not re-entrant


def _default_path() -> str:
    try:
        import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise ModelLoadError("face_recognition_models is not installed") from exc
    return frm.face_recognition_model_location()


@register_embedder("dlib")
class DlibEmbedder(Embedder):
    """dlib ResNet embedder.

    Args:
        model_path: ``dlib_face_recognition_resnet_model_v1.dat`` (the installed one by default).
        jitters: dlib's ``num_jitters`` (re-embed that many jittered copies and average; 0 = off,
            each one costs a full forward pass).
        flip: also embed the mirrored chip and average the raw descriptors (twice the network
            cost; on held-out CelebA people +0.3 points of pair accuracy, and what lets the
            20-person open-set test pass: see docs/model_cards/embedder.md).
    """

    name = "dlib"
    dim = 128
    # Calibrated for a 3e-4 false-accept rate on held-out CelebA people (face-tracker eval
    # embedder). dlib's own "distance < 0.6" rule does not carry over: its raw vectors share a
    # large common component, so normalised vectors of strangers still score about 0.92.
    default_threshold = 0.967

    def __init__(self, model_path: str | None = None, jitters: int = 0, flip: bool = True, **_ignored) -> None:
        import dlib

        super().__init__(FaceAligner(size=150, padding=0.25))
        path = model_path or _default_path()
        self._model = load_dlib_model(path, dlib.face_recognition_model_v1, "dlib face recognition model")
        self.jitters = int(jitters)
        self.flip = bool(flip)
        self.model_id = f"dlib-resnet-v1:{file_digest(path, 12)}"

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        rgb = [np.ascontiguousarray(c[..., ::-1]) for c in crops]
        if self.flip:
            rgb += [np.ascontiguousarray(c[:, ::-1]) for c in rgb]
        with _LOCK:  # dlib's network object is not re-entrant
            vecs = np.array([np.asarray(v) for v in self._model.compute_face_descriptor(rgb, self.jitters)],
                            np.float32)
        if self.flip:
            vecs = vecs[:len(crops)] + vecs[len(crops):]
        return l2_normalize(vecs)

    def describe(self) -> str:
        return f"dlib ({self.model_id}, 128-D{', flip' if self.flip else ''}{f', {self.jitters} jitters' if self.jitters else ''})"
