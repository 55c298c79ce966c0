"""LabelMe annotation files (one JSON beside each image): reader, validator and writer.

LabelMe (https://github.com/wkentaro/labelme) stores one JSON per image::

    {"version": "5.4.1", "flags": {}, "shapes": [{"label": "face", "shape_type": "rectangle",
      "points": [[x1, y1], [x2, y2]], ...}], "imagePath": "img.jpg", "imageData": null,
     "imageHeight": 480, "imageWidth": 640}

Coordinates are pixels of the image (x right, y down). Every shape that carries an area becomes
an axis-aligned box ``BBox(x1, y1, x2, y2)`` in pixels:

* ``rectangle`` and ``mask``: the corner points, in any order (2 or 4 points);
* ``polygon``: the bounding box of its vertices;
* ``circle``: ``[centre, point on the rim]`` -> the square around the circle.

``point``/``line``/``linestrip``/``points`` shapes carry no area and are ignored with a warning.
Labels are kept when they are in ``labels`` or, with a ``label_map``, renamed (``{"masked_face":
"face"}``); a label mapped to ``None`` or absent from both is ignored.

Two readers:

* :func:`load_labelme` -- the lenient reader the nodes and old code use (unchanged signature);
* :func:`read_labelme` -- the strict one used by dataset import: it also rejects zero-area boxes,
  boxes outside the image (beyond a small tolerance, inside which they are clipped), non-finite
  numbers and a missing image, raising :class:`~face_tracker_core.errors.DataError` with the file
  name and the reason, so a folder import can list every bad file and go on.

:func:`write_labelme` writes a file LabelMe opens (atomically, never replacing a file unless
asked), e.g. auto-labels flagged for review.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import math
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import DataError
from ..types import BBox

#: LabelMe format version written by :func:`write_labelme`.
LABELME_VERSION = "5.4.1"
#: Top-level flag written on auto-labelled files; LabelMe shows it as a tick box to clear.
REVIEW_FLAG = "needs_review"
_AREA_SHAPES = ("rectangle", "polygon", "circle", "mask")
_NO_AREA_SHAPES = ("point", "points", "line", "linestrip")


@dataclass(frozen=True)
class LabelMeRecord:
    """One annotated image.

    Attributes:
        json_path: the annotation file.
        image_path: the image, resolved relative to the JSON's folder.
        width: image width from the JSON, pixels.
        height: image height from the JSON, pixels.
        boxes: face boxes in pixels, ``(x1, y1, x2, y2)``.
        labels: the label of each box (after ``label_map``).
        has_image_data: the JSON embeds the image (base64 ``imageData``); read it with
            :func:`labelme_image_bytes` when ``image_path`` does not exist.
        extra: top-level keys that are not LabelMe's own (e.g. ``source_id`` written by
            augmentation, ``stamp`` written by capture), and ``flags``.
    """

    json_path: str
    image_path: str
    width: int
    height: int
    boxes: Tuple[BBox, ...]
    labels: Tuple[str, ...]
    has_image_data: bool = False
    extra: Optional[Mapping[str, Any]] = None


def _read_json(json_path: str) -> Dict[str, Any]:
    try:
        with open(json_path, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{json_path}: malformed JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{json_path}: cannot read LabelMe JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise DataError(f"{json_path}: not a LabelMe file (top level is {type(doc).__name__}, expected an object)")
    return doc


def _map_label(label: Any, labels: Sequence[str], label_map: Optional[Mapping[str, Optional[str]]]) -> Optional[str]:
    if not isinstance(label, str):
        return None
    if label_map is not None and label in label_map:
        return label_map[label]
    return label if label in labels else None


def shape_to_box(shape: Mapping[str, Any]) -> Optional[BBox]:
    """Reduce one LabelMe shape to its bounding box (pixels); ``None`` for shapes without area.

    Raises:
        ValueError/TypeError/KeyError: malformed points (the caller adds the file name).
    """
    kind = shape.get("shape_type") or "polygon"  # LabelMe < 3 had no shape_type: polygons
    pts = [(float(p[0]), float(p[1])) for p in shape["points"]]
    if kind in _NO_AREA_SHAPES:
        return None
    if kind not in _AREA_SHAPES:
        raise ValueError(f"unknown shape_type '{kind}'")
    if not pts:
        raise ValueError(f"{kind} without points")
    if any(not (math.isfinite(x) and math.isfinite(y)) for x, y in pts):
        raise ValueError(f"{kind} has a non-finite coordinate {pts}")
    if kind == "circle":
        if len(pts) < 2:
            raise ValueError("circle needs [centre, rim point]")
        (cx, cy), (rx, ry) = pts[:2]
        r = math.hypot(rx - cx, ry - cy)
        return BBox(cx - r, cy - r, cx + r, cy + r)
    if kind in ("rectangle", "mask") and len(pts) < 2:
        raise ValueError(f"{kind} needs 2 corner points, has {len(pts)}")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return BBox(min(xs), min(ys), max(xs), max(ys))


def _image_path(json_path: str, doc: Mapping[str, Any]) -> str:
    rel = doc.get("imagePath")
    if not isinstance(rel, str) or not rel:
        # LabelMe allows a missing imagePath when imageData is embedded: name it after the JSON.
        return os.path.splitext(json_path)[0] + ".jpg"
    # Windows-made files use backslashes.
    if "\\" in rel and not os.path.exists(os.path.join(os.path.dirname(json_path), rel)):
        rel = rel.replace("\\", "/")
    return os.path.join(os.path.dirname(json_path), rel)


def _extra(doc: Mapping[str, Any]) -> Dict[str, Any]:
    own = {"version", "shapes", "imagePath", "imageData", "imageHeight", "imageWidth"}
    return {k: v for k, v in doc.items() if k not in own}


def load_labelme(json_path: str, labels: Tuple[str, ...] = ("face",),
                 label_map: Optional[Mapping[str, Optional[str]]] = None) -> LabelMeRecord:
    """Read one LabelMe JSON leniently: boxes of the shapes whose label is wanted.

    No geometry checks (see :func:`read_labelme` for those).

    Args:
        json_path: the ``.json`` file.
        labels: labels kept as they are.
        label_map: optional ``{label: new_label or None}`` applied first.

    Raises:
        DataError: unreadable/malformed JSON (the path is in the message).
    """
    doc = _read_json(json_path)
    try:
        width, height = int(doc["imageWidth"]), int(doc["imageHeight"])
        boxes: List[BBox] = []
        names: List[str] = []
        for shape in doc.get("shapes") or []:
            name = _map_label(shape.get("label"), labels, label_map)
            if name is None:
                continue
            box = shape_to_box(shape)
            if box is None:
                continue
            boxes.append(box)
            names.append(name)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(f"{json_path}: malformed LabelMe JSON ({exc!r})") from exc
    return LabelMeRecord(json_path, _image_path(json_path, doc), width, height, tuple(boxes), tuple(names),
                         has_image_data=bool(doc.get("imageData")), extra=_extra(doc))


def read_labelme(json_path: str, labels: Sequence[str] = ("face",),
                 label_map: Optional[Mapping[str, Optional[str]]] = None,
                 outside_tolerance: float = 2.0,
                 require_image: bool = True) -> Tuple[LabelMeRecord, List[str]]:
    """Read and validate one LabelMe JSON.

    Args:
        json_path: the ``.json`` file.
        labels: labels kept as they are (others ignored unless mapped).
        label_map: ``{label: new_label or None}``; ``None`` ignores that label.
        outside_tolerance: pixels a box may stick out of the image (annotation tools round
            corners outwards); such boxes are clipped with a warning, farther ones are errors.
        require_image: the image file (or embedded ``imageData``) must exist.

    Returns:
        ``(record, warnings)``; warnings are human-readable lines naming the file.

    Raises:
        DataError: malformed JSON, missing size, a zero-area/non-finite/outside box, an unknown
            shape type, or a missing image; the message names the file (and the shape).
    """
    doc = _read_json(json_path)
    warnings: List[str] = []
    try:
        width, height = int(doc["imageWidth"]), int(doc["imageHeight"])
    except KeyError as exc:
        raise DataError(f"{json_path}: missing {exc.args[0]} (not a LabelMe file?)") from exc
    except (TypeError, ValueError) as exc:
        raise DataError(f"{json_path}: bad imageWidth/imageHeight ({exc})") from exc
    if width <= 0 or height <= 0:
        raise DataError(f"{json_path}: image size {width}x{height} is empty")
    shapes = doc.get("shapes") or []
    if not isinstance(shapes, list):
        raise DataError(f"{json_path}: 'shapes' is {type(shapes).__name__}, expected a list")
    boxes: List[BBox] = []
    names: List[str] = []
    for i, shape in enumerate(shapes):
        where = f"{json_path}: shape {i}"
        if not isinstance(shape, dict):
            raise DataError(f"{where}: not an object")
        name = _map_label(shape.get("label"), labels, label_map)
        if name is None:
            continue
        where += f" ('{shape.get('label')}', {shape.get('shape_type') or 'polygon'})"
        try:
            box = shape_to_box(shape)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DataError(f"{where}: malformed points ({exc})") from exc
        if box is None:
            warnings.append(f"{where}: no area, ignored")
            continue
        if box.width <= 0 or box.height <= 0:
            raise DataError(f"{where}: zero-area box {_fmt(box)}")
        tol = float(outside_tolerance)
        if box.x1 < -tol or box.y1 < -tol or box.x2 > width + tol or box.y2 > height + tol:
            raise DataError(f"{where}: box {_fmt(box)} lies outside the {width}x{height} image")
        clipped = box.clip(width, height)
        if clipped != box:
            warnings.append(f"{where}: box {_fmt(box)} clipped to the {width}x{height} image")
            if clipped.width <= 0 or clipped.height <= 0:
                raise DataError(f"{where}: box {_fmt(box)} has no area inside the image")
        boxes.append(clipped)
        names.append(name)
    has_data = bool(doc.get("imageData"))
    image_path = _image_path(json_path, doc)
    if require_image and not has_data and not os.path.isfile(image_path):
        raise DataError(f"{json_path}: image '{doc.get('imagePath')}' not found ({image_path}) and no imageData")
    rec = LabelMeRecord(json_path, image_path, width, height, tuple(boxes), tuple(names),
                        has_image_data=has_data, extra=_extra(doc))
    return rec, warnings


def _fmt(box: BBox) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box.as_xyxy()) + ")"


def labelme_image_bytes(json_path: str) -> bytes:
    """The encoded image embedded in a LabelMe JSON (``imageData``, base64 of a JPEG/PNG file).

    Raises:
        DataError: no ``imageData`` or invalid base64.
    """
    doc = _read_json(json_path)
    data = doc.get("imageData")
    if not data:
        raise DataError(f"{json_path}: no embedded imageData")
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise DataError(f"{json_path}: imageData is not valid base64 ({exc})") from exc


def labelme_document(image_path: str, json_path: str, width: int, height: int,
                     boxes: Sequence[BBox], labels: Optional[Sequence[str]] = None,
                     scores: Optional[Sequence[float]] = None,
                     flags: Optional[Mapping[str, bool]] = None,
                     image_data: Optional[bytes] = None,
                     extra: Optional[Mapping[str, Any]] = None,
                     description: str = "") -> Dict[str, Any]:
    """Build the LabelMe JSON object (see :func:`write_labelme` for the arguments)."""
    labels = list(labels) if labels is not None else ["face"] * len(boxes)
    if len(labels) != len(boxes):
        raise ValueError(f"{len(boxes)} boxes but {len(labels)} labels")
    shapes = []
    for i, (box, label) in enumerate(zip(boxes, labels)):
        desc = description
        if scores is not None:
            desc = (desc + " " if desc else "") + f"score {float(scores[i]):.3f}"
        shapes.append({
            "label": label,
            "points": [[round(float(box.x1), 2), round(float(box.y1), 2)],
                       [round(float(box.x2), 2), round(float(box.y2), 2)]],
            "group_id": None,
            "description": desc,
            "shape_type": "rectangle",
            "flags": {},
            "mask": None,
        })
    rel = os.path.relpath(os.path.abspath(image_path), os.path.dirname(os.path.abspath(json_path)))
    doc: Dict[str, Any] = {
        "version": LABELME_VERSION,
        "flags": dict(flags or {}),
        "shapes": shapes,
        "imagePath": rel.replace(os.sep, "/"),
        "imageData": base64.b64encode(image_data).decode("ascii") if image_data else None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }
    for k, v in (extra or {}).items():
        if k in doc:
            raise ValueError(f"extra key '{k}' clashes with a LabelMe key")
        doc[k] = v
    return doc


def write_labelme(json_path: str, image_path: str, width: int, height: int,
                  boxes: Sequence[BBox], labels: Optional[Sequence[str]] = None, *,
                  scores: Optional[Sequence[float]] = None,
                  flags: Optional[Mapping[str, bool]] = None,
                  image_data: Optional[bytes] = None,
                  extra: Optional[Mapping[str, Any]] = None,
                  description: str = "",
                  overwrite: bool = False) -> str:
    """Write a LabelMe JSON atomically (temp file + rename in the same folder).

    Args:
        json_path: file to write.
        image_path: the image; stored relative to the JSON's folder.
        width: image width, pixels.
        height: image height, pixels.
        boxes: boxes in pixels, written as 2-point rectangles.
        labels: one label per box (default ``"face"``).
        scores: optional detector scores, written into each shape's description.
        flags: top-level flags, e.g. ``{"needs_review": True}`` for auto-labels.
        image_data: encoded image bytes to embed as ``imageData`` (default: not embedded).
        extra: additional top-level keys (LabelMe keeps unknown keys when it saves).
        description: text put in every shape's description (e.g. which detector made it).
        overwrite: replace an existing file; when False an existing file raises.

    Returns:
        ``json_path``.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is False.
        OSError: the folder is not writable / the disk is full.
    """
    doc = labelme_document(image_path, json_path, width, height, boxes, labels, scores, flags,
                           image_data, extra, description)
    atomic_write_bytes(json_path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), overwrite=overwrite)
    return json_path


def atomic_write_bytes(path: str, data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` so readers never see a partial file.

    The bytes go to a hidden temp file in the same folder first. With ``overwrite=False`` the
    temp file is hard-linked to ``path`` (which fails if ``path`` exists, so a concurrent writer
    or an earlier run is never clobbered); file systems without hard links fall back to an
    exclusive create + rename.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        OSError: e.g. ``ENOSPC`` (disk full), ``EACCES``/``EROFS`` (not writable).
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:
            # No hard links here (e.g. FAT/exFAT USB sticks): reserve the name, then rename onto it.
            reserve = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.close(reserve)
            os.replace(tmp, path)
            return
        os.unlink(tmp)
    finally:
        if os.path.exists(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def now_iso() -> str:
    """UTC time stamp for provenance fields (``2025-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
