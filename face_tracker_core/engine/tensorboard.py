"""A dependency-free TensorBoard event writer (scalars and PNG images), and a Keras callback on it.

``tf.summary`` and ``keras.callbacks.TensorBoard`` need the ``tensorboard`` package, which our CPU
venv does not have (``tensorflow-cpu`` 2.21 does not pull it in), and the GPU machine the shipped
models train on has no TensorFlow at all; this writer encodes the few protobuf fields TensorBoard
reads (``Event.wall_time/step/summary``, ``Summary.Value.tag``, ``simple_value`` and ``image``) and
frames them as TFRecords, so the same run folder opens in TensorBoard whichever backend trained it.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import Any, Callable, Mapping

import cv2
import numpy as np

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


class EventWriter:
    """Appends TensorBoard events to ``<logdir>/events.out.tfevents.<time>.<host>``.

    Args:
        logdir: folder (created).
    """

    def __init__(self, logdir: str) -> None:
        os.makedirs(logdir, exist_ok=True)
        self.path = os.path.join(logdir, f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                                         f"{os.getpid()}.face_tracker")
        self._f = open(self.path, "ab")
        # First record: the file version, as TensorFlow writes it.
        self._write_event(_field_bytes(3, b"brain.Event:2"), step=0)

    def _write_event(self, body: bytes, step: int) -> None:
        event = struct.pack("<B", 1 << 3 | 1) + struct.pack("<d", time.time()) + _field_varint(2, int(step)) + body
        header = struct.pack("<Q", len(event))
        self._f.write(header + struct.pack("<I", _masked_crc(header)) + event + struct.pack("<I", _masked_crc(event)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """One scalar point."""
        val = _field_bytes(1, tag.encode()) + struct.pack("<B", 2 << 3 | 5) + struct.pack("<f", float(value))
        self._write_event(_field_bytes(5, _field_bytes(1, val)), step)

    def image(self, tag: str, bgr: np.ndarray, step: int) -> None:
        """One ``(H, W, 3)`` ``uint8`` BGR image (stored as PNG)."""
        ok, png = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError("PNG encoding failed")
        h, w = bgr.shape[:2]
        img = _field_varint(1, h) + _field_varint(2, w) + _field_varint(3, 3) + _field_bytes(4, png.tobytes())
        val = _field_bytes(1, tag.encode()) + _field_bytes(4, img)
        self._write_event(_field_bytes(5, _field_bytes(1, val)), step)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def write_epoch_scalars(writer_for: Callable[[str], EventWriter], logs: Mapping[str, Any], epoch: int) -> None:
    """One epoch's logs as ``epoch_<name>`` scalars: ``val_<name>`` in the ``validation`` run, the rest in
    ``train`` (Keras' TensorBoard layout: train and validation of a metric share one chart); values that
    are not numbers are skipped.

    Args:
        writer_for: ``"train"`` / ``"validation"`` -> the writer of that sub-folder.
        logs: metric name -> value.
        epoch: 0-based epoch (the step).
    """
    for key, value in logs.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue  # a non-scalar log entry: nothing to chart
        sub, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
        writer_for(sub).scalar(f"epoch_{name}", value, int(epoch))


def epoch_logger(logdir: str):
    """A ``keras.callbacks.Callback`` writing each epoch's logs as TensorBoard scalars.

    Laid out like ``keras.callbacks.TensorBoard``: ``<logdir>/train`` gets ``epoch_<name>`` for the
    training metrics, ``<logdir>/validation`` the same tags for the ``val_`` ones, so TensorBoard
    draws train and validation of each metric in one chart. Needs no TensorFlow/TensorBoard.

    Args:
        logdir: run's TensorBoard folder (created on first use).
    """
    import keras

    class EpochScalars(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._writers = {}

        def _writer(self, sub: str) -> EventWriter:
            if sub not in self._writers:
                self._writers[sub] = EventWriter(os.path.join(logdir, sub))
            return self._writers[sub]

        def on_epoch_end(self, epoch, logs=None):
            write_epoch_scalars(self._writer, logs or {}, epoch)
            for w in self._writers.values():
                w.flush()

        def on_train_end(self, logs=None):
            for w in self._writers.values():
                w.close()
            self._writers = {}

    return EpochScalars()


def tensorboard_callback(logdir: str):
    """Keras' own ``TensorBoard`` callback when TensorFlow and ``tensorboard`` are installed (graphs,
    histograms), else :func:`epoch_logger` (scalars); either way ``logdir`` opens in TensorBoard."""
    import keras

    try:
        import tensorboard  # noqa: F401  (Keras' callback writes through tf.summary, which needs it)
        import tensorflow  # noqa: F401

        return keras.callbacks.TensorBoard(logdir, update_freq="epoch")
    except ImportError:
        return epoch_logger(logdir)
