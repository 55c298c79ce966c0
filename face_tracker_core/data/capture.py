"""Saving camera frames for a training set: unique sortable names, atomic writes, resume.

Used by ``face-tracker capture`` (local camera / video file) and the ROS ``face_capture_node``
(any image topic), so frames captured on the robot and at the desk look the same.

File names are ``<prefix>_<session>_<seq>.jpg``, e.g. ``face_20250131-142501_000042.jpg``:

* ``session`` is the UTC start time of the capture run (``YYYYmmdd-HHMMSS``); dataset import uses
  it to group near-identical consecutive frames of one run into one split source;
* ``seq`` continues from the highest number already in the folder, so a second run in the same
  folder never reuses a name and sorting by name is capture order.

Each file is written to a hidden temp file and hard-linked into place, so no reader ever sees half
a JPEG and nothing is ever overwritten. Disk-full and permission errors become a
:class:`CaptureError` with a message saying what to do.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import re
import tempfile
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import FaceTrackerError
from ..types import Detection
from .labelme import REVIEW_FLAG, atomic_write_bytes, labelme_document, now_iso

log = logging.getLogger(__name__)

#: ``prefix_YYYYmmdd-HHMMSS_seq`` (stem of a captured frame).
CAPTURE_NAME_RE = re.compile(r"^(?P<prefix>.+?)_(?P<session>\d{8}-\d{6})_(?P<seq>\d{6,})$")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".jfif", ".webp", ".tif", ".tiff")


class CaptureError(FaceTrackerError, OSError):
    """The capture folder cannot take more frames (not writable, disk full, max frames reached)."""


def parse_capture_name(path: str) -> Optional[Tuple[str, str, int]]:
    """``(prefix, session, seq)`` of a captured frame's file name, or ``None`` for other names."""
    m = CAPTURE_NAME_RE.match(os.path.splitext(os.path.basename(path))[0])
    if not m:
        return None
    return m.group("prefix"), m.group("session"), int(m.group("seq"))


def session_id(now: Optional[float] = None) -> str:
    """UTC ``YYYYmmdd-HHMMSS`` for ``now`` (seconds since the epoch; default: the current time)."""
    t = _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.timezone.utc)
    return t.strftime("%Y%m%d-%H%M%S")


def _explain(exc: OSError, folder: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{folder}: disk full ({exc.strerror}); capture stopped, free space or choose another folder"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"{folder}: folder is not writable ({exc.strerror}); capture stopped, "
                "fix permissions or choose another folder")
    return f"{folder}: cannot write ({exc}); capture stopped"


