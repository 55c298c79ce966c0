"""``tf.data`` pipelines over :class:`~face_tracker_core.data.dataset.Sample` lists.

Two targets:

* :func:`single_face_dataset` -- the single-face format of the classic FaceTracker (VGG16
  regression head): ``(images, (classes, boxes))`` with one box per image;
* :func:`multi_face_dataset` -- letterboxed images with every face as padded pixel boxes and a
  validity mask, for the multi-face detector.

Images are decoded with OpenCV (the same decoder as the rest of the core, so ``.jfif``/``.webp``
and LabelMe-embedded images work), converted to **RGB**, resized and cached as ``uint8``; the
float conversion happens per batch, so the cache is 4x smaller. An unreadable image is logged with
its path and skipped, never crashing an epoch.

Both take the same batching arguments: ``batch_size`` (images per batch), ``shuffle`` (reshuffle
every epoch, seeded by ``seed``), ``cache`` (cache the decoded ``uint8`` images in memory with
``True``, or in a file given as a path) and ``drop_remainder`` (drop the last partial batch).
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..imaging import letterbox
from ..types import BBox
from .dataset import Sample

log = logging.getLogger(__name__)


def _tf():
    import tensorflow as tf

    return tf


def largest_box(boxes: Sequence[BBox]) -> Optional[BBox]:
    """The box with the largest area (the single-face target keeps one face), or ``None``."""
    return max(boxes, key=lambda b: b.area) if boxes else None


def single_face_targets(samples: Sequence[Sample]) -> Tuple[np.ndarray, np.ndarray]:
    """``(classes (N, 1) float32, boxes (N, 4) float32)`` of the single-face format.

    ``classes`` is 1 when the image has a face; ``boxes`` is the largest face as ``(x1/W, y1/H,
    x2/W, y2/H)`` clipped to [0, 1] (zeros for negatives), i.e. albumentations' normalised format.

    Raises:
        ValueError: a sample with faces but unknown size.
    """
    classes = np.zeros((len(samples), 1), np.float32)
    boxes = np.zeros((len(samples), 4), np.float32)
    for i, s in enumerate(samples):
        b = largest_box(s.boxes)
        if b is None:
            continue
        if s.width <= 0 or s.height <= 0:
            raise ValueError(f"{s.image_path}: image size unknown (import with check_images=True)")
        classes[i, 0] = 1.0
        boxes[i] = np.clip([b.x1 / s.width, b.y1 / s.height, b.x2 / s.width, b.y2 / s.height], 0.0, 1.0)
    return classes, boxes


def _load_rgb(sample: Sample) -> Optional[np.ndarray]:
    try:
        bgr = sample.load_bgr()
    except Exception as exc:  # logged with the file name, the sample is skipped
        log.error("tf.data: skipping %s", exc)
        return None
    if sample.width and sample.height and bgr.shape[:2] != (sample.height, sample.width):
        log.error("tf.data: skipping %s: image is %dx%d, its labels say %dx%d", sample.image_path,
                  bgr.shape[1], bgr.shape[0], sample.width, sample.height)
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _is_ok(*item):
    return item[-1]


def _drop_ok(*item):
    return item[:-1]


def _finish(ds, n: int, batch_size: int, shuffle: bool, cache: Union[bool, str], seed: int,
            drop_remainder: bool, to_float):
    tf = _tf()
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle:
        ds = ds.shuffle(max(1, n), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def single_face_dataset(samples: Sequence[Sample], image_size: int = 120, batch_size: int = 8,
                        shuffle: bool = True, cache: Union[bool, str] = True, seed: int = 0,
                        drop_remainder: bool = False):
    """The classic FaceTracker's single-face dataset.

    Each image is resized (stretched, ``tf.image.resize``) to
    ``image_size x image_size``; normalised boxes are unchanged by that resize.

    Args:
        samples: images with 0..n faces (the largest face is the target).
        image_size: side ``S`` in pixels.
        batch_size, shuffle, cache, seed, drop_remainder: batching, as in the module docstring.

    Returns:
        ``tf.data.Dataset`` of ``(images, (classes, boxes))``: ``images`` float32
        ``[B, S, S, 3]`` RGB in [0, 1]; ``classes`` float32 ``[B, 1]`` (1 = face); ``boxes`` float32
        ``[B, 4]`` normalised ``x1, y1, x2, y2`` in [0, 1] (zeros for negatives).
    """
    tf = _tf()
    samples = list(samples)
    classes, boxes = single_face_targets(samples)
    size = int(image_size)

    def load(i):
        rgb = _load_rgb(samples[int(i)])
        if rgb is None:
            return np.zeros((size, size, 3), np.uint8), False
        interp = cv2.INTER_AREA if rgb.shape[0] > size or rgb.shape[1] > size else cv2.INTER_LINEAR
        return cv2.resize(rgb, (size, size), interpolation=interp), True

    def tf_load(i, c, b):
        img, ok = tf.numpy_function(load, [i], (tf.uint8, tf.bool), stateful=False)
        img = tf.ensure_shape(img, (size, size, 3))
        return img, c, b, tf.ensure_shape(ok, ())

    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(samples), dtype=np.int64), classes, boxes))
    ds = ds.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok).map(_drop_ok)

    def to_float(img, c, b):
        return tf.cast(img, tf.float32) / 255.0, (c, b)

    return _finish(ds, len(samples), batch_size, shuffle, cache, seed, drop_remainder, to_float)


def multi_face_targets(sample: Sample, image_size: Tuple[int, int], max_faces: int,
                       scale: float, pad: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Padded letterboxed boxes ``(max_faces, 4)`` float32 pixels and mask ``(max_faces,)`` float32.

    Boxes map as ``x * scale + pad_x``; beyond ``max_faces`` the largest faces are kept.
    """
    out_w, out_h = image_size
    boxes = np.zeros((max_faces, 4), np.float32)
    valid = np.zeros((max_faces,), np.float32)
    faces = sorted(sample.boxes, key=lambda b: -b.area)
    if len(faces) > max_faces:
        log.warning("tf.data: %s has %d faces, keeping the %d largest", sample.image_path, len(faces), max_faces)
        faces = faces[:max_faces]
    for k, b in enumerate(faces):
        m = BBox(b.x1 * scale + pad[0], b.y1 * scale + pad[1], b.x2 * scale + pad[0], b.y2 * scale + pad[1])
        boxes[k] = m.clip(out_w, out_h).as_xyxy()
        valid[k] = 1.0
    return boxes, valid


