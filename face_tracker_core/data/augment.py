"""Offline augmentation with albumentations: N variants per image, boxes moved with the pixels.

The pipeline is described by a config dict (YAML/JSON friendly) naming albumentations transforms
in order. The default pipeline (``RandomCrop``, ``HorizontalFlip``,
``RandomBrightnessContrast``, ``RandomGamma``, ``RGBShift``, optional ``VerticalFlip``)::

    {"transforms": [{"name": "RandomCrop", "scale": 0.85},      # or "width"/"height" in pixels
                    {"name": "HorizontalFlip", "p": 0.5},
                    {"name": "RandomBrightnessContrast", "p": 0.2},
                    {"name": "RandomGamma", "p": 0.2},
                    {"name": "RGBShift", "p": 0.2},
                    {"name": "VerticalFlip", "p": 0.0}],
     "min_visibility": 0.5, "min_area": 16.0, "variants": 10, "seed": 0}

Boxes are ``pascal_voc``: pixel ``(x1, y1, x2, y2)`` of the image, as in :class:`~face_tracker_core.types.BBox`.
A face cut by the crop is clipped to the crop and kept when at least ``min_visibility`` of its
area (and ``min_area`` pixels²) remains, else dropped. Images without faces stay negatives.

``RandomCrop`` accepts ``scale`` (fraction of each side of *this* image) or ``width``/``height``
in pixels (clamped to the image, so a 450x450 crop works on smaller photos too); the
pipeline is therefore built per image size (and cached).

Determinism: variant ``v`` of an image uses a seed derived from ``(seed, source_id, file
name, v)``, so outputs do not depend on the worker count or the order of the input list.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import sys
import threading
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import time

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ..errors import DataError  # noqa: E402
from ..types import BBox  # noqa: E402
from .dataset import FileIssue, Sample  # noqa: E402
from .labelme import atomic_write_bytes, write_labelme  # noqa: E402

log = logging.getLogger(__name__)

#: The default transforms (vertical flip off: a robot camera never sees people upside down).
DEFAULT_AUGMENT_CONFIG: Dict[str, Any] = {
    "transforms": [
        {"name": "RandomCrop", "scale": 0.85, "p": 1.0},
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "RandomBrightnessContrast", "p": 0.2},
        {"name": "RandomGamma", "p": 0.2},
        {"name": "RGBShift", "p": 0.2},
        {"name": "VerticalFlip", "p": 0.0},
    ],
    "min_visibility": 0.5,
    "min_area": 16.0,
    "variants": 10,
    "seed": 0,
}

_BBOX_KEYS = ("min_visibility", "min_area", "min_width", "min_height")


def _albu():
    import albumentations as A

    return A


def merge_config(config: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Default config updated with ``config`` (top-level keys replace the defaults')."""
    out = copy.deepcopy(DEFAULT_AUGMENT_CONFIG)
    for k, v in (config or {}).items():
        out[k] = copy.deepcopy(v)
    unknown = set(out) - {"transforms", "variants", "seed", *_BBOX_KEYS}
    if unknown:
        raise DataError(f"augmentation config: unknown keys {sorted(unknown)}")
    return out


def load_config(path: str) -> Dict[str, Any]:
    """Read an augmentation config from YAML or JSON (merged over the defaults).

    Raises:
        DataError: unreadable or malformed file.
    """
    import yaml

    try:
        with open(path, "r", encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read augmentation config ({exc})") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{path}: augmentation config must be a mapping")
    try:
        return merge_config(doc)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc


