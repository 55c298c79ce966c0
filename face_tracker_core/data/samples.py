"""The face-box dataset record (:class:`Sample`), import reports, and JSON-lines manifests.

A dataset is a list of :class:`Sample` s: one image, its face boxes in pixels (empty for a negative)
and a ``source_id``. The source id is the *split key*: every sample sharing it goes to the same
train/val/test split (see :mod:`.split`); :mod:`.dataset` explains how import assigns it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError, ImageDecodeError
from ..imaging import read_image
from ..types import BBox
from .labelme import labelme_image_bytes

__all__ = ["Sample", "FileIssue", "ImportReport", "write_manifest", "read_manifest"]


@dataclass(frozen=True)
class Sample:
    """One training image.

    Attributes:
        image_path: the image file (absolute after import).
        boxes: face boxes in pixels of the image, ``(x1, y1, x2, y2)``; empty for a negative.
        source_id: split key shared by all variants/near-duplicates of one original frame.
        width: image width, pixels (0 if unknown).
        height: image height, pixels (0 if unknown).
        labels: one label per box (``"face"``).
        json_path: the LabelMe file it came from (``None`` for unlabelled negatives).
        embedded: the pixels are (also) in the JSON's ``imageData``; used when ``image_path``
            does not exist.
    """

    image_path: str
    boxes: Tuple[BBox, ...] = ()
    source_id: str = ""
    width: int = 0
    height: int = 0
    labels: Tuple[str, ...] = ()
    json_path: Optional[str] = None
    embedded: bool = False

    @property
    def negative(self) -> bool:
        """True for an image without faces."""
        return not self.boxes

    def load_bgr(self) -> np.ndarray:
        """The image as ``(H, W, 3)`` ``uint8`` BGR.

        Raises:
            ImageDecodeError: unreadable file (named in the message).
        """
        if os.path.isfile(self.image_path) or not (self.embedded and self.json_path):
            return read_image(self.image_path)
        data = labelme_image_bytes(self.json_path)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise ImageDecodeError(f"{self.json_path}: imageData is not a readable image")
        return img

    def to_dict(self, relative_to: Optional[str] = None) -> Dict[str, Any]:
        """JSON-friendly dict (paths relative to ``relative_to`` when given)."""
        def rel(p: Optional[str]) -> Optional[str]:
            if p is None or relative_to is None:
                return p
            return os.path.relpath(p, relative_to)

        return {"image": rel(self.image_path), "json": rel(self.json_path),
                "boxes": [[round(v, 3) for v in b.as_xyxy()] for b in self.boxes],
                "labels": list(self.labels), "source_id": self.source_id,
                "width": self.width, "height": self.height, "embedded": self.embedded}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], base_dir: Optional[str] = None) -> "Sample":
        def absp(p: Optional[str]) -> Optional[str]:
            if p is None or base_dir is None or os.path.isabs(p):
                return p
            return os.path.normpath(os.path.join(base_dir, p))

        boxes = tuple(BBox(*map(float, b)) for b in d.get("boxes", []))
        labels = tuple(d.get("labels") or ["face"] * len(boxes))
        return cls(absp(d["image"]), boxes, str(d.get("source_id", "")), int(d.get("width", 0)),
                   int(d.get("height", 0)), labels, absp(d.get("json")), bool(d.get("embedded", False)))


@dataclass(frozen=True)
class FileIssue:
    """One problem found in one file."""

    path: str
    message: str

    def __str__(self) -> str:
        return self.message if self.message.startswith(self.path) else f"{self.path}: {self.message}"


@dataclass
class ImportReport:
    """Result of importing folders/manifests.

    Attributes:
        samples: the good samples, sorted by image path.
        errors: files that were rejected, one :class:`FileIssue` each.
        warnings: accepted with a remark (box clipped by a pixel, shape without area ignored...).
        unlabelled: images without a JSON that were not taken as negatives.
        roots: the inputs.
    """

    samples: List[Sample] = field(default_factory=list)
    errors: List[FileIssue] = field(default_factory=list)
    warnings: List[FileIssue] = field(default_factory=list)
    unlabelled: List[str] = field(default_factory=list)
    roots: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def merge(self, other: "ImportReport") -> None:
        self.samples.extend(other.samples)
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        self.unlabelled.extend(other.unlabelled)
        self.roots.extend(other.roots)

    def summary(self) -> str:
        faces = sum(len(s.boxes) for s in self.samples)
        neg = sum(1 for s in self.samples if s.negative)
        sources = len({s.source_id for s in self.samples})
        return (f"{len(self.samples)} images ({neg} negatives, {faces} faces, {sources} sources), "
                f"{len(self.errors)} bad files, {len(self.warnings)} warnings, "
                f"{len(self.unlabelled)} unlabelled images skipped")

    def to_dict(self) -> Dict[str, Any]:
        return {"roots": self.roots, "summary": self.summary(),
                "images": len(self.samples), "faces": sum(len(s.boxes) for s in self.samples),
                "errors": [{"path": e.path, "message": str(e)} for e in self.errors],
                "warnings": [{"path": w.path, "message": str(w)} for w in self.warnings],
                "unlabelled": self.unlabelled}

    def raise_if_errors(self) -> None:
        """Raise :class:`DataError` listing the bad files (first 20)."""
        if self.errors:
            lines = [str(e) for e in self.errors[:20]]
            more = f"\n... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
            raise DataError(f"{len(self.errors)} bad files:\n" + "\n".join(lines) + more)


def write_manifest(samples: Sequence[Sample], path: str) -> str:
    """Write samples as JSON lines (paths relative to the manifest's folder).

    Returns:
        ``path``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(json.dumps(s.to_dict(relative_to=folder)) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(path: str) -> List[Sample]:
    """Read a manifest written by :func:`write_manifest`.

    Raises:
        DataError: unreadable file or a malformed line (file and line number in the message).
    """
    folder = os.path.dirname(os.path.abspath(path))
    out: List[Sample] = []
    try:
        with open(path, "r", encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    out.append(Sample.from_dict(json.loads(line), folder))
                except (ValueError, KeyError, TypeError) as exc:
                    raise DataError(f"{path}:{n}: malformed manifest line ({exc!r})") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read manifest ({exc.strerror or exc})") from exc
    return out
