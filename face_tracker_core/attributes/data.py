"""Batches of cached crops for Keras, with light augmentation (streamed from a memory map)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import cv2
import keras
import numpy as np

__all__ = ["augment_crop", "CropBatches", "predict_rows"]


def augment_crop(img: np.ndarray, rng: np.random.Generator, flip: bool = True, max_rotate: float = 10.0,
                 max_scale: float = 0.08, max_shift: float = 0.06, color: float = 0.2) -> np.ndarray:
    """Random mirror, small rotation/scale/shift and brightness/contrast change of one crop.

    Only label-preserving changes: CelebA attributes are symmetric under mirroring, and the
    geometric jitter stays within the detector's box noise.

    Args:
        img: ``(S, S, C)`` ``uint8`` crop.

    Returns:
        ``(S, S, C)`` ``uint8`` crop.
    """
    s = img.shape[0]
    c = img.shape[2]
    out = img[:, ::-1] if flip and rng.random() < 0.5 else img
    ang = rng.uniform(-max_rotate, max_rotate)
    sc = 1.0 + rng.uniform(-max_scale, max_scale)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), ang, sc)
    m[:, 2] += rng.uniform(-max_shift, max_shift, 2) * s
    out = cv2.warpAffine(np.ascontiguousarray(out), m, (s, s), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    if out.ndim == 2:
        out = out[..., None]
    if color > 0:
        a = 1.0 + rng.uniform(-color, color)           # contrast
        b = rng.uniform(-color, color) * 64.0          # brightness, pixel units
        out = np.clip(out.astype(np.float32) * a + b + (1 - a) * out.mean(), 0, 255).astype(np.uint8)
    return out.reshape(s, s, c)


class CropBatches(keras.utils.PyDataset):
    """Batches ``(x, y)`` from rows of a crop array (typically a :class:`CropCache` memory map).

    Args:
        crops: ``(N, S, S, C)`` ``uint8`` array (read lazily, row by row).
        targets: ``(N, ...)`` targets aligned with ``crops`` (0/1 attribute matrix, class ids...).
        indices: rows to use.
        batch_size: photos per batch.
        augment: apply :func:`augment_crop`.
        shuffle: reshuffle ``indices`` every epoch.
        seed: random seed (shuffling and augmentation).
        augment_kw: options of :func:`augment_crop`.

    ``x`` is ``float32`` ``(B, S, S, C)`` in 0..255; the models scale it themselves.
    """

    def __init__(self, crops: np.ndarray, targets: np.ndarray, indices: Sequence[int], batch_size: int = 64,
                 augment: bool = False, shuffle: bool = False, seed: int = 0, augment_kw: Optional[dict] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.augment_kw = dict(augment_kw or {})
        self.crops = crops
        self.targets = targets
        self.indices = np.asarray(indices, np.int64)
        self.batch_size = int(batch_size)
        self.augment = augment
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self._order = self.indices.copy()
        if shuffle:
            self.rng.shuffle(self._order)

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.indices) / self.batch_size))

    def __getitem__(self, i: int):
        idx = self._order[i * self.batch_size:(i + 1) * self.batch_size]
        # Sorted reads are sequential on disk; the batch order inside does not matter.
        idx = np.sort(idx)
        x = np.asarray(self.crops[idx])
        if self.augment:
            x = np.stack([augment_crop(im, self.rng, **self.augment_kw) for im in x])
        return x.astype(np.float32), np.asarray(self.targets[idx])

    def read_rows(self) -> np.ndarray:
        """Rows in the order the batches of this epoch yield them (each batch sorted, see ``__getitem__``).

        Returns:
            ``(len(indices),)`` ``int64`` rows: ``targets[read_rows()]`` lines up with the
            concatenated predictions of batches ``0 .. len(self) - 1``.
        """
        chunks = [np.sort(self._order[i * self.batch_size:(i + 1) * self.batch_size]) for i in range(len(self))]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int64)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.rng.shuffle(self._order)


def predict_rows(model, crops: np.ndarray, rows: Sequence[int], batch_size: int = 128) -> np.ndarray:
    """Predictions of ``model`` for ``crops[rows]``, in the order of ``rows`` (any order, unsorted too).

    Args:
        model: Keras model taking ``float32`` ``(B, S, S, C)`` crops in 0..255.
        crops: ``(N, S, S, C)`` ``uint8`` array (a memory map is read in sorted batches).
        rows: rows to predict.
        batch_size: photos per forward pass.

    Returns:
        ``(len(rows), ...)`` model outputs; row ``j`` belongs to ``crops[rows[j]]``.
    """
    rows = np.asarray(rows, np.int64)
    seq = CropBatches(crops, np.zeros(len(crops), np.uint8), rows, batch_size)
    outs = [np.asarray(model.predict_on_batch(seq[i][0])) for i in range(len(seq))] if len(rows) else []
    if not outs:
        return np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)
    read = np.concatenate(outs)
    # Batches come back sorted (sequential reads); put each output back at its row's position.
    pos = np.concatenate([np.argsort(rows[i * seq.batch_size:(i + 1) * seq.batch_size], kind="stable")
                          + i * seq.batch_size for i in range(len(seq))])
    out = np.empty_like(read)
    out[pos] = read
    return out


def images_of(crops: np.ndarray, indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """``float32`` copy of some crops (for predicting on a small evaluation set)."""
    idx = np.arange(len(crops)) if indices is None else np.asarray(indices, np.int64)
    return np.asarray(crops[idx]).astype(np.float32)