def build_pipeline(config: Optional[Mapping[str, Any]] = None, image_size: Optional[Tuple[int, int]] = None,
                   seed: Optional[int] = None, save_applied_params: bool = False):
    """Build an ``albumentations.Compose`` with pixel ``pascal_voc`` boxes and a ``labels`` field.

    Args:
        config: see the module docstring (merged over :data:`DEFAULT_AUGMENT_CONFIG`).
        image_size: ``(width, height)`` of the images it will see; needed to resolve
            ``RandomCrop`` ``scale`` and to clamp pixel crop sizes.
        seed: albumentations random seed (``None``: random).
        save_applied_params: keep the sampled parameters in the result (``applied_transforms``).

    Returns:
        The pipeline; call it as ``pipe(image=rgb_or_bgr, bboxes=[[x1, y1, x2, y2], ...], labels=[...])``.

    Raises:
        DataError: unknown transform name, bad arguments, or a crop that needs ``image_size``.
    """
    A = _albu()
    cfg = merge_config(config)
    steps = []
    for i, spec in enumerate(cfg["transforms"]):
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise DataError(f"augmentation config: transform {i} needs a 'name'")
        kwargs = {k: v for k, v in spec.items() if k != "name"}
        name = spec["name"]
        if name == "RandomCrop":
            kwargs = _crop_kwargs(kwargs, image_size, i)
        cls = getattr(A, name, None)
        if cls is None or not isinstance(cls, type):
            raise DataError(f"augmentation config: transform {i}: albumentations has no '{name}'")
        try:
            steps.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:
            raise DataError(f"augmentation config: transform {i} ({name}): {exc}") from exc
    bbox_params = A.BboxParams(format="pascal_voc", label_fields=["labels"], clip=True,
                               **{k: float(cfg[k]) for k in _BBOX_KEYS if k in cfg})
    return A.Compose(steps, bbox_params=bbox_params, seed=seed, save_applied_params=save_applied_params)


def _crop_kwargs(kwargs: Dict[str, Any], image_size: Optional[Tuple[int, int]], i: int) -> Dict[str, Any]:
    kw = dict(kwargs)
    scale = kw.pop("scale", None)
    if scale is not None:
        if image_size is None:
            raise DataError(f"augmentation config: transform {i} (RandomCrop scale) needs the image size")
        if not 0 < float(scale) <= 1:
            raise DataError(f"augmentation config: transform {i}: RandomCrop scale {scale} outside (0, 1]")
        w, h = image_size
        kw["width"], kw["height"] = max(1, int(round(w * float(scale)))), max(1, int(round(h * float(scale))))
    elif "width" not in kw or "height" not in kw:
        raise DataError(f"augmentation config: transform {i}: RandomCrop needs 'scale' or 'width'+'height'")
    elif image_size is not None:
        w, h = image_size
        kw["width"], kw["height"] = min(int(kw["width"]), w), min(int(kw["height"]), h)
    return kw


class Augmenter:
    """Applies a config to images of any size (one cached pipeline per size).

    Args:
        config: augmentation config (merged over the defaults).
        save_applied_params: keep albumentations' sampled parameters (for tests/debugging).
    """

    def __init__(self, config: Optional[Mapping[str, Any]] = None, save_applied_params: bool = False) -> None:
        self.config = merge_config(config)
        self.save_applied_params = save_applied_params
        self._pipes: Dict[Tuple[int, int], Any] = {}
        build_pipeline(self.config, (640, 480))  # validate the config now, not in a worker

    def pipeline(self, width: int, height: int):
        key = (int(width), int(height))
        if key not in self._pipes:
            if len(self._pipes) > 64:
                self._pipes.clear()
            self._pipes[key] = build_pipeline(self.config, key, save_applied_params=self.save_applied_params)
        return self._pipes[key]

    def __call__(self, bgr: np.ndarray, boxes: Sequence[BBox], labels: Optional[Sequence[str]] = None,
                 seed: int = 0) -> Tuple[np.ndarray, Tuple[BBox, ...], Tuple[str, ...], Any]:
        """Augment one image.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` image (colour transforms treat channels symmetrically,
                so BGR is fine).
            boxes: face boxes, pixels of ``bgr``.
            labels: one label per box (default ``"face"``).
            seed: seed of this variant.

        Returns:
            ``(image, boxes, labels, applied)``: the new image, its boxes in its pixels (cut faces
            clipped, mostly-cut ones dropped), their labels, and albumentations' applied
            parameters (``None`` unless ``save_applied_params``).
        """
        h, w = bgr.shape[:2]
        labels = list(labels) if labels is not None else ["face"] * len(boxes)
        pipe = self.pipeline(w, h)
        pipe.set_random_seed(int(seed) & 0x7FFFFFFF)
        # Boxes within a pixel outside the image (clipped at import) must not trip the checks.
        bxs = [list(b.clip(w, h).as_xyxy()) for b in boxes]
        out = pipe(image=bgr, bboxes=np.asarray(bxs, np.float32).reshape(-1, 4), labels=labels)
        oh, ow = out["image"].shape[:2]
        # albumentations normalises boxes in float32: round away its ~1e-5 px noise.
        new_boxes = tuple(BBox(*(round(float(v), 3) for v in b[:4])).clip(ow, oh) for b in out["bboxes"])
        return out["image"], new_boxes, tuple(out["labels"]), out.get("applied_transforms")


