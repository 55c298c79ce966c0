"""LabelMe annotation files (one JSON beside each image).

Minimal reader used by the node tests; the data workflow (issue: training data) extends it with
polygons/circles, embedded ``imageData``, a writer and per-file error reports, keeping
:func:`load_labelme` and :class:`LabelMeRecord` as they are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Tuple

from ..errors import DataError
from ..types import BBox


@dataclass(frozen=True)
class LabelMeRecord:
    """One annotated image.

    Attributes:
        json_path: the annotation file.
        image_path: the image, resolved relative to the JSON's folder.
        width: image width from the JSON, pixels.
        height: image height from the JSON, pixels.
        boxes: face boxes in pixels, ``(x1, y1, x2, y2)``.
        labels: the label of each box.
    """

    json_path: str
    image_path: str
    width: int
    height: int
    boxes: Tuple[BBox, ...]
    labels: Tuple[str, ...]


def load_labelme(json_path: str, labels: Tuple[str, ...] = ("face",)) -> LabelMeRecord:
    """Read one LabelMe JSON; keeps rectangle shapes whose label is in ``labels``.

    Raises:
        DataError: unreadable/malformed JSON (the path is in the message).
    """
    try:
        with open(json_path, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{json_path}: cannot read LabelMe JSON ({exc})") from exc
    try:
        image_path = os.path.join(os.path.dirname(json_path), doc["imagePath"])
        width, height = int(doc["imageWidth"]), int(doc["imageHeight"])
        boxes: List[BBox] = []
        names: List[str] = []
        for shape in doc.get("shapes", []):
            if shape.get("label") not in labels:
                continue
            (xa, ya), (xb, yb) = shape["points"][:2]
            boxes.append(BBox(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)))
            names.append(shape["label"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{json_path}: malformed LabelMe JSON ({exc!r})") from exc
    return LabelMeRecord(json_path, image_path, width, height, tuple(boxes), tuple(names))
