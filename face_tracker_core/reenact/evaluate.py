"""Held-out evaluation of a reenactment generator: SSIM, PSNR, L1, landmark error, fps.

All image metrics compare the generator's output for a held-out frame's sketch with that real
frame (both ``uint8`` BGR crops at the model's resolution):

* **SSIM**: Wang et al. 2004 (Gaussian window sigma 1.5, population statistics, the usual
  "SSIM" of papers), averaged over the three channels and over frames; ``ssim_face`` averages
  the SSIM map over the face box only (the crop's still, blurred background scores high for
  any smooth image, so the whole-crop SSIM flatters);
* **baseline**: the same metrics for the mean training frame (a "generator" that ignores the
  sketch), to show what the model adds;
* **PSNR**: dB, peak 255;
* **L1**: mean absolute difference on a 0..1 scale;
* **landmark error**: 68 landmarks are re-detected by dlib on the output, in the box of the input
  landmarks' bounds (detector-independent: a detector with another box convention would
  otherwise dominate the number), and compared with the input landmarks: mean pixel distance at
  the model's resolution. The same measure on the real crops is ``landmark_error_real``, the dlib
  noise floor. ``face_found`` is the fraction of outputs where the face detector finds a face
  overlapping the expected one.
"""

from __future__ import annotations

import logging
import time
from typing import Dict, Optional

import cv2
import numpy as np

from ..types import BBox
from .sketch import landmark_box, render_sketch

log = logging.getLogger(__name__)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two ``(H, W, 3)`` ``uint8`` images (mean over channels)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def ssim_map(a: np.ndarray, b: np.ndarray):
    """SSIM of two ``(H, W, 3)`` ``uint8`` images and its per-pixel map.

    Returns:
        ``(ssim, map)``: the value :func:`ssim` gives, and the ``(H, W)`` map (mean over channels).
    """
    from skimage.metrics import structural_similarity

    value, full = structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False, full=True)
    return float(value), full.mean(-1)