def variant_seed(seed: int, sample: Sample, variant: int) -> int:
    """Seed of ``variant`` of ``sample``: independent of worker count and input order."""
    key = f"{seed}|{sample.source_id}|{os.path.basename(sample.image_path)}|{variant}"
    return zlib.crc32(key.encode("utf-8"))


def augment_variants(sample: Sample, augmenter: Augmenter, variants: int, seed: int = 0,
                     bgr: Optional[np.ndarray] = None) -> List[Tuple[np.ndarray, Tuple[BBox, ...], Tuple[str, ...]]]:
    """``variants`` augmented copies of one sample, in memory.

    Returns:
        ``[(image, boxes, labels), ...]`` with boxes in pixels of each new image.
    """
    img = sample.load_bgr() if bgr is None else bgr
    out = []
    for v in range(variants):
        im, bx, lb, _ = augmenter(img, sample.boxes, sample.labels or None, variant_seed(seed, sample, v))
        out.append((im, bx, lb))
    return out


@dataclass
class AugmentReport:
    """What :func:`augment_samples` wrote.

    Attributes:
        samples: the written variants (``source_id`` = their original's).
        errors: inputs that could not be augmented (unreadable image...), one line each.
        dropped_boxes: faces dropped because a crop left less than ``min_visibility`` of them.
        kept_boxes: faces written.
    """

    samples: List[Sample] = field(default_factory=list)
    errors: List[FileIssue] = field(default_factory=list)
    dropped_boxes: int = 0
    kept_boxes: int = 0


# Worker state (one Augmenter per process, built once by the initializer).
_WORKER: Dict[str, Any] = {}


def _init_worker(config: Mapping[str, Any], single_thread: bool = True) -> None:
    if single_thread:
        cv2.setNumThreads(1)  # the pool already uses every core
    _WORKER["aug"] = Augmenter(config)


def _output_stem(sample: Sample, base: str, out_dir: str) -> str:
    rel = os.path.relpath(os.path.splitext(os.path.abspath(sample.image_path))[0], base)
    if rel.startswith(".."):
        rel = os.path.basename(rel)
    return os.path.join(out_dir, rel)


def _augment_one(job: Tuple[Sample, str, int, int, int, bool]) -> Tuple[List[Sample], Optional[FileIssue], int, int]:
    sample, stem, variants, seed, quality, embed = job
    aug: Augmenter = _WORKER["aug"]
    try:
        img = sample.load_bgr()
    except Exception as exc:  # one bad image must not stop the batch
        return [], FileIssue(sample.image_path, str(exc)), 0, 0
    written: List[Sample] = []
    dropped = kept = 0
    try:
        os.makedirs(os.path.dirname(stem), exist_ok=True)
        for v in range(variants):
            im, boxes, labels, _ = aug(img, sample.boxes, sample.labels or None, variant_seed(seed, sample, v))
            dropped += len(sample.boxes) - len(boxes)
            kept += len(boxes)
            ok, buf = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise DataError("JPEG encoding failed")
            ip, jp = f"{stem}_aug{v:03d}.jpg", f"{stem}_aug{v:03d}.json"
            atomic_write_bytes(ip, buf.tobytes(), overwrite=True)
            h, w = im.shape[:2]
            write_labelme(jp, ip, w, h, boxes, labels, overwrite=True,
                          image_data=buf.tobytes() if embed else None,
                          extra={"source_id": sample.source_id, "augmented_from": sample.image_path,
                                 "augment_seed": variant_seed(seed, sample, v)})
            written.append(Sample(os.path.abspath(ip), boxes, sample.source_id, w, h, labels,
                                  os.path.abspath(jp)))
    except OSError as exc:
        err = FileIssue(sample.image_path, f"{sample.image_path}: cannot write variants ({exc})")
        return written, err, dropped, kept
    except Exception as exc:  # report the file, keep the batch going
        err = FileIssue(sample.image_path, f"{sample.image_path}: {exc.__class__.__name__}: {exc}")
        return written, err, dropped, kept
    return written, None, dropped, kept


