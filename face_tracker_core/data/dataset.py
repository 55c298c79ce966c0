"""Face-box datasets: the :class:`Sample` record, folder import with a per-file report, manifests.

A dataset is a list of :class:`Sample` s: one image, its face boxes in pixels (empty for a negative)
and a ``source_id``. The source id is the *split key*: every sample sharing it goes to the same
train/val/test split (see :mod:`.split`). Import gives:

* an original photo: ``"sha1:<12 hex>"`` of the image file's bytes, so the same photo copied
  into two folders is still one source (a common leak);
* an augmented variant: the ``source_id`` stored in its LabelMe JSON by :mod:`.augment` (its
  original's id);
* near-identical consecutive frames of one capture session (file names written by
  :mod:`.capture`): the id of the first frame of the run of similar frames.

:func:`import_folder` never stops at a bad file: malformed JSON, boxes outside the image,
zero-area boxes, missing or unreadable images, image sizes that contradict the JSON all end up as
one line each in :attr:`ImportReport.errors`, and the good files import.

Files and folders whose name starts with ``.`` or ``_`` are skipped (tools keep metadata there).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..errors import DataError, ImageDecodeError
from ..imaging import read_image
from ..types import BBox
from .capture import IMAGE_EXTENSIONS, parse_capture_name
from .labelme import REVIEW_FLAG, labelme_image_bytes, read_labelme

log = logging.getLogger(__name__)

#: Mean absolute difference (grey levels, 0..255) of 32x24 thumbnails under which two
#: consecutive captured frames count as near-identical.
NEAR_DUPLICATE_THRESHOLD = 6.0


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


def _skip(name: str) -> bool:
    return name.startswith(".") or name.startswith("_")


def _walk(root: str, recursive: bool) -> Tuple[List[str], List[str]]:
    jsons: List[str] = []
    images: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skip(d)) if recursive else []
        for name in sorted(filenames):
            if _skip(name):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext == ".json":
                jsons.append(os.path.join(dirpath, name))
            elif ext in IMAGE_EXTENSIONS:
                images.append(os.path.join(dirpath, name))
    return jsons, images


def _image_size(data: bytes, path: str) -> Tuple[int, int]:
    """``(width, height)`` as displayed (EXIF orientation applied), reading only the header."""
    try:
        from PIL import Image  # header-only parse; pulled in by matplotlib/scikit-image
    except ImportError:  # pragma: no cover - fall back to a full decode
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"{path}: not a readable image")
        return img.shape[1], img.shape[0]
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # broken EXIF: the pixels may still be fine
                orientation = 1
    except Exception as exc:
        raise DataError(f"{path}: not a readable image ({exc.__class__.__name__}: {exc})") from exc
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _thumb(data: bytes) -> Optional[np.ndarray]:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if img is None:
        return None
    return cv2.resize(img, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def _content_id(data: bytes) -> str:
    return "sha1:" + hashlib.sha1(data).hexdigest()[:12]


def import_folder(root: str, labels: Sequence[str] = ("face",),
                  label_map: Optional[Mapping[str, Optional[str]]] = None,
                  negatives: bool = False, recursive: bool = True, outside_tolerance: float = 2.0,
                  check_images: bool = True, group_near_duplicates: str = "capture",
                  near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD) -> ImportReport:
    """Import every LabelMe-labelled image under ``root``.

    Args:
        root: folder with images and LabelMe JSON files (one ``.json`` beside each image).
        labels: box labels kept (others ignored unless mapped).
        label_map: ``{label: new_label or None}`` applied before ``labels``.
        negatives: images without a JSON become negatives (no faces); otherwise they are only
            counted in :attr:`ImportReport.unlabelled`.
        recursive: descend into sub-folders.
        outside_tolerance: pixels a box may stick out of the image before it is an error.
        check_images: read each image's header: it must decode and match the JSON's size. Also
            needed for content-based source ids (without it the id is the image path).
        group_near_duplicates: ``"capture"`` (consecutive frames of one capture session),
            ``"all"`` (consecutive files of any folder, e.g. frames extracted from a video) or
            ``"none"``.
        near_duplicate_threshold: see :data:`NEAR_DUPLICATE_THRESHOLD`.

    Returns:
        An :class:`ImportReport`; never raises for a bad file.

    Raises:
        DataError: ``root`` is not a folder.
    """
    if group_near_duplicates not in ("capture", "all", "none"):
        raise ValueError(f"group_near_duplicates must be capture/all/none, not '{group_near_duplicates}'")
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such folder")
    report = ImportReport(roots=[root])
    jsons, images = _walk(root, recursive)
    used_images = set()
    thumbs: Dict[str, np.ndarray] = {}
    explicit_source = set()
    want_thumb = group_near_duplicates != "none" and check_images

    def check_bytes(path: str, data: bytes, width: int, height: int) -> None:
        w, h = _image_size(data, path)
        if width and height and (w, h) != (width, height):
            raise DataError(f"{path}: image is {w}x{h} but its JSON says {width}x{height}")

    for i, jp in enumerate(jsons):
        if i and i % 500 == 0:
            log.info("import %s: %d/%d annotation files", root, i, len(jsons))
        try:
            rec, warns = read_labelme(jp, labels, label_map, outside_tolerance)
            report.warnings.extend(FileIssue(jp, w) for w in warns)
            flags = (rec.extra or {}).get("flags") or {}
            if isinstance(flags, dict) and flags.get(REVIEW_FLAG):
                report.warnings.append(FileIssue(jp, f"{jp}: auto-labels not reviewed yet (untick "
                                                     f"'{REVIEW_FLAG}' in LabelMe once checked)"))
            image_path = os.path.abspath(rec.image_path)
            on_disk = os.path.isfile(image_path)
            source = str((rec.extra or {}).get("source_id") or "")
            if check_images:
                try:
                    data = _read_bytes(image_path) if on_disk else labelme_image_bytes(jp)
                except OSError as exc:
                    raise DataError(f"{image_path}: cannot read ({exc.strerror or exc})") from exc
                where = image_path if on_disk else f"{jp} (imageData)"
                check_bytes(where, data, rec.width, rec.height)
                if not source:
                    source = _content_id(data)
                    if want_thumb and _groupable(image_path, group_near_duplicates):
                        t = _thumb(data)
                        if t is not None:
                            thumbs[image_path] = t
                else:
                    explicit_source.add(image_path)
            elif not source:
                source = "path:" + os.path.splitext(image_path)[0]
            else:
                explicit_source.add(image_path)
            used_images.add(image_path)
            report.samples.append(Sample(image_path, rec.boxes, source, rec.width, rec.height, rec.labels,
                                         os.path.abspath(jp), embedded=rec.has_image_data))
        except DataError as exc:
            report.errors.append(FileIssue(jp, str(exc)))
        except Exception as exc:  # a bug or an odd file must not end the whole import
            report.errors.append(FileIssue(jp, f"{jp}: {exc.__class__.__name__}: {exc}"))

    json_stems = {os.path.splitext(os.path.abspath(j))[0] for j in jsons}
    for ip in images:
        # An image whose JSON was rejected is not a negative: it has faces we could not read.
        if os.path.abspath(ip) in used_images or os.path.splitext(os.path.abspath(ip))[0] in json_stems:
            continue
        if not negatives:
            report.unlabelled.append(os.path.abspath(ip))
            continue
        ip = os.path.abspath(ip)
        try:
            if check_images:
                try:
                    data = _read_bytes(ip)
                except OSError as exc:
                    raise DataError(f"{ip}: cannot read ({exc.strerror or exc})") from exc
                w, h = _image_size(data, ip)
                source = _content_id(data)
                if want_thumb and _groupable(ip, group_near_duplicates):
                    t = _thumb(data)
                    if t is not None:
                        thumbs[ip] = t
            else:
                w = h = 0
                source = "path:" + os.path.splitext(ip)[0]
            report.samples.append(Sample(ip, (), source, w, h, (), None))
        except DataError as exc:
            report.errors.append(FileIssue(ip, str(exc)))
        except Exception as exc:
            report.errors.append(FileIssue(ip, f"{ip}: {exc.__class__.__name__}: {exc}"))

    if thumbs:
        report.samples = _group_sequences(report.samples, thumbs, group_near_duplicates,
                                          near_duplicate_threshold, explicit_source)
    report.samples.sort(key=lambda s: s.image_path)
    log.info("import %s: %s", root, report.summary())
    return report


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _groupable(path: str, mode: str) -> bool:
    return mode == "all" or (mode == "capture" and parse_capture_name(path) is not None)


def _sequence_key(path: str, mode: str) -> Tuple[str, ...]:
    parsed = parse_capture_name(path)
    if parsed:
        prefix, session, _ = parsed
        return (os.path.dirname(path), prefix, session)
    return (os.path.dirname(path),) if mode == "all" else ()


def _group_sequences(samples: List[Sample], thumbs: Mapping[str, np.ndarray], mode: str,
                     threshold: float, explicit: Iterable[str]) -> List[Sample]:
    """Give consecutive near-identical frames of one sequence the source id of the run's first frame.

    Each frame is compared with the *first* frame of the current run (not with its neighbour),
    so a slow pan cannot chain a whole session into one source.
    """
    explicit = set(explicit)
    by_key: Dict[Tuple[str, ...], List[int]] = {}
    for idx, s in enumerate(samples):
        if s.image_path in thumbs and s.image_path not in explicit:
            key = _sequence_key(s.image_path, mode)
            if key:
                by_key.setdefault(key, []).append(idx)
    out = list(samples)
    for key, idxs in by_key.items():
        idxs.sort(key=lambda k: _order(samples[k].image_path))
        anchor = idxs[0]
        for k in idxs[1:]:
            diff = float(np.mean(np.abs(thumbs[samples[k].image_path] - thumbs[samples[anchor].image_path])))
            if diff < threshold:
                out[k] = _replace_source(out[k], out[anchor].source_id)
            else:
                anchor = k
    return out


def _order(path: str) -> Tuple[int, str]:
    parsed = parse_capture_name(path)
    return (parsed[2] if parsed else 0, os.path.basename(path))


def _replace_source(s: Sample, source_id: str) -> Sample:
    from dataclasses import replace

    return replace(s, source_id=source_id)


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


def load_samples(inputs: Sequence[str], **import_kwargs: Any) -> ImportReport:
    """Import folders and/or read ``.jsonl`` manifests into one report.

    Args:
        inputs: folders (imported with :func:`import_folder`) or manifest files.
        **import_kwargs: passed to :func:`import_folder`.

    Raises:
        DataError: an input is neither a folder nor a manifest.
    """
    report = ImportReport()
    for inp in inputs:
        if os.path.isdir(inp):
            report.merge(import_folder(inp, **import_kwargs))
        elif os.path.isfile(inp) and inp.endswith(".jsonl"):
            report.merge(ImportReport(samples=read_manifest(inp), roots=[os.path.abspath(inp)]))
        else:
            raise DataError(f"{inp}: not a folder or a .jsonl manifest")
    dupes = [p for p, c in Counter(s.image_path for s in report.samples).items() if c > 1]
    if dupes:
        log.warning("%d images were listed more than once (e.g. %s)", len(dupes), dupes[0])
    return report


def parse_label_map(items: Sequence[str]) -> Dict[str, Optional[str]]:
    """``["masked=face", "hand="]`` -> ``{"masked": "face", "hand": None}`` (CLI helper).

    Raises:
        DataError: an item without ``=``.
    """
    out: Dict[str, Optional[str]] = {}
    for item in items:
        if "=" not in item:
            raise DataError(f"label map item '{item}' must look like OLD=NEW (NEW empty to ignore OLD)")
        old, new = item.split("=", 1)
        out[old.strip()] = new.strip() or None
    return out
