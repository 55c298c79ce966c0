"""Run-time reenactment: camera frame -> face -> 68 landmarks -> sketch -> generator -> target face.

* :class:`Generator` loads an exported generator (``.keras`` or ``.tflite``) with its metadata
  sidecar (``<model>.json``: resolution, sketch line width, the target's reference landmarks and
  training crop) and maps ``uint8`` sketches to ``uint8`` images.
* :class:`Reenactor` is the whole pipeline for one camera frame; the ROS node and the CLI call it.

Normalisation modes (how the driving face's landmarks are placed in the target's crop):

* ``"relative"`` (default): pose and size normalised as below, then the target's own face shape
  moved by the driver's expression changes (:class:`~.sketch.RelativeMotion`). A generator trained
  on one face has only seen that face's shape: another person's eyes, jaw and nose drawn as they
  are give smeared, broken faces, while their motion applied to the target's shape stays in the
  training distribution (see the model card's cross-person figure);
* ``"similarity"``: rotate/scale/translate the driver's landmarks onto the target's reference
  shape, estimated on nose and eye corners; keeps the driver's face shape;
* ``"crop"``: the training crop as is, for driving with footage from the target's own camera.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Dict, Optional

import cv2
import numpy as np

from ..errors import ModelLoadError
from ..types import BBox
from .sketch import RelativeMotion, align_to_reference, apply_affine, crop_matrix, render_sketch

log = logging.getLogger(__name__)

ASSETS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets")
#: the shipped generator (trained on talking_face_1.mp4, see docs/model_cards/reenactment.md).
DEFAULT_MODEL = os.path.join(ASSETS, "reenact_generator.keras")
NORMALISE_MODES = ("similarity", "relative", "crop")


def meta_path(model_path: str) -> str:
    """The metadata sidecar of a model file: ``foo.keras`` -> ``foo.json``."""
    return os.path.splitext(model_path)[0] + ".json"


class Generator:
    """An exported pix2pix generator plus its metadata.

    Args:
        path: ``.keras`` (a generator, or a whole :class:`~.pix2pix.Pix2Pix` checkpoint) or
            ``.tflite``; the sidecar ``<path without extension>.json`` must exist.
        num_threads: TFLite interpreter threads.

    Attributes:
        resolution: sketch/output side in pixels.
        meta: the sidecar's contents.

    Raises:
        ModelLoadError: missing/corrupt file or sidecar, or a model of the wrong shape.
    """

    def __init__(self, path: str, num_threads: int = 2) -> None:
        if not os.path.isfile(path):
            raise ModelLoadError(f"{path}: reenactment generator not found")
        mp = meta_path(path)
        try:
            with open(mp) as f:
                self.meta: Dict = json.load(f)
            self.resolution = int(self.meta["resolution"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{mp}: missing or invalid generator metadata ({exc})") from exc
        self.path = path
        ext = os.path.splitext(path)[1].lower()
        if ext == ".tflite":
            self._load_tflite(path, num_threads)
        elif ext == ".keras":
            self._load_keras(path)
        else:
            raise ModelLoadError(f"{path}: unsupported generator format '{ext}' (use .keras or .tflite)")

    @property
    def reference(self) -> np.ndarray:
        """``(68, 2)`` target's mean landmarks in crop pixels."""
        return np.asarray(self.meta["reference_landmarks"], np.float32)

    @property
    def thickness(self) -> Optional[int]:
        return self.meta.get("thickness")

    def _load_keras(self, path: str) -> None:
        import keras

        from . import pix2pix  # noqa: F401  (registers Pix2Pix for whole checkpoints)

        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for bad files
            raise ModelLoadError(f"{path}: cannot load Keras generator ({type(exc).__name__}: {exc})") from exc
        if isinstance(model, pix2pix.Pix2Pix):
            model = model.generator
        shape = tuple(model.input_shape[1:])
        if shape != (self.resolution, self.resolution, 3):
            raise ModelLoadError(f"{path}: generator input {shape} does not match the metadata's "
                                 f"{self.resolution} px")
        self.model = model
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False)
            self._run = lambda x: fn(x).numpy()
        elif backend == "jax":
            import jax

            tv = [v.value for v in model.trainable_variables]
            ntv = [v.value for v in model.non_trainable_variables]
            fn = jax.jit(lambda x: model.stateless_call(tv, ntv, x, training=False)[0])
            self._run = lambda x: np.asarray(fn(x))
        else:
            self._run = lambda x: keras.ops.convert_to_numpy(model(x, training=False))

    def _load_tflite(self, path: str, num_threads: int) -> None:
        from ..tflite_runtime import tflite_interpreter

        try:
            interp, _ = tflite_interpreter(path, num_threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"{path}: not a TFLite model ({exc})") from exc
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        if tuple(inp["shape"][1:]) != (self.resolution, self.resolution, 3):
            raise ModelLoadError(f"{path}: TFLite input {tuple(inp['shape'])} does not match the metadata")

        def run(x):
            res = []
            for one in x:  # the converted graph has batch 1
                interp.set_tensor(inp["index"], one[None])
                interp.invoke()
                res.append(interp.get_tensor(out["index"])[0].copy())
            return np.stack(res)

        self._run = run

    def predict(self, sketches: np.ndarray) -> np.ndarray:
        """Generate images.

        Args:
            sketches: ``(B, R, R, 3)`` or ``(R, R, 3)`` ``uint8`` BGR sketches.

        Returns:
            ``uint8`` BGR images of the same shape.
        """
        single = sketches.ndim == 3
        x = sketches[None] if single else sketches
        if x.shape[1:] != (self.resolution, self.resolution, 3):
            raise ValueError(f"expected sketches of {self.resolution}x{self.resolution}x3, got {x.shape[1:]}")
        y = self._run(x.astype(np.float32) / 127.5 - 1.0)
        out = np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
        return out[0] if single else out