# Native thread pools (TensorFlow, rclpy, OpenCV) are invisible to threading.active_count(), and
# forking while one of them holds a lock deadlocks the child (seen in the full test suite after
# TensorFlow was imported). ``fork`` is used only when none of those libraries is loaded.
_THREADED_LIBS = ("tensorflow", "rclpy", "torch", "jax", "dlib")


def _pool_context():
    """``fork`` (fast: workers inherit the imports) when this process runs no other thread and
    no library with native threads is loaded; otherwise ``forkserver``."""
    if (threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
            and not any(m in sys.modules for m in _THREADED_LIBS)):
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    try:
        ctx.set_forkserver_preload([__name__])  # import albumentations once, in the server
    except Exception:  # noqa: BLE001 - older Pythons: workers import it themselves
        pass
    return ctx


def augment_samples(samples: Sequence[Sample], out_dir: str, variants: Optional[int] = None,
                    config: Optional[Mapping[str, Any]] = None, workers: int = 2, seed: Optional[int] = None,
                    jpeg_quality: int = 95, embed_image: bool = False) -> AugmentReport:
    """Write ``variants`` augmented copies of every sample as JPEG + LabelMe JSON under ``out_dir``.

    Output names keep the inputs' relative folders: ``<out_dir>/<rel>/<stem>_aug007.jpg``.
    Each JSON stores the original's ``source_id`` so the split keeps all variants together.
    Re-running with the same config and seed rewrites identical files.

    Args:
        samples: inputs (e.g. ``import_folder(...).samples``).
        out_dir: output folder (created).
        variants: copies per image (default: the config's ``variants``).
        config: augmentation config.
        workers: processes; 1 runs in this process.
        seed: base seed (default: the config's ``seed``).
        jpeg_quality: 1..100.
        embed_image: also embed the JPEG in the JSON (``imageData``).

    Returns:
        An :class:`AugmentReport` (bad inputs are listed, never raised).
    """
    cfg = merge_config(config)
    variants = int(cfg["variants"] if variants is None else variants)
    seed = int(cfg["seed"] if seed is None else seed)
    if variants < 1:
        raise ValueError("variants must be >= 1")
    Augmenter(cfg)  # fail fast on a bad config
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    dirs = [os.path.dirname(os.path.abspath(s.image_path)) for s in samples]
    base = os.path.commonpath(dirs) if dirs else out_dir
    if any(os.path.abspath(s.image_path).startswith(out_dir + os.sep) for s in samples):
        raise DataError(f"{out_dir}: output folder contains some inputs; choose a separate folder")
    jobs = [(s, _output_stem(s, base, out_dir), variants, seed, int(jpeg_quality), embed_image) for s in samples]
    report = AugmentReport()
    workers = max(1, int(workers))
    log.info("augment: %d images x %d variants -> %s (%d worker%s)", len(jobs), variants, out_dir,
             workers, "s" if workers > 1 else "")
    if workers == 1 or len(jobs) < 2:
        _init_worker(cfg, single_thread=False)
        results = map(_augment_one, jobs)
        pool = None
    else:
        ctx = _pool_context()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg,))
        results = pool.map(_augment_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers))))
    try:
        for i, (written, err, dropped, kept) in enumerate(results, 1):
            report.samples.extend(written)
            report.dropped_boxes += dropped
            report.kept_boxes += kept
            if err is not None:
                report.errors.append(err)
                log.error("%s", err)
            if i % 100 == 0:
                log.info("augment: %d/%d images", i, len(jobs))
    finally:
        if pool is not None:
            pool.shutdown()
    log.info("augment: wrote %d images (%d faces kept, %d cut faces dropped), %d bad inputs",
             len(report.samples), report.kept_boxes, report.dropped_boxes, len(report.errors))
    return report

