"""Annotated images: boxes, scores, track ids, identities and attributes drawn on a frame."""

from __future__ import annotations

import hashlib
from typing import Iterable, Sequence, Tuple, Union

import cv2
import numpy as np

from .types import Detection, Track


def _colour(key: str) -> Tuple[int, int, int]:
    # Stable colour per track id so a person keeps their colour across frames.
    d = hashlib.md5(key.encode()).digest()
    return (64 + d[0] % 192, 64 + d[1] % 192, 64 + d[2] % 192)


def draw(bgr: np.ndarray, items: Iterable[Union[Detection, Track]], copy: bool = True,
         max_attributes: int = 3) -> np.ndarray:
    """Draw detections or tracks on a BGR frame.

    Args:
        bgr: ``(H, W, 3)`` ``uint8`` frame.
        items: detections or tracks in pixels of ``bgr``.
        copy: draw on a copy (default) rather than in place.
        max_attributes: most attributes to list under a track's box.

    Returns:
        The annotated frame.
    """
    out = bgr.copy() if copy else bgr
    thick = max(1, int(round(min(out.shape[:2]) / 320)))
    for it in items:
        b = it.box
        p1, p2 = (int(round(b.x1)), int(round(b.y1))), (int(round(b.x2)), int(round(b.y2)))
        if isinstance(it, Track):
            colour = _colour(it.track_id)
            text = f"#{it.track_id} {it.score:.2f}"
            if it.identity:
                text += f" {it.identity}"
        else:
            colour = (0, 255, 0)
            text = f"{it.label} {it.score:.2f}"
        cv2.rectangle(out, p1, p2, colour, thick + 1)
        _label(out, text, (p1[0], p1[1]), colour, thick)
        lms = getattr(it, "landmarks", None)
        if lms:
            for (x, y) in lms:
                cv2.circle(out, (int(round(x)), int(round(y))), thick + 1, (0, 255, 255), -1)
        attrs: Sequence[Tuple[str, float]] = getattr(it, "attributes", ()) or ()
        for i, (name, p) in enumerate(list(attrs)[:max_attributes]):
            _label(out, f"{name} {p:.2f}", (p1[0], p2[1] + (i + 1) * (14 * thick + 4)), colour, thick)
    return out


def _label(img: np.ndarray, text: str, org: Tuple[int, int], colour, thick: int) -> None:
    scale = 0.45 * thick
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org[0], max(th + base, org[1])
    cv2.rectangle(img, (x, y - th - base), (x + tw, y), colour, -1)
    cv2.putText(img, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