class CaptureWriter:
    """Writes frames (and optional LabelMe auto-labels) into one folder.

    Args:
        out_dir: target folder; created if missing; an existing folder is resumed.
        prefix: file name prefix (letters, digits, ``-``; no ``_`` so names parse unambiguously).
        jpeg_quality: 1..100.
        max_frames: stop after this many frames saved by this writer (0 = no limit).
        write_labels: also write ``<name>.json`` (LabelMe) with the detections, flagged
            ``needs_review`` so people check them in LabelMe before training.
        image_format: ``"jpg"`` or ``"png"``.

    Raises:
        CaptureError: the folder cannot be created or written (checked up front with a probe file).
    """

    def __init__(self, out_dir: str, prefix: str = "face", jpeg_quality: int = 95, max_frames: int = 0,
                 write_labels: bool = False, image_format: str = "jpg") -> None:
        if not prefix or "_" in prefix or "/" in prefix or os.sep in prefix:
            raise ValueError(f"capture prefix '{prefix}' must be non-empty and contain no '_' or '/'")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality {jpeg_quality} outside 1..100")
        if image_format not in ("jpg", "png"):
            raise ValueError(f"image_format '{image_format}' must be 'jpg' or 'png'")
        self.out_dir = os.path.abspath(os.path.expanduser(out_dir))
        self.prefix = prefix
        self.jpeg_quality = int(jpeg_quality)
        self.max_frames = int(max_frames)
        self.write_labels = bool(write_labels)
        self.image_format = image_format
        self.session = session_id()
        self.saved = 0
        self.labels_written = 0
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            probe_fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.out_dir)
            os.close(probe_fd)
            os.unlink(probe)
        except OSError as exc:
            raise CaptureError(_explain(exc, self.out_dir)) from exc
        self.existing = self._scan()
        self.next_seq = self.existing[1] + 1
        if self.existing[0]:
            log.info("capture: resuming %s (%d earlier frames, next number %06d)",
                     self.out_dir, self.existing[0], self.next_seq)

    def _scan(self) -> Tuple[int, int]:
        count, top = 0, 0
        for name in os.listdir(self.out_dir):
            if name.startswith("."):
                continue
            parsed = parse_capture_name(name)
            if parsed and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                count += 1
                top = max(top, parsed[2])
        return count, top

    @property
    def full(self) -> bool:
        """True once ``max_frames`` frames were saved by this writer."""
        return bool(self.max_frames) and self.saved >= self.max_frames

    def _encode(self, bgr: np.ndarray) -> bytes:
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            raise ValueError(f"expected HxWx3 uint8 BGR, got {bgr.shape} {bgr.dtype}")
        if self.image_format == "jpg":
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        else:
            ok, buf = cv2.imencode(".png", bgr)
        if not ok:
            raise ValueError("image encoding failed")
        return buf.tobytes()

    def save(self, bgr: np.ndarray, detections: Optional[Sequence[Detection]] = None,
             stamp: Optional[float] = None, frame_id: str = "", detector: str = "") -> str:
        """Save one frame (and its LabelMe auto-labels when ``write_labels``).

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` frame.
            detections: faces found in ``bgr`` (pixels), written when ``write_labels``.
            stamp: capture time, seconds (e.g. the ROS header stamp), stored in the JSON.
            frame_id: camera frame id, stored in the JSON.
            detector: detector description stored in the JSON.

        Returns:
            Path of the image written.

        Raises:
            CaptureError: max frames reached, folder not writable, disk full.
        """
        if self.full:
            raise CaptureError(f"{self.out_dir}: max_frames={self.max_frames} reached")
        data = self._encode(bgr)
        while True:
            stem = f"{self.prefix}_{self.session}_{self.next_seq:06d}"
            path = os.path.join(self.out_dir, f"{stem}.{self.image_format}")
            try:
                atomic_write_bytes(path, data, overwrite=False)
                break
            except FileExistsError:
                # Another writer (or a file copied in) took this number: take the next one.
                self.next_seq += 1
            except OSError as exc:
                raise CaptureError(_explain(exc, self.out_dir)) from exc
        self.next_seq += 1
        self.saved += 1
        if self.write_labels:
            dets = list(detections or [])
            h, w = bgr.shape[:2]
            extra = {"auto_label": {"detector": detector, "created": now_iso(), "count": len(dets)}}
            if stamp is not None:
                extra["stamp"] = float(stamp)
            if frame_id:
                extra["frame_id"] = frame_id
            doc = labelme_document(path, os.path.splitext(path)[0] + ".json", w, h,
                                   [d.box.clip(w, h) for d in dets], [d.label for d in dets],
                                   scores=[d.score for d in dets], flags={REVIEW_FLAG: True},
                                   extra=extra, description=f"auto {detector}".strip())
            try:
                atomic_write_bytes(os.path.splitext(path)[0] + ".json",
                                   (json.dumps(doc, indent=1) + "\n").encode("utf-8"), overwrite=False)
                self.labels_written += 1
            except FileExistsError:
                log.warning("capture: %s.json already exists, labels not written", stem)
            except OSError as exc:
                raise CaptureError(_explain(exc, self.out_dir)) from exc
        if self.saved == 1 or self.saved % 50 == 0 or self.full:
            total = self.existing[0] + self.saved
            log.info("capture: %d frames saved this run (%d in %s)%s", self.saved, total, self.out_dir,
                     f", max_frames={self.max_frames} reached" if self.full else "")
        return path


class IntervalGate:
    """Lets an event through at most once every ``min_interval`` seconds (clock of the caller).

    Args:
        min_interval: seconds between accepted events (0 accepts everything).
    """

    def __init__(self, min_interval: float) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must be >= 0")
        self.min_interval = float(min_interval)
        self.last: Optional[float] = None

    def ready(self, now: float) -> bool:
        """True when at least ``min_interval`` passed since the last :meth:`mark` (or none yet)."""
        return self.last is None or now - self.last >= self.min_interval or now < self.last

    def mark(self, now: float) -> None:
        self.last = now


def list_captured(folder: str) -> List[str]:
    """Captured frame paths in ``folder``, sorted by name (= capture order)."""
    out = [os.path.join(folder, n) for n in os.listdir(folder)
           if not n.startswith(".") and parse_capture_name(n) and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS]
    return sorted(out)

