"""Where a face is in 3D: pinhole back-projection of a face box, from its size or a depth image.

Framework-free (numpy only). Coordinates follow the camera *optical* frame of REP-103: ``x``
right, ``y`` down, ``z`` forward (along the optical axis), metres. Boxes are pixels of the image
the intrinsics describe.

Two ways to get the distance ``z`` of a face:

* **From its size** (:func:`distance_from_width`): ``z = fx * W / w``, with ``w`` the box width in
  pixels and ``W`` an assumed real width of what the detector's box spans (``faces3d.face_width_m``,
  0.16 m by default). The relative error of ``z`` equals the relative error of ``W`` for this face
  plus the detector's box-width error: adult face widths vary by about +-7 %, children's faces
  are smaller (``z`` over-estimated), a turned face gives a narrower box (``z`` over-estimated
  too), and a detector's boxes need not keep their proportions from large to small faces (the
  README gives measured figures per detector). Expect about +-10 % for adults facing the camera.
* **From an aligned depth image** (:func:`face_depth`): the median of the valid depths in the
  central part of the box (holes, zeros and NaNs ignored); the error is the sensor's.

``x`` and ``y`` follow from the ray through the box centre. The intrinsics are those of the
image the boxes are on (``camera_info.k``); on an unrectified image lens distortion adds an
error that grows towards the image edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .types import BBox, Detection, Track

#: Default assumed width (metres) of what a face detector's box spans on an adult face.
DEFAULT_FACE_WIDTH_M = 0.16


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of an image: focal lengths and principal point in pixels, image size.

    Attributes:
        fx, fy: focal lengths, pixels.
        cx, cy: principal point, pixels.
        width, height: image size the intrinsics refer to, pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> "PinholeCamera":
        """From a row-major 3x3 camera matrix ``K`` (``sensor_msgs/CameraInfo.k``).

        Raises:
            ValueError: a non-positive or non-finite focal length or image size.
        """
        k = [float(v) for v in k]
        if len(k) != 9:
            raise ValueError(f"K needs 9 values, got {len(k)}")
        cam = cls(k[0], k[4], k[2], k[5], int(width), int(height))
        if not (math.isfinite(cam.fx) and math.isfinite(cam.fy) and cam.fx > 0 and cam.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={cam.fx} fy={cam.fy}")
        if cam.width <= 0 or cam.height <= 0:
            raise ValueError(f"image size must be positive, got {cam.width}x{cam.height}")
        return cam

    def scaled_to(self, width: int, height: int) -> "PinholeCamera":
        """The same camera for an image resized to ``width`` x ``height`` (e.g. a binned stream)."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))

    def backproject(self, u: float, v: float, z: float) -> np.ndarray:
        """Point at depth ``z`` (metres) on the ray through pixel ``(u, v)``: ``(3,)`` metres."""
        return np.array([(u - self.cx) * z / self.fx, (v - self.cy) * z / self.fy, z], np.float64)


@dataclass(frozen=True)
class Face3D:
    """One face located in the camera optical frame.

    Attributes:
        track_id: track id (``""`` for an untracked detection).
        position: ``(x, y, z)`` metres, centre of the face box back-projected.
        size: ``(width, height, depth)`` metres of the face box at that distance (depth = width).
        score: detector score.
        source: ``"size"`` (assumed face width) or ``"depth"`` (depth image).
    """

    track_id: str
    position: Tuple[float, float, float]
    size: Tuple[float, float, float]
    score: float
    source: str


def distance_from_width(width_px: float, fx: float, face_width_m: float = DEFAULT_FACE_WIDTH_M) -> float:
    """Distance (metres) of a face whose box is ``width_px`` pixels wide: ``fx * W / w``.

    Raises:
        ValueError: a non-positive width, focal length or face width.
    """
    if width_px <= 0 or fx <= 0 or face_width_m <= 0:
        raise ValueError(f"need positive values, got width_px={width_px} fx={fx} face_width_m={face_width_m}")
    return fx * face_width_m / width_px


def central_box(box: BBox, fraction: float) -> BBox:
    """The box shrunk about its centre to ``fraction`` of its width and height (0 < fraction <= 1)."""
    cx, cy = box.center
    return BBox.from_cxcywh(cx, cy, box.width * fraction, box.height * fraction)


