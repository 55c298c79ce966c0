"""Per-face images and coordinates in the REP-155 (ros4hri) conventions, framework-free.

REP-155 publishes, per tracked face, its region of interest and landmarks in **normalised image
coordinates** (``[0, 1]``, origin at the top-left corner, x to the right, y downwards: pixel
coordinates divided by the image width/height) and fixed-size face images: ``cropped`` (the face
box scaled to fit, centred and zero-padded to ``width`` x ``height``) and ``aligned`` (the same size,
the face warped so that its eyes are level; here with the recognition aligner's 5-point template,
:mod:`face_tracker_core.recognition.align`).

Face ids become topic names (``/humans/faces/<id>/roi``), and a ROS 2 topic-name token cannot start
with a digit, so the tracker's ids (``"1"``, ``"2"``...) get a prefix (:func:`face_id`).
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple

import numpy as np

from .imaging import letterbox
from .types import BBox

#: Landmark slots of ``hri_msgs/FacialLandmarks`` (dlib/OpenPose 68 points + 2 pupils).
N_LANDMARKS = 70

#: dlib's 5-point predictor (see :mod:`face_tracker_core.recognition.align`) -> FacialLandmarks codes:
#: outer/inner corner of the subject's left eye (LEFT_EYE_OUTSIDE 45, LEFT_EYE_INSIDE 42), outer/inner
#: corner of the right eye (RIGHT_EYE_OUTSIDE 36, RIGHT_EYE_INSIDE 39), base of the nose (NOSTRIL_3 33).
DLIB5_CODES = (45, 42, 36, 39, 33)

#: A detector's 5 points (:class:`~face_tracker_core.types.Detection` ``landmarks``: right eye, left
#: eye, nose, right and left mouth corner) -> RIGHT_PUPIL 68, LEFT_PUPIL 69, NOSE 30,
#: MOUTH_OUTER_RIGHT 48, MOUTH_OUTER_LEFT 54.
DETECTOR5_CODES = (68, 69, 30, 48, 54)

_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def check_id_prefix(prefix: str) -> str:
    """``prefix`` if it makes every track id a valid topic-name token, else ``ValueError``.

    A token must start with a letter and hold only letters, digits and single underscores.
    """
    if not _PREFIX.match(prefix or "") or "__" in prefix:
        raise ValueError(f"face id prefix '{prefix}' must start with a letter and hold only letters, digits "
                         "and single underscores (face ids are topic names: /humans/faces/<id>/...)")
    return prefix


def face_id(track_id: str, prefix: str) -> str:
    """The REP-155 face id of a track: ``prefix + track_id`` (e.g. ``"f12"``)."""
    return f"{prefix}{track_id}"


def normalized_roi(box: BBox, width: int, height: int) -> Tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of ``box`` in ``[0, 1]`` image units (clipped to the image).

    Args:
        box: pixel box ``(x1, y1, x2, y2)``.
        width: image width, pixels.
        height: image height, pixels.
    """
    b = box.clip(width, height)
    return (b.x1 / width, b.y1 / height, b.x2 / width, b.y2 / height)


def crop_face(bgr: np.ndarray, box: BBox, size: Tuple[int, int] = (128, 128)) -> np.ndarray:
    """The face in ``box`` scaled to fit ``size``, centred and zero-padded (REP-155 ``cropped``).

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` frame.
        box: face box, pixels (clipped to the frame).
        size: ``(width, height)`` of the output, pixels.

    Returns:
        ``(height, width, 3)`` ``uint8``; all zeros when the box lies outside the frame.
    """
    h, w = bgr.shape[:2]
    b = box.clip(w, h)
    x1, y1, x2, y2 = int(np.floor(b.x1)), int(np.floor(b.y1)), int(np.ceil(b.x2)), int(np.ceil(b.y2))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return np.zeros((size[1], size[0], 3), np.uint8)
    return letterbox(bgr[y1:y2, x1:x2], size)[0]


def align_face_to(bgr: np.ndarray, points5: np.ndarray, size: Tuple[int, int] = (128, 128),
                  padding: float = 0.25) -> np.ndarray:
    """The face with dlib 5-point landmarks ``points5`` aligned (eyes level), fitted into ``size``.

    The aligner's template is square: the aligned square of side ``min(size)`` is centred and
    zero-padded when ``size`` is not square.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` frame.
        points5: ``(5, 2)`` landmark pixels in dlib's 5-point order.
        size: ``(width, height)`` of the output, pixels.
        padding: template padding (:func:`~face_tracker_core.recognition.align.template`).
    """
    from .recognition.align import align_face

    side = int(min(size))
    square = align_face(bgr, np.asarray(points5, np.float64), side, padding)
    if tuple(size) == (side, side):
        return square
    return letterbox(square, size)[0]


def landmark_table(points: Sequence[Tuple[float, float]], codes: Sequence[int], width: int, height: int,
                   confidence: float = 1.0, table: Optional[np.ndarray] = None) -> np.ndarray:
    """Fill ``hri_msgs/FacialLandmarks`` slots with normalised points.

    Args:
        points: pixel ``(x, y)`` per landmark.
        codes: the FacialLandmarks code (slot) of each point (e.g. :data:`DLIB5_CODES`).
        width: image width, pixels.
        height: image height, pixels.
        confidence: ``c`` of the filled slots; slots never filled keep ``c = 0`` (not available).
        table: an existing ``(N_LANDMARKS, 3)`` table to add to (a new one when ``None``).

    Returns:
        ``(N_LANDMARKS, 3)`` float32 rows ``(x, y, c)``, x and y in ``[0, 1]``.
    """
    out = np.zeros((N_LANDMARKS, 3), np.float32) if table is None else table
    for (x, y), code in zip(points, codes):
        out[code] = (min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0), confidence)
    return out