def face_region(landmarks: np.ndarray, shape, margin: float = 0.1):
    """``(y1, y2, x1, x2)`` slice bounds of the landmark box grown by ``margin`` of its size."""
    x1, y1, x2, y2 = landmark_box(landmarks)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = shape[:2]
    return (max(0, int(y1 - my)), min(h, int(np.ceil(y2 + my))), max(0, int(x1 - mx)), min(w, int(np.ceil(x2 + mx))))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two ``uint8`` images (``inf`` when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two ``uint8`` images on a 0..1 scale."""
    return float(np.mean(np.abs(a.astype(np.float32) - b.astype(np.float32))) / 255.0)


def image_metrics(outputs: np.ndarray, truths: np.ndarray, landmarks: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Mean SSIM / PSNR / L1 over ``(N, H, W, 3)`` ``uint8`` pairs.

    With ``landmarks`` (``(N, 68, 2)``) also ``ssim_face``: SSIM averaged over the face box
    only, which a still background cannot inflate.
    """
    s, f = [], []
    for k, (o, t) in enumerate(zip(outputs, truths)):
        value, m = ssim_map(o, t)
        s.append(value)
        if landmarks is not None:
            y1, y2, x1, x2 = face_region(landmarks[k], m.shape)
            f.append(float(m[y1:y2, x1:x2].mean()))
    p = [psnr(o, t) for o, t in zip(outputs, truths)]
    d = [l1(o, t) for o, t in zip(outputs, truths)]
    res = {"ssim": float(np.mean(s)), "ssim_min": float(np.min(s)), "psnr": float(np.mean(p)), "l1": float(np.mean(d))}
    if landmarks is not None:
        res["ssim_face"] = float(np.mean(f))
    return res


def landmark_error(images: np.ndarray, landmarks: np.ndarray, detector=None, predictor=None) -> Dict[str, float]:
    """Re-detect landmarks on ``images`` and compare with ``landmarks``.

    Args:
        images: ``(N, R, R, 3)`` ``uint8``.
        landmarks: ``(N, 68, 2)`` expected landmarks in the images' pixels.
        detector: a ``FaceDetector`` for ``face_found`` (``None``: not measured).
        predictor: ``LandmarkPredictor(68)``; built when ``None``.

    Returns:
        ``landmark_error`` (mean pixels; dlib run in the expected landmarks' bounds) and
        ``face_found`` (fraction of images where the detector found a face overlapping the
        expected one; ``nan`` without a detector).
    """
    from ..infer.landmarks import LandmarkPredictor

    predictor = predictor or LandmarkPredictor(68)
    errs, found = [], 0
    for img, lm in zip(images, landmarks):
        x1, y1, x2, y2 = landmark_box(lm)
        expected = BBox(x1, y1, x2, y2)
        if detector is not None and any(d.box.iou(expected) > 0.2 for d in detector.detect(img)):
            found += 1
        pred = predictor.predict(img, expected)
        errs.append(float(np.linalg.norm(pred - lm, axis=1).mean()))
    return {"landmark_error": float(np.mean(errs)),
            "face_found": found / max(1, len(images)) if detector is not None else float("nan")}


def time_generator(gen, resolution: int, runs: int = 30, warmup: int = 5) -> Dict[str, float]:
    """Batch-1 generator latency on random sketches.

    Returns:
        ``ms_mean``, ``ms_p50``, ``ms_p90`` and ``fps`` (= 1000 / mean).
    """
    rng = np.random.default_rng(0)
    x = (rng.random((1, resolution, resolution, 3)) * 255).astype(np.uint8)
    for _ in range(warmup):
        gen.predict(x)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        gen.predict(x)
        ts.append((time.perf_counter() - t) * 1000)
    ts = np.array(ts)
    return {"ms_mean": float(ts.mean()), "ms_p50": float(np.percentile(ts, 50)),
            "ms_p90": float(np.percentile(ts, 90)), "fps": float(1000.0 / ts.mean())}


def image_grid(sketches: np.ndarray, outputs: np.ndarray, truths: np.ndarray, max_cols: int = 6) -> np.ndarray:
    """Rows sketch / output / truth, one column per frame (``uint8`` BGR)."""
    n = min(len(sketches), max_cols)
    pick = np.linspace(0, len(sketches) - 1, n).round().astype(int)
    rows = [np.hstack([imgs[i] for i in pick]) for imgs in (sketches, outputs, truths)]
    return np.vstack(rows)


def evaluate(gen, dataset, detector=None, predictor=None, batch_size: int = 16, limit: Optional[int] = None,
             landmarks: bool = True, fps: bool = True, grid_path: Optional[str] = None) -> Dict[str, float]:
    """Evaluate a generator on a dataset's held-out split.

    Args:
        gen: a :class:`~face_tracker_core.reenact.renderer.Generator`.
        dataset: a :class:`~face_tracker_core.reenact.prepare.PairDataset` (its ``test`` subset is used
            when it has one, else all pairs).
        detector: face detector for the landmark error (``None``: boxes from the input landmarks).
        predictor: ``LandmarkPredictor(68)`` (built when needed).
        batch_size: generator batch.
        limit: evaluate at most this many frames, evenly spaced.
        landmarks: compute the landmark error (dlib on every output: ~10 ms a frame).
        fps: time the generator.
        grid_path: write a sketch / output / truth grid PNG there.

    Returns:
        Metrics (see the module docstring) plus ``frames``.
    """
    test = dataset.subset("test") if (dataset.split == 1).any() else dataset
    idx = np.arange(len(test))
    if limit and len(idx) > limit:
        idx = np.linspace(0, len(idx) - 1, limit).round().astype(int)
    truths = test.frames[idx]
    thickness = dataset.meta.get("thickness")
    sketches = np.stack([render_sketch(test.landmarks[i], test.resolution, thickness) for i in idx])
    outputs = np.concatenate([gen.predict(sketches[i:i + batch_size]) for i in range(0, len(idx), batch_size)])
    res: Dict[str, float] = {"frames": int(len(idx))}
    res.update(image_metrics(outputs, truths, test.landmarks[idx]))
    train = dataset.subset("train")
    if len(train) and len(train) != len(dataset):
        # What a generator that ignores the sketch could reach: the mean training frame.
        mean = np.stack([train.frames.astype(np.float32).mean(0).round().astype(np.uint8)] * len(idx))
        res.update({f"baseline_mean_frame_{k}": v for k, v in image_metrics(mean, truths, test.landmarks[idx]).items()
                    if k in ("ssim", "ssim_face", "psnr", "l1")})
    if landmarks:
        lm = test.landmarks[idx]
        out = landmark_error(outputs, lm, detector, predictor)
        real = landmark_error(truths, lm, detector, predictor)
        res.update(landmark_error=out["landmark_error"], face_found=out["face_found"],
                   landmark_error_real=real["landmark_error"], face_found_real=real["face_found"])
    if fps:
        res.update({f"gen_{k}": v for k, v in time_generator(gen, test.resolution).items()})
    if grid_path:
        cv2.imwrite(grid_path, image_grid(sketches, outputs, truths))
    return res
