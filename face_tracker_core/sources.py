"""Frame sources: an embedded synthetic camera, video files and V4L2/USB cameras.

Used by the ROS video source node, the capture CLI and the demo, so every entry point reads
frames the same way.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Iterator, Optional, Tuple

import cv2
import numpy as np

from .errors import FaceTrackerError

log = logging.getLogger(__name__)


class FrameSource:
    """Iterable of BGR ``uint8`` frames. ``read()`` returns ``None`` at the end of the stream."""

    width: int
    height: int
    fps: float

    def read(self) -> Optional[np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def embedded_photo() -> np.ndarray:
    """The public-domain NASA astronaut portrait (Eileen Collins) shipped with scikit-image, BGR."""
    from skimage import data  # bundled with the package: no download

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


class SyntheticCamera(FrameSource):
    """A moving, zooming virtual camera over a still photo with a face.

    The view pans and zooms smoothly (periods of a few seconds) so detectors and trackers see a
    face that moves and changes size, like a person in front of a robot, while it always stays
    fully in view.

    Args:
        width: output width, pixels.
        height: output height, pixels.
        fps: nominal frame rate (sets the motion per frame).
        num_frames: frames before ``read()`` returns ``None`` (0 = endless).
        photo: BGR image to film; defaults to :func:`embedded_photo`.
        face_box: ``(x1, y1, x2, y2)`` of the face in ``photo`` kept inside every view.
    """

    # Face of the astronaut photo (512x512), pixels: kept inside the view at all times.
    ASTRONAUT_FACE = (165.0, 50.0, 260.0, 165.0)

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0, num_frames: int = 0,
                 photo: Optional[np.ndarray] = None,
                 face_box: Optional[Tuple[float, float, float, float]] = None) -> None:
        self.photo = embedded_photo() if photo is None else photo
        self.face_box = face_box or self.ASTRONAUT_FACE
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.num_frames = int(num_frames)
        self.index = 0

    def view(self, t: float) -> Tuple[float, float, float, float]:
        """Crop window ``(x1, y1, x2, y2)`` in photo pixels at time ``t`` seconds."""
        ph, pw = self.photo.shape[:2]
        aspect = self.width / self.height
        fx1, fy1, fx2, fy2 = self.face_box
        fw, fh = fx2 - fx1, fy2 - fy1
        # Zoom between "face fills ~60 % of the height" and the widest view that fits the photo.
        max_h = min(ph, pw / aspect)
        min_h = min(max_h, max(fh / 0.6, fw / 0.6 / aspect))
        z = 0.5 + 0.5 * math.sin(2 * math.pi * t / 7.0)
        vh = min_h + (max_h - min_h) * z
        vw = vh * aspect
        # Pan: the face wanders inside the view but never leaves it.
        cx0, cy0 = (fx1 + fx2) / 2, (fy1 + fy2) / 2
        slack_x, slack_y = max(0.0, (vw - fw) / 2 * 0.8), max(0.0, (vh - fh) / 2 * 0.8)
        cx = cx0 + slack_x * math.sin(2 * math.pi * t / 5.0)
        cy = cy0 + slack_y * math.sin(2 * math.pi * t / 6.3 + 1.0)
        x1 = min(max(cx - vw / 2, 0.0), pw - vw)
        y1 = min(max(cy - vh / 2, 0.0), ph - vh)
        return (x1, y1, x1 + vw, y1 + vh)

    def face_in_frame(self, t: float) -> Tuple[float, float, float, float]:
        """Ground-truth face box in output pixels at time ``t`` (for tests and benchmarks)."""
        x1, y1, x2, y2 = self.view(t)
        sx, sy = self.width / (x2 - x1), self.height / (y2 - y1)
        fx1, fy1, fx2, fy2 = self.face_box
        return ((fx1 - x1) * sx, (fy1 - y1) * sy, (fx2 - x1) * sx, (fy2 - y1) * sy)

    def render(self, t: float) -> np.ndarray:
        x1, y1, x2, y2 = self.view(t)
        sx, sy = self.width / (x2 - x1), self.height / (y2 - y1)
        m = np.array([[sx, 0, -x1 * sx], [0, sy, -y1 * sy]], dtype=np.float64)
        return cv2.warpAffine(self.photo, m, (self.width, self.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT)

    def read(self) -> Optional[np.ndarray]:
        if self.num_frames and self.index >= self.num_frames:
            return None
        frame = self.render(self.index / self.fps)
        self.index += 1
        return frame


class VideoCaptureSource(FrameSource):
    """A V4L2/USB camera (``/dev/videoN`` or an index) or a video file, through OpenCV.

    Args:
        source: device path, device index (``"0"`` or ``0``) or video file path.
        width: requested capture width (cameras only; 0 keeps the driver's default).
        height: requested capture height.
        fps: requested rate for cameras; for files the file's own rate is reported.
        loop: restart a file at its end instead of ending the stream.

    Raises:
        FaceTrackerError: the device or file cannot be opened or yields no frame.
    """

    def __init__(self, source, width: int = 0, height: int = 0, fps: float = 0.0, loop: bool = False) -> None:
        self.source = source
        src = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
        self.is_file = isinstance(src, str) and os.path.isfile(src)
        if isinstance(src, str) and not self.is_file and not src.startswith("/dev/"):
            raise FaceTrackerError(f"{src}: no such video file or camera device")
        self.loop = loop
        self.cap = cv2.VideoCapture(src)
        if not self.cap.isOpened():
            raise FaceTrackerError(f"{src}: cannot open (not a video OpenCV can read, or device busy/absent)")
        if not self.is_file:
            if width:
                self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                self.cap.set(cv2.CAP_PROP_FPS, fps)
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise FaceTrackerError(f"{src}: opened but no frame could be decoded (corrupt or empty video?)")
        self._pending: Optional[np.ndarray] = first
        self.height, self.width = first.shape[:2]
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0) or (fps or 30.0)

    def read(self) -> Optional[np.ndarray]:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        ok, frame = self.cap.read()
        if not ok and self.is_file and self.loop:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return frame if ok else None

    def close(self) -> None:
        self.cap.release()


def open_source(source: str = "synthetic", width: int = 640, height: int = 480, fps: float = 30.0,
                num_frames: int = 0, loop: bool = False) -> FrameSource:
    """Open ``"synthetic"`` (embedded camera), a device (``/dev/video0`` or ``0``) or a video file."""
    if source in ("", "synthetic", "embedded"):
        return SyntheticCamera(width, height, fps, num_frames)
    return VideoCaptureSource(source, width, height, fps, loop=loop)
