"""Frozen dataclasses that cross the core/ROS boundary.

All coordinates are in **pixels** of the image they were computed on: x grows to the right,
y grows downwards, boxes are ``(x1, y1, x2, y2)`` with ``x2 > x1`` and ``y2 > y1`` (corner
coordinates, not inclusive pixel indices, so ``width = x2 - x1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple


@dataclass(frozen=True)
class BBox:
    """Axis-aligned box in pixels, ``(x1, y1, x2, y2)`` corner format."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> "BBox":
        """Build from top-left corner and size (pixels)."""
        return cls(float(x), float(y), float(x + w), float(y + h))

    @classmethod
    def from_cxcywh(cls, cx: float, cy: float, w: float, h: float) -> "BBox":
        """Build from centre and size (pixels)."""
        return cls(float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> Tuple[float, float]:
        return ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def as_xyxy(self) -> Tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def clip(self, width: float, height: float) -> "BBox":
        """Clip to an image of ``width`` x ``height`` pixels."""
        return BBox(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )

    def scale(self, sx: float, sy: Optional[float] = None) -> "BBox":
        """Scale coordinates (e.g. to map a box from a resized image back to the original)."""
        sy = sx if sy is None else sy
        return BBox(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def iou(self, other: "BBox") -> float:
        """Intersection over union with ``other`` (0 when either box is empty); see :mod:`.boxes`."""
        from .boxes import iou_matrix

        return float(iou_matrix(self.as_xyxy(), other.as_xyxy())[0, 0])


@dataclass(frozen=True)
class Detection:
    """One face found in one frame.

    Attributes:
        box: face box in pixels of the input frame.
        score: detector confidence in [0, 1].
        label: class name (always ``"face"`` for the shipped detectors).
        landmarks: optional ``((x, y), ...)`` points in pixels (5 for the multi-face detector:
            right eye, left eye, nose, right mouth corner, left mouth corner from the viewer's left).
    """

    box: BBox
    score: float
    label: str = "face"
    landmarks: Optional[Tuple[Tuple[float, float], ...]] = None


@dataclass(frozen=True)
class Track:
    """A face followed across frames.

    Attributes:
        track_id: stable string id (published in ``vision_msgs/Detection2D.id``).
        box: smoothed box in pixels of the latest frame.
        score: score of the last associated detection (0 while coasting on predictions).
        confirmed: True once the track has enough hits to be reported.
        hits: number of frames with an associated detection.
        time_since_update: seconds since the last associated detection (0 when matched now).
        identity: recognised person name, ``"unknown"`` when recognition ran without a match,
            ``None`` when recognition did not run.
        identity_score: similarity in [0, 1] of the identity decision.
        attributes: ``((name, probability), ...)`` face attributes above threshold.
    """

    track_id: str
    box: BBox
    score: float
    label: str = "face"
    confirmed: bool = True
    hits: int = 1
    time_since_update: float = 0.0
    identity: Optional[str] = None
    identity_score: float = 0.0
    attributes: Tuple[Tuple[str, float], ...] = field(default_factory=tuple)
    landmarks: Optional[Tuple[Tuple[float, float], ...]] = None
