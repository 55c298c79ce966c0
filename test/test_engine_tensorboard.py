"""The dependency-free TensorBoard writer: valid TFRecord framing, scalars laid out like Keras'.

The venv has no ``tensorboard`` package, so every trainer relies on this writer for its logs; the
events are read back here with the TFRecord format's own checks (lengths and masked CRC32C).
"""

from __future__ import annotations

import glob
import os
import struct

import numpy as np

from face_tracker_core.engine import tensorboard as tbwriter


def read_records(path):
    """Payloads of a TFRecord file; fails on a bad length or CRC."""
    out = []
    with open(path, "rb") as fh:
        data = fh.read()
    i = 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == tbwriter._masked_crc(header)
        payload = data[i + 12:i + 12 + n]
        assert len(payload) == n
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == tbwriter._masked_crc(payload)
        out.append(payload)
        i += 16 + n
    return out


def test_crc32c_matches_the_standard_check_value():
    assert tbwriter._crc32c(b"123456789") == 0xE3069283   # CRC-32C (Castagnoli) check value


def test_scalars_and_images_are_valid_records(tmp_path):
    w = tbwriter.EventWriter(str(tmp_path))
    w.scalar("loss", 0.5, 1)
    w.image("grid", np.zeros((4, 6, 3), np.uint8), 1)
    w.close()
    recs = read_records(w.path)
    assert len(recs) == 3 and b"brain.Event:2" in recs[0]
    assert b"loss" in recs[1] and struct.pack("<f", 0.5) in recs[1]
    assert b"grid" in recs[2] and b"\x89PNG" in recs[2]


def test_keras_epoch_logger_writes_train_and_validation_scalars(tmp_path):
    import keras

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = (x.sum(axis=1, keepdims=True) > 0).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile("sgd", "binary_crossentropy")
    model.fit(x, y, validation_split=0.25, epochs=3, verbose=0,
              callbacks=[tbwriter.epoch_logger(str(tmp_path / "tb"))])
    for sub in ("train", "validation"):
        files = glob.glob(os.path.join(tmp_path, "tb", sub, "events.out.tfevents.*"))
        assert len(files) == 1, sub
        recs = read_records(files[0])
        assert sum(b"epoch_loss" in r for r in recs) == 3, sub   # one point per epoch
        assert not any(b"val_" in r for r in recs)                # validation keeps Keras' tag names
