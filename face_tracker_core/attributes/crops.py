"""Face crops for the attribute and transfer models, and an on-disk crop cache.

A crop is a square around a face box, enlarged by ``margin`` (a fraction of the box width added on
each side, so ``margin=0.4`` gives a square of 1.8 box widths: hair, ears and chin included, which
attributes such as *Bangs*, *Wearing_Hat* or *Double_Chin* need), resized to ``size`` pixels.
Parts outside the image are filled by replicating the border.

Training decodes and detects each photo once and keeps the crops in a ``.npy`` memory map on disk
(:class:`CropCache`), so training reads small crops and never holds the whole data set in RAM: the
same path works for the 417-photo sample and for the 200k photos of full CelebA.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError, ImageDecodeError
from ..imaging import read_image
from ..infer.base import FaceDetector
from ..types import BBox, Detection

log = logging.getLogger(__name__)

__all__ = ["crop_face", "FaceCropper", "DlibHogDetector", "CropCache", "build_crop_cache", "CropItem",
           "STATUS_DETECTED", "STATUS_FALLBACK", "STATUS_GIVEN", "STATUS_NO_FACE", "STATUS_ERROR"]

STATUS_ERROR = -1     #: unreadable image (message in ``errors.json``)
STATUS_NO_FACE = 0    #: readable, but no face found: not used for training
STATUS_DETECTED = 1   #: box from the main detector
STATUS_FALLBACK = 2   #: box from the fallback detector (dlib HOG)
STATUS_GIVEN = 3      #: box given by the annotations (e.g. ``list_bbox_celeba.txt``)


def crop_face(bgr: np.ndarray, box: BBox, margin: float = 0.4, size: int = 64, color: str = "rgb") -> np.ndarray:
    """Square face crop.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` BGR image.
        box: face box in pixels (corner format).
        margin: fraction of the box width added on every side (the square's side is
            ``width * (1 + 2 * margin)``, centred on the box centre).
        size: output side in pixels.
        color: ``"rgb"`` (3 channels, RGB order, what the models take) or ``"gray"`` (1 channel).

    Returns:
        ``(size, size, 3)`` RGB or ``(size, size, 1)`` gray ``uint8`` array.
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ImageDecodeError(f"expected an HxWx3 BGR image, got shape {bgr.shape}")
    h, w = bgr.shape[:2]
    cx, cy = box.center
    # The side follows the box *width*: detectors agree on face width far better than on height
    # (forehead/chin conventions: the shipped detector's boxes are ~1.4x taller than the Haar
    # cascade's for the same face, but as wide), so a model trained on one detector's crops sees
    # faces at the same scale with another's.
    side = max(box.width, 1.0) * (1.0 + 2.0 * margin)
    x1, y1 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    # Pad only as much as the square leaves the image, then cut: cheaper than padding the frame.
    pl, pt = max(0, -x1), max(0, -y1)
    pr, pb = max(0, x1 + s - w), max(0, y1 + s - h)
    sub = bgr[max(0, y1):min(h, y1 + s), max(0, x1):min(w, x1 + s)]
    if sub.size == 0:  # box entirely outside the image
        sub = np.zeros((1, 1, 3), np.uint8)
        pl = pt = 0
        pr = pb = s - 1
    if pl or pt or pr or pb:
        sub = cv2.copyMakeBorder(sub, pt, pb, pl, pr, cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    out = cv2.resize(sub, (size, size), interpolation=interp)
    if color == "gray":
        return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)[..., None]
    if color == "rgb":
        return np.ascontiguousarray(out[..., ::-1])
    raise ValueError(f"color must be 'rgb' or 'gray', got '{color}'")


class DlibHogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (offline, in dlib itself).

    Used as the fallback when the main detector finds no face in a training photo: it finds
    ~97% of CelebA in-the-wild faces where the Haar cascade finds ~91%.

    Args:
        upsample: image doublings before detection (1 finds faces down to ~40 px).
        max_side: frames larger than this (pixels) are downscaled first.
    """

    name = "dlib_hog"

    def __init__(self, upsample: int = 1, max_side: int = 640) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.max_side = int(max_side)

    def detect(self, bgr: np.ndarray) -> List[Detection]:
        h, w = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        img = bgr if scale >= 1.0 else cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._det.run(np.ascontiguousarray(img[..., ::-1]), self.upsample, 0.0)
        out = []
        for r, sc in zip(rects, scores):
            box = BBox(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale).clip(w, h)
            if box.area > 0:
                # SVM margin -> [0, 1] for comparability with the other backends.
                out.append(Detection(box=box, score=float(1.0 / (1.0 + np.exp(-sc)))))
        out.sort(key=lambda d: d.score, reverse=True)
        return out

    def describe(self) -> str:
        return f"dlib_hog(upsample={self.upsample})"


class FaceCropper:
    """Finds the main face of a photo and crops it.

    Args:
        detector: a :class:`FaceDetector`, or a backend name for
            :func:`~face_tracker_core.infer.make_detector` (``"default"``: the shipped detector).
        margin: see :func:`crop_face`.
        size: crop side in pixels.
        color: ``"rgb"`` or ``"gray"``.
        fallback: ``"dlib_hog"`` to try dlib's HOG detector when ``detector`` finds nothing,
            ``"none"`` to give up.
        min_face: boxes smaller than this (pixels, longer side) are ignored as false alarms.
    """

    def __init__(self, detector="default", margin: float = 0.4, size: int = 64, color: str = "rgb",
                 fallback: str = "dlib_hog", min_face: int = 20) -> None:
        if color not in ("rgb", "gray"):
            raise ValueError(f"color must be 'rgb' or 'gray', got '{color}'")
        if fallback not in ("dlib_hog", "none"):
            raise ValueError(f"fallback must be 'dlib_hog' or 'none', got '{fallback}'")
        self._detector_arg = detector
        self._detector: Optional[FaceDetector] = detector if isinstance(detector, FaceDetector) else None
        self._fallback: Optional[FaceDetector] = None
        self.fallback = fallback
        self.margin = float(margin)
        self.size = int(size)
        self.color = color
        self.min_face = int(min_face)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:  # lazy: crops from given boxes need no detector at all
            from ..infer import make_detector

            self._detector = make_detector(str(self._detector_arg))
        return self._detector

    def config(self) -> dict:
        """What defines the crops (stored beside cached crops and trained models)."""
        return {"margin": self.margin, "size": self.size, "color": self.color,
                "detector": self.detector.describe(), "fallback": self.fallback, "min_face": self.min_face}

    def crop_config(self) -> dict:
        """Just the geometry (what inference needs to reproduce the training crops)."""
        return {"margin": self.margin, "size": self.size, "color": self.color}

    def _main_face(self, dets: Sequence[Detection]) -> Optional[BBox]:
        # In CelebA-like photos the labelled person is the largest face; small hits are often
        # cascade false alarms in hair or background.
        good = [d.box for d in dets if max(d.box.width, d.box.height) >= self.min_face]
        return max(good, key=lambda b: b.area) if good else None

    def locate(self, bgr: np.ndarray) -> Tuple[Optional[BBox], int]:
        """Main face box and how it was found (``STATUS_DETECTED``, ``STATUS_FALLBACK`` or
        ``STATUS_NO_FACE`` with ``None``)."""
        box = self._main_face(self.detector.detect(bgr))
        if box is not None:
            return box, STATUS_DETECTED
        if self.fallback == "dlib_hog":
            if self._fallback is None:
                self._fallback = DlibHogDetector()
            box = self._main_face(self._fallback.detect(bgr))
            if box is not None:
                return box, STATUS_FALLBACK
        return None, STATUS_NO_FACE

    def crop(self, bgr: np.ndarray, box: Optional[BBox] = None) -> Tuple[Optional[np.ndarray], Optional[BBox], int]:
        """Crop the given box, or the main detected face.

        Returns:
            ``(crop or None, box or None, status)``.
        """
        status = STATUS_GIVEN
        if box is None:
            box, status = self.locate(bgr)
            if box is None:
                return None, None, status
        return crop_face(bgr, box, self.margin, self.size, self.color), box, status


@dataclass(frozen=True)
class CropItem:
    """One photo to crop.

    Attributes:
        key: stable name (e.g. ``000123.jpg`` or ``person/000123.jpg``).
        path: image file.
        box: given face box, or ``None`` to detect.
        where: location for error messages, e.g. ``list_attr_celeba.txt line 57``.
    """

    key: str
    path: str
    box: Optional[BBox] = None
    where: str = ""


class CropCache:
    """Crops of a list of photos in a folder on disk.

    Files: ``crops.npy`` (``(N, size, size, C)`` ``uint8`` memory map), ``status.npy`` (``(N,)``
    ``int8``, the ``STATUS_*`` values), ``boxes.npy`` (``(N, 4)`` ``float32`` boxes in pixels of the
    original photos, NaN when none), ``keys.json``, ``errors.json`` (``{index: message}``) and
    ``meta.json`` (crop config, ``complete`` flag).

    Attributes:
        crops: read-only memory map (not loaded into RAM).
        status, boxes, keys, errors, meta: as above.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        meta_path = os.path.join(folder, "meta.json")
        try:
            with open(meta_path, "r", encoding="utf-8") as fh:
                self.meta = json.load(fh)
            with open(os.path.join(folder, "keys.json"), "r", encoding="utf-8") as fh:
                self.keys: List[str] = json.load(fh)
            with open(os.path.join(folder, "errors.json"), "r", encoding="utf-8") as fh:
                self.errors = {int(k): v for k, v in json.load(fh).items()}
            self.crops = np.load(os.path.join(folder, "crops.npy"), mmap_mode="r")
            self.status = np.load(os.path.join(folder, "status.npy"))
            self.boxes = np.load(os.path.join(folder, "boxes.npy"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{folder}: unreadable crop cache ({exc}); delete the folder to rebuild it") from exc
        self.index = {k: i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def usable(self) -> np.ndarray:
        """``(N,)`` bool: rows with a face crop."""
        return self.status > 0

    def summary(self) -> str:
        st = self.status
        return (f"{len(st)} photos: {int((st == STATUS_DETECTED).sum())} detected, "
                f"{int((st == STATUS_FALLBACK).sum())} by fallback, {int((st == STATUS_GIVEN).sum())} given boxes, "
                f"{int((st == STATUS_NO_FACE).sum())} without a face, {int((st == STATUS_ERROR).sum())} unreadable")


def _cache_key(items: Sequence[CropItem], cfg: dict) -> str:
    h = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode())
    for it in items:
        b = "" if it.box is None else ",".join(f"{v:.1f}" for v in it.box.as_xyxy())
        h.update(f"{it.key}|{os.path.abspath(it.path)}|{b}\n".encode())
    return h.hexdigest()[:16]


def build_crop_cache(items: Sequence[CropItem], cropper: FaceCropper, cache_root: str, name: str = "crops",
                     strict: bool = False, progress_every: int = 200) -> CropCache:
    """Crop every photo once into ``cache_root/<name>-<hash>/`` (reused when it exists).

    The hash covers the photo list, given boxes, crop/detector config and the detector's weights,
    so changing any of them builds a new cache. An interrupted build resumes where it stopped.

    Args:
        items: the photos.
        cropper: how to find and crop faces.
        cache_root: parent folder (e.g. ``runs/cache``).
        name: readable prefix of the cache folder.
        strict: raise on the first unreadable image instead of recording it and going on.
        progress_every: log progress every this many photos.

    Raises:
        ImageDecodeError: only with ``strict``; the message names the file and where it is listed.
    """
    items = list(items)
    cfg = cropper.config() if any(it.box is None for it in items) else {**cropper.crop_config(), "detector": None}
    key_cfg = cfg
    if cfg.get("detector") is not None:
        from ..infer.base import weights_signature

        # The detector's weights too: a retrained model with the same name and threshold must not
        # reuse the old model's crops.
        key_cfg = {**cfg, "detector_weights": weights_signature(cropper.detector)}
    folder = os.path.join(cache_root, f"{name}-{_cache_key(items, key_cfg)}")
    meta_path = os.path.join(folder, "meta.json")
    n, c = len(items), (1 if cropper.color == "gray" else 3)
    done = 0
    if os.path.isfile(meta_path):
        with open(meta_path, "r", encoding="utf-8") as fh:
            meta = json.load(fh)
        if meta.get("complete"):
            cache = CropCache(folder)
            log.info("crop cache %s: %s", folder, cache.summary())
            return cache
        done = int(meta.get("done", 0))
    os.makedirs(folder, exist_ok=True)
    crops_path = os.path.join(folder, "crops.npy")
    if done and os.path.isfile(crops_path):
        crops = np.load(crops_path, mmap_mode="r+")
        status = np.load(os.path.join(folder, "status.npy"))
        boxes = np.load(os.path.join(folder, "boxes.npy"))
        with open(os.path.join(folder, "errors.json"), "r", encoding="utf-8") as fh:
            errors = json.load(fh)
        log.info("resuming crop cache %s at %d/%d", folder, done, n)
    else:
        done = 0
        crops = np.lib.format.open_memmap(crops_path, mode="w+", dtype=np.uint8,
                                          shape=(n, cropper.size, cropper.size, c))
        status = np.zeros(n, np.int8)
        boxes = np.full((n, 4), np.nan, np.float32)
        errors = {}
        with open(os.path.join(folder, "keys.json"), "w", encoding="utf-8") as fh:
            json.dump([it.key for it in items], fh)
    meta = {"config": cfg, "n": n, "done": done, "complete": False}

    def flush(d: int, complete: bool = False) -> None:
        crops.flush()
        np.save(os.path.join(folder, "status.npy"), status)
        np.save(os.path.join(folder, "boxes.npy"), boxes)
        with open(os.path.join(folder, "errors.json"), "w", encoding="utf-8") as fh:
            json.dump(errors, fh, indent=0)
        meta.update(done=d, complete=complete)
        with open(meta_path, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)

    t0 = time.time()
    for i in range(done, n):
        it = items[i]
        where = f" ({it.where})" if it.where else ""
        try:
            bgr = read_image(it.path)
        except ImageDecodeError as exc:
            if strict:
                raise ImageDecodeError(f"{exc}{where}") from exc
            msg = f"{exc}{where}"
            log.error("%s", msg)
            status[i] = STATUS_ERROR
            errors[str(i)] = msg
            continue
        crop, box, st = cropper.crop(bgr, it.box)
        status[i] = st
        if crop is None:
            log.warning("%s%s: no face found, photo skipped", it.path, where)
            errors[str(i)] = f"{it.path}{where}: no face found"
            continue
        crops[i] = crop
        boxes[i] = box.as_xyxy()
        if progress_every and (i + 1) % progress_every == 0:
            rate = (i + 1 - done) / max(time.time() - t0, 1e-6)
            log.info("cropped %d/%d photos (%.1f/s)", i + 1, n, rate)
            flush(i + 1)
    flush(n, complete=True)
    cache = CropCache(folder)
    log.info("crop cache %s: %s", folder, cache.summary())
    return cache


def items_from_folder(root: str, exts: Iterable[str] = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".webp",
                                                          ".tif", ".tiff", ".pgm", ".ppm")) -> List[CropItem]:
    """Every image file under ``root`` (recursively), key = path relative to ``root``, sorted."""
    exts = tuple(e.lower() for e in exts)
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.lower().endswith(exts):
                p = os.path.join(dirpath, f)
                out.append(CropItem(os.path.relpath(p, root).replace(os.sep, "/"), p))
    out.sort(key=lambda it: it.key)
    return out
