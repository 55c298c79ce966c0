"""Raw camera buffers <-> BGR arrays, without ROS or cv_bridge.

The functions here mirror what ``cv_bridge`` does for the encodings USB cameras send
(``sensor_msgs/image_encodings``), and validate every field first so a malformed frame gives one
clear :class:`~face_tracker_core.errors.ImageDecodeError` instead of a numpy crash.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from .errors import ImageDecodeError

# (encodings of one pixel layout, channels, bytes per channel, conversion code to BGR or None)
_LAYOUTS = (
    (("bgr8", "8UC3"), 3, 1, None),
    (("rgb8",), 3, 1, cv2.COLOR_RGB2BGR),
    (("bgra8", "8UC4"), 4, 1, cv2.COLOR_BGRA2BGR),
    (("rgba8",), 4, 1, cv2.COLOR_RGBA2BGR),
    (("mono8", "8UC1"), 1, 1, cv2.COLOR_GRAY2BGR),
    (("mono16", "16UC1"), 1, 2, cv2.COLOR_GRAY2BGR),
    # ROS "yuv422" is UYVY byte order; "yuv422_yuy2" is YUYV (what most V4L2 webcams send).
    (("yuv422", "uyvy"), 2, 1, cv2.COLOR_YUV2BGR_UYVY),
    (("yuv422_yuy2", "yuyv"), 2, 1, cv2.COLOR_YUV2BGR_YUY2),
)
# encoding -> (channels, bytes per channel, conversion code to BGR or None)
_ENCODINGS = {name: tuple(layout) for names, *layout in _LAYOUTS for name in names}

SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(_ENCODINGS)
_DEPTH_LIKE = ("32FC1", "16SC1", "32SC1", "64FC1", "32FC3", "32FC2")


def check_raw(data_len: int, height: int, width: int, encoding: str, step: int) -> Tuple[int, int, int]:
    """Validate ``sensor_msgs/Image`` fields without decoding.

    Returns:
        ``(channels, bytes_per_channel, row_bytes)``.

    Raises:
        ImageDecodeError: zero size, unknown/depth encoding, ``step`` too small, short data.
    """
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({width}x{height})")
    if encoding in _DEPTH_LIKE:
        raise ImageDecodeError(
            f"encoding '{encoding}' is a depth/float image, not a camera image; "
            "remap the tracker's 'image' topic to a colour or mono camera stream")
    if encoding not in _ENCODINGS:
        raise ImageDecodeError(
            f"unsupported encoding '{encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    channels, depth, _code = _ENCODINGS[encoding]
    if channels == 2 and width % 2:
        raise ImageDecodeError(f"'{encoding}' (YUV 4:2:2) needs an even width, got {width}")
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} too small for {width} px of '{encoding}' (needs >= {row_bytes})")
    if data_len < step * (height - 1) + row_bytes:
        raise ImageDecodeError(
            f"data has {data_len} bytes, needs {step * height} for {height} rows of step {step}")
    return channels, depth, row_bytes


def decode_raw(
    data: bytes | bytearray | memoryview | np.ndarray,
    height: int,
    width: int,
    encoding: str,
    step: int,
    is_bigendian: bool = False,
) -> np.ndarray:
    """Turn a raw image buffer (``sensor_msgs/Image`` fields) into a BGR ``uint8`` array.

    Args:
        data: the pixel bytes, row-major, ``step`` bytes per row (rows may be padded).
        height: rows, pixels.
        width: columns, pixels.
        encoding: one of :data:`SUPPORTED_ENCODINGS`.
        step: bytes per row, ``>= width * channels * bytes_per_channel``.
        is_bigendian: byte order of 16-bit encodings.

    Returns:
        ``(height, width, 3)`` ``uint8`` BGR array (a copy, safe to keep).

    Raises:
        ImageDecodeError: zero size, unknown/depth encoding, ``step`` too small, short data.
    """
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.view(np.uint8).ravel()
    channels, depth, row_bytes = check_raw(buf.size, height, width, encoding, step)
    code = _ENCODINGS[encoding][2]
    # Strided view: rows may carry padding beyond row_bytes.
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    if depth == 2:
        dtype = np.dtype(">u2" if is_bigendian else "<u2")
        img16 = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
        img = (img16 >> 8).astype(np.uint8)
    elif channels == 1:
        img = rows.reshape(height, width)
    else:
        img = rows.reshape(height, width, channels)
    if code is None:
        return np.ascontiguousarray(img).copy()
    try:
        return cv2.cvtColor(np.ascontiguousarray(img), code)
    except cv2.error as exc:  # should not happen after check_raw; never let OpenCV crash a caller
        raise ImageDecodeError(f"cannot convert '{encoding}' {width}x{height}: {exc}") from exc


def encode_bgr(bgr: np.ndarray, encoding: str = "bgr8") -> Tuple[bytes, int]:
    """Encode a BGR ``uint8`` array for a ``sensor_msgs/Image``.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` array.
        encoding: ``bgr8``, ``rgb8``, ``mono8``, ``bgra8``, ``rgba8``, ``yuv422`` or ``yuv422_yuy2``.

    Returns:
        ``(data, step)``: the bytes and bytes per row.
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ImageDecodeError(f"expected HxWx3 uint8 BGR, got {bgr.shape} {bgr.dtype}")
    h, w = bgr.shape[:2]
    if encoding in ("bgr8", "8UC3"):
        out = bgr
    elif encoding == "rgb8":
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    elif encoding in ("mono8", "8UC1"):
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    elif encoding == "bgra8":
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    elif encoding == "rgba8":
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    elif encoding in ("yuv422", "uyvy", "yuv422_yuy2", "yuyv"):
        if w % 2:
            raise ImageDecodeError("YUV 4:2:2 needs an even width")
        # BT.601 "video range", the convention of OpenCV's YUV2BGR_UYVY/YUY2 and of V4L2 cameras.
        f = bgr.astype(np.float32)
        b_, g_, r_ = f[..., 0], f[..., 1], f[..., 2]
        y = np.clip(16 + (65.481 * r_ + 128.553 * g_ + 24.966 * b_) / 255, 0, 255).round().astype(np.uint8)
        u = 128 + (-37.797 * r_ - 74.203 * g_ + 112.0 * b_) / 255
        v = 128 + (112.0 * r_ - 93.786 * g_ - 18.214 * b_) / 255
        # 4:2:2 shares one U and one V between two horizontal pixels (average them).
        u2 = np.clip((u[:, 0::2] + u[:, 1::2]) / 2, 0, 255).round().astype(np.uint8)
        v2 = np.clip((v[:, 0::2] + v[:, 1::2]) / 2, 0, 255).round().astype(np.uint8)
        out = np.empty((h, w * 2), np.uint8)
        if encoding in ("yuv422", "uyvy"):
            out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = u2, y[:, 0::2], v2, y[:, 1::2]
        else:
            out[:, 0::4], out[:, 1::4], out[:, 2::4], out[:, 3::4] = y[:, 0::2], u2, y[:, 1::2], v2
    else:
        raise ImageDecodeError(f"cannot encode to '{encoding}'")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.strides[0]


def read_image(path: str) -> np.ndarray:
    """Read any image OpenCV can decode (jpg, png, jfif, bmp, webp...) as BGR ``uint8``.

    Raises:
        ImageDecodeError: missing or undecodable file (the path is in the message).
    """
    data = np.fromfile(path, dtype=np.uint8) if _exists(path) else None
    if data is None:
        raise ImageDecodeError(f"{path}: no such file")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise ImageDecodeError(f"{path}: not a readable image (corrupt or unsupported format)")
    return img


def _exists(path: str) -> bool:
    import os

    return os.path.isfile(path)


def letterbox(bgr: np.ndarray, size: Tuple[int, int], fill: int = 0) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to ``size``.

    Args:
        bgr: ``(H, W, C)`` image.
        size: ``(out_w, out_h)`` pixels.

    Returns:
        ``(image, scale, (pad_x, pad_y))``: map a box back with ``(x - pad_x) / scale``.
    """
    out_w, out_h = size
    h, w = bgr.shape[:2]
    scale = min(out_w / w, out_h / h)
    nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    pad_x, pad_y = (out_w - nw) // 2, (out_h - nh) // 2
    out = np.full((out_h, out_w) + bgr.shape[2:], fill, dtype=bgr.dtype)
    out[pad_y:pad_y + nh, pad_x:pad_x + nw] = resized
    return out, scale, (pad_x, pad_y)
