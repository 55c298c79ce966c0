"""Raw image codec: every supported encoding round-trips, every malformed buffer is refused clearly."""

import numpy as np
import pytest

from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.imaging import decode_raw, encode_bgr, letterbox
from face_tracker_core.sources import embedded_photo

ENCODINGS = ["bgr8", "rgb8", "mono8", "rgba8", "bgra8", "yuv422", "yuv422_yuy2"]


@pytest.fixture(scope="module")
def photo():
    return embedded_photo()[100:340, 100:420].copy()  # 320x240 real photo


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip(photo, encoding):
    data, step = encode_bgr(photo, encoding)
    out = decode_raw(data, photo.shape[0], photo.shape[1], encoding, step)
    assert out.shape == photo.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - photo.astype(int))
    if encoding == "mono8":
        gray = photo.mean(axis=2)
        assert np.abs(out[..., 0] - gray).mean() < 3
        assert (out[..., 0] == out[..., 1]).all()
    elif encoding.startswith("yuv"):
        assert err.mean() < 2.0  # chroma is shared by two pixels
        assert abs((out.astype(int) - photo).mean()) < 0.5  # no colour cast
    else:
        assert err.max() == 0


def test_channel_order_is_respected(photo):
    data, step = encode_bgr(photo, "rgb8")
    raw = np.frombuffer(data, np.uint8).reshape(photo.shape)
    assert (raw[..., 0] == photo[..., 2]).all()  # R first on the wire


def test_padded_rows(photo):
    h, w = photo.shape[:2]
    step = w * 3 + 17
    buf = np.zeros((h, step), np.uint8)
    buf[:, : w * 3] = photo.reshape(h, -1)
    out = decode_raw(buf.tobytes(), h, w, "bgr8", step)
    assert (out == photo).all()


def test_mono16_big_endian():
    img = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    out = decode_raw(img.astype(">u2").tobytes(), 3, 4, "mono16", 8, is_bigendian=True)
    assert (out[..., 0] == (img >> 8)).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(height=0, width=4, encoding="bgr8", step=12), "empty"),
    (dict(height=2, width=4, encoding="bgr8", step=8), "step 8 too small"),
    (dict(height=2, width=4, encoding="xyz16", step=12), "unsupported encoding 'xyz16'"),
    (dict(height=2, width=4, encoding="32FC1", step=16), "depth/float"),
    (dict(height=5, width=4, encoding="bgr8", step=12), "needs 60"),
])
def test_bad_buffers_are_refused(kwargs, message):
    with pytest.raises(ImageDecodeError, match=message):
        decode_raw(bytes(24), **kwargs)


def test_letterbox_maps_back():
    img = np.zeros((100, 200, 3), np.uint8)
    out, scale, (px, py) = letterbox(img, (64, 64))
    assert out.shape == (64, 64, 3)
    assert scale == pytest.approx(0.32) and px == 0 and py == 16