def multi_face_dataset(samples: Sequence[Sample], image_size: Tuple[int, int] = (320, 320), max_faces: int = 32,
                       batch_size: int = 8, shuffle: bool = True, cache: Union[bool, str] = True, seed: int = 0,
                       drop_remainder: bool = False):
    """Letterboxed images with every face.

    Args:
        samples: images with 0..n faces.
        image_size: ``(width, height)`` of the network input, pixels.
        max_faces: boxes per image after padding (larger counts keep the largest faces).
        batch_size, shuffle, cache, seed, drop_remainder: batching, as in the module docstring.

    Returns:
        ``tf.data.Dataset`` of ``(images, (boxes, valid))``: ``images`` float32 ``[B, H, W, 3]``
        RGB in [0, 1], letterboxed (aspect kept, centred, zero padding, see
        :func:`~face_tracker_core.imaging.letterbox`); ``boxes`` float32 ``[B, max_faces, 4]``
        ``x1, y1, x2, y2`` in pixels of the letterboxed image, largest face first, zero rows
        after the last face; ``valid`` float32 ``[B, max_faces]``, 1 for a real face, 0 for padding.
    """
    tf = _tf()
    samples = list(samples)
    out_w, out_h = int(image_size[0]), int(image_size[1])
    m = int(max_faces)

    def load(i):
        s = samples[int(i)]
        rgb = _load_rgb(s)
        if rgb is None:
            return (np.zeros((out_h, out_w, 3), np.uint8), np.zeros((m, 4), np.float32),
                    np.zeros((m,), np.float32), False)
        img, scale, pad = letterbox(rgb, (out_w, out_h))
        boxes, valid = multi_face_targets(s, (out_w, out_h), m, scale, pad)
        return img, boxes, valid, True

    def tf_load(i):
        img, boxes, valid, ok = tf.numpy_function(load, [i], (tf.uint8, tf.float32, tf.float32, tf.bool),
                                                  stateful=False)
        return (tf.ensure_shape(img, (out_h, out_w, 3)), tf.ensure_shape(boxes, (m, 4)),
                tf.ensure_shape(valid, (m,)), tf.ensure_shape(ok, ()))

    ds = tf.data.Dataset.from_tensor_slices(np.arange(len(samples), dtype=np.int64))
    ds = ds.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.filter(_is_ok).map(_drop_ok)

    def to_float(img, b, v):
        return tf.cast(img, tf.float32) / 255.0, (b, v)

    return _finish(ds, len(samples), batch_size, shuffle, cache, seed, drop_remainder, to_float)


def dataset_size(samples: Sequence[Sample], batch_size: int, drop_remainder: bool = False) -> int:
    """Batches per epoch (before unreadable images are skipped)."""
    n = len(samples)
    return n // batch_size if drop_remainder else -(-n // batch_size)


__all__: List[str] = ["single_face_dataset", "multi_face_dataset", "single_face_targets", "multi_face_targets",
                      "largest_box", "dataset_size"]