@dataclasses.dataclass
class ReenactResult:
    """One rendered frame.

    Attributes:
        output: ``(R, R, 3)`` ``uint8`` BGR target face.
        sketch: ``(R, R, 3)`` ``uint8`` the sketch it was generated from.
        box: the driving face in the camera frame (pixels).
        landmarks: ``(68, 2)`` driving landmarks in camera pixels.
        placed: ``(68, 2)`` the landmarks as drawn in the sketch (crop pixels).
    """

    output: np.ndarray
    sketch: np.ndarray
    box: BBox
    landmarks: np.ndarray
    placed: np.ndarray


class Reenactor:
    """Camera frame in, the target person making the same face out.

    Args:
        model_path: generator file (``.keras``/``.tflite`` with its ``.json``); the shipped one
            when ``None``.
        detector: ``FaceDetector`` or backend name for ``make_detector``.
        normalise: one of :data:`NORMALISE_MODES`.
        landmark_predictor: ``LandmarkPredictor(68)``; built when ``None``.
        generator: an already loaded :class:`Generator` (then ``model_path`` is ignored).
        refine: landmark refinement passes (:func:`~.prepare.face_landmarks`): makes the landmarks
            independent of the detector's box convention.
    """

    def __init__(self, model_path: Optional[str] = None, detector="default", normalise: str = "relative",
                 landmark_predictor=None, generator: Optional[Generator] = None, refine: int = 2) -> None:
        from ..infer import make_detector
        from ..infer.landmarks import LandmarkPredictor

        if normalise not in NORMALISE_MODES:
            raise ValueError(f"normalise must be one of {NORMALISE_MODES}, got '{normalise}'")
        self.generator = generator or Generator(model_path or DEFAULT_MODEL)
        self.detector = make_detector(detector) if isinstance(detector, str) else detector
        self.landmarks = landmark_predictor or LandmarkPredictor(68)
        self.normalise = normalise
        self.refine = int(refine)
        self._relative = RelativeMotion(self.generator.reference) if normalise == "relative" else None
        self._previous: Optional[BBox] = None

    @property
    def resolution(self) -> int:
        return self.generator.resolution

    def place(self, landmarks: np.ndarray) -> np.ndarray:
        """Camera-frame ``landmarks`` -> ``(68, 2)`` points in the target's crop (see the modes above)."""
        if self.normalise == "crop":
            return apply_affine(crop_matrix(self.generator.meta["crop"], self.resolution), landmarks)
        if self.normalise == "relative":
            return self._relative(landmarks)
        return align_to_reference(landmarks, self.generator.reference)

    def sketch_for(self, landmarks: np.ndarray) -> np.ndarray:
        """The sketch of camera-frame ``landmarks`` placed in the target's crop."""
        return render_sketch(self.place(landmarks), self.resolution, self.generator.thickness)

    def process(self, bgr: np.ndarray) -> Optional[ReenactResult]:
        """Render one frame.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` camera frame.

        Returns:
            The result, or ``None`` when no face is found.
        """
        from .prepare import face_landmarks, pick_face

        box = pick_face(self.detector.detect(bgr), self._previous)
        if box is None:
            self._previous = None
            if self._relative is not None:
                self._relative.reset()
            return None
        self._previous = box
        lm = face_landmarks(self.landmarks, bgr, box, self.refine)
        placed = self.place(lm)
        sketch = render_sketch(placed, self.resolution, self.generator.thickness)
        return ReenactResult(self.generator.predict(sketch), sketch, box, lm, placed)


def side_by_side(frame: np.ndarray, sketch: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Camera frame (scaled to the output's height), sketch and output side by side (``uint8`` BGR)."""
    h = output.shape[0]
    fh, fw = frame.shape[:2]
    cam = cv2.resize(frame, (max(1, int(round(fw * h / fh))), h), interpolation=cv2.INTER_AREA)
    return np.hstack([cam, sketch, output])
