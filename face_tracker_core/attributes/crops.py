"""The on-disk crop cache of the attribute and transfer models (crops: :mod:`.cropper`).

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

import numpy as np

from ..errors import DataError, ImageDecodeError
from ..imaging import read_image
from ..types import BBox
from .cropper import (STATUS_DETECTED, STATUS_ERROR, STATUS_FALLBACK, STATUS_GIVEN, STATUS_NO_FACE, DlibHogDetector,
                      FaceCropper, crop_face)

log = logging.getLogger(__name__)

__all__ = ["crop_face", "FaceCropper", "DlibHogDetector", "CropCache", "build_crop_cache", "CropItem",
           "STATUS_DETECTED", "STATUS_FALLBACK", "STATUS_GIVEN", "STATUS_NO_FACE", "STATUS_ERROR"]

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


class _CacheBuild:
    """The arrays of a crop cache being built (new, or resumed after an interruption).

    Args:
        folder: the cache folder.
        items: the photos.
        cfg: crop/detector config written to ``meta.json``.
        shape: ``(size, size, channels)`` of one crop.
        done: photos already cropped by an interrupted build (0: start over).
    """

    def __init__(self, folder: str, items: Sequence[CropItem], cfg: dict, shape: Tuple[int, int, int],
                 done: int) -> None:
        self.folder = folder
        n = len(items)
        crops_path = os.path.join(folder, "crops.npy")
        if done and os.path.isfile(crops_path):
            self.crops = np.load(crops_path, mmap_mode="r+")
            self.status = np.load(os.path.join(folder, "status.npy"))
            self.boxes = np.load(os.path.join(folder, "boxes.npy"))
            with open(os.path.join(folder, "errors.json"), "r", encoding="utf-8") as fh:
                self.errors = json.load(fh)
            log.info("resuming crop cache %s at %d/%d", folder, done, n)
        else:
            done = 0
            self.crops = np.lib.format.open_memmap(crops_path, mode="w+", dtype=np.uint8, shape=(n,) + tuple(shape))
            self.status = np.zeros(n, np.int8)
            self.boxes = np.full((n, 4), np.nan, np.float32)
            self.errors = {}
            with open(os.path.join(folder, "keys.json"), "w", encoding="utf-8") as fh:
                json.dump([it.key for it in items], fh)
        self.done = done
        self.meta = {"config": cfg, "n": n, "done": done, "complete": False}

    def flush(self, d: int, complete: bool = False) -> None:
        """Write everything so far; ``d`` photos are done."""
        self.crops.flush()
        np.save(os.path.join(self.folder, "status.npy"), self.status)
        np.save(os.path.join(self.folder, "boxes.npy"), self.boxes)
        with open(os.path.join(self.folder, "errors.json"), "w", encoding="utf-8") as fh:
            json.dump(self.errors, fh, indent=0)
        self.meta.update(done=d, complete=complete)
        with open(os.path.join(self.folder, "meta.json"), "w", encoding="utf-8") as fh:
            json.dump(self.meta, fh, indent=1)

    def crop(self, i: int, it: CropItem, cropper: FaceCropper, strict: bool) -> None:
        """Crop photo ``i``; an unreadable photo or one without a face is recorded, not raised
        (unless ``strict``)."""
        where = f" ({it.where})" if it.where else ""
        try:
            bgr = read_image(it.path)
        except ImageDecodeError as exc:
            if strict:
                raise ImageDecodeError(f"{exc}{where}") from exc
            msg = f"{exc}{where}"
            log.error("%s", msg)
            self.status[i] = STATUS_ERROR
            self.errors[str(i)] = msg
            return
        crop, box, st = cropper.crop(bgr, it.box)
        self.status[i] = st
        if crop is None:
            log.warning("%s%s: no face found, photo skipped", it.path, where)
            self.errors[str(i)] = f"{it.path}{where}: no face found"
            return
        self.crops[i] = crop
        self.boxes[i] = box.as_xyxy()


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
    build = _CacheBuild(folder, items, cfg, (cropper.size, cropper.size, c), done)
    done = build.done
    t0 = time.time()
    for i in range(done, n):
        build.crop(i, items[i], cropper, strict)
        if progress_every and (i + 1) % progress_every == 0:
            rate = (i + 1 - done) / max(time.time() - t0, 1e-6)
            log.info("cropped %d/%d photos (%.1f/s)", i + 1, n, rate)
            build.flush(i + 1)
    build.flush(n, complete=True)
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