def face_depth(depth_m: np.ndarray, box: BBox, fraction: float = 0.5, min_valid: float = 0.1) -> Optional[float]:
    """Median depth of the central part of a face box, ignoring invalid pixels.

    Args:
        depth_m: ``(H, W)`` depth in metres, aligned with the image of ``box``; ``0``, negative,
            NaN and inf mean "no measurement".
        box: face box in pixels of that image.
        fraction: central part of the box used (width and height fraction): the box edges hold
            background and hair, the centre holds the face.
        min_valid: fewest valid pixels needed, as a fraction of the central part.

    Returns:
        Metres, or ``None`` when too few pixels are valid (or the box is outside the image).
    """
    h, w = depth_m.shape[:2]
    c = central_box(box, fraction).clip(w, h)
    x1, y1 = int(math.floor(c.x1)), int(math.floor(c.y1))
    x2, y2 = max(x1 + 1, int(math.ceil(c.x2))), max(y1 + 1, int(math.ceil(c.y2)))
    patch = np.asarray(depth_m[y1:min(y2, h), x1:min(x2, w)], np.float64)
    if patch.size == 0:
        return None
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size < max(1, min_valid * patch.size):
        return None
    return float(np.median(valid))


def depth_to_metres(depth: np.ndarray, unit_m: float) -> np.ndarray:
    """Raw depth to metres: integer depth times ``unit_m`` (0.001 for millimetres), floats as they are."""
    if np.issubdtype(depth.dtype, np.integer):
        return depth.astype(np.float32) * np.float32(unit_m)
    return depth.astype(np.float32, copy=False)


def locate(items: Iterable[Union[Track, Detection]], camera: PinholeCamera,
           face_width_m: float = DEFAULT_FACE_WIDTH_M, depth_m: Optional[np.ndarray] = None,
           depth_fraction: float = 0.5) -> List[Face3D]:
    """Place each face box in 3D (camera optical frame).

    Args:
        items: tracks or detections, boxes in pixels of the image ``camera`` describes.
        camera: intrinsics of that image.
        face_width_m: assumed real width of a face box (metres) for the size estimate.
        depth_m: optional aligned ``(H, W)`` depth in metres; a face with enough valid depth uses
            it, others fall back to the size estimate.
        depth_fraction: central part of the box used for the depth median.

    Returns:
        One :class:`Face3D` per item with a positive box width, in input order.
    """
    out = []
    for it in items:
        box = it.box
        if box.width <= 0 or box.height <= 0:
            continue
        z, source = None, "size"
        if depth_m is not None:
            z = face_depth(depth_m, box, depth_fraction)
            source = "depth" if z is not None else "size"
        if z is None:
            z = distance_from_width(box.width, camera.fx, face_width_m)
        u, v = box.center
        pos = camera.backproject(u, v, z)
        w_m, h_m = box.width * z / camera.fx, box.height * z / camera.fy
        out.append(Face3D(track_id=str(getattr(it, "track_id", "")), position=tuple(float(p) for p in pos),
                          size=(float(w_m), float(h_m), float(w_m)), score=float(it.score), source=source))
    return out


class PositionSmoother:
    """Exponential smoothing of each track's position, by time constant.

    ``p <- p + a (x - p)`` with ``a = 1 - exp(-dt / tau)``: the same smoothing at any frame rate.
    A track seen for the first time starts at its measurement; :meth:`retain` forgets ended ones.

    Args:
        tau_s: time constant, seconds (0 = no smoothing).
    """

    def __init__(self, tau_s: float = 0.2) -> None:
        if tau_s < 0:
            raise ValueError(f"tau_s must be >= 0, got {tau_s}")
        self.tau_s = float(tau_s)
        self._state: Dict[str, Tuple[float, np.ndarray]] = {}

    def update(self, track_id: str, position: Sequence[float], stamp: float) -> Tuple[float, float, float]:
        """Smoothed position of ``track_id`` after the measurement ``position`` at ``stamp`` (seconds)."""
        x = np.asarray(position, np.float64)
        prev = self._state.get(track_id)
        if prev is not None and self.tau_s > 0:
            dt = max(0.0, stamp - prev[0])
            a = 1.0 - math.exp(-dt / self.tau_s)
            x = prev[1] + a * (x - prev[1])
        self._state[track_id] = (stamp, x)
        return tuple(float(v) for v in x)

    def retain(self, live_ids: Iterable[str]) -> List[str]:
        """Forget every track not in ``live_ids``; returns the forgotten ids (sorted)."""
        live = set(live_ids)
        gone = sorted(k for k in self._state if k not in live)
        for k in gone:
            del self._state[k]
        return gone

    @property
    def ids(self) -> List[str]:
        """Tracks currently remembered (sorted)."""
        return sorted(self._state)
