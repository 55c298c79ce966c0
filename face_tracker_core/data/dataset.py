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
import logging
import os
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import cv2
import numpy as np

from ..errors import DataError
from .capture import IMAGE_EXTENSIONS, parse_capture_name
from .labelme import REVIEW_FLAG, labelme_image_bytes, read_labelme
from .samples import FileIssue, ImportReport, Sample, read_manifest, write_manifest

__all__ = ["Sample", "FileIssue", "ImportReport", "import_folder", "load_samples", "parse_label_map",
           "read_manifest", "write_manifest", "NEAR_DUPLICATE_THRESHOLD"]

log = logging.getLogger(__name__)

#: Mean absolute difference (grey levels, 0..255) of 32x24 thumbnails under which two
#: consecutive captured frames count as near-identical.
NEAR_DUPLICATE_THRESHOLD = 6.0


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

@dataclass
class _Import:
    """State of one :func:`import_folder` run shared by the per-file steps."""

    report: ImportReport
    check_images: bool
    grouping: str                                   # group_near_duplicates
    want_thumb: bool
    thumbs: Dict[str, np.ndarray] = field(default_factory=dict)
    explicit_source: Set[str] = field(default_factory=set)
    used_images: Set[str] = field(default_factory=set)

    def content_source(self, image_path: str, data: bytes) -> str:
        """Content id of an image, keeping its thumbnail when near-duplicates are grouped."""
        if self.want_thumb and _groupable(image_path, self.grouping):
            t = _thumb(data)
            if t is not None:
                self.thumbs[image_path] = t
        return _content_id(data)


def _check_size(path: str, data: bytes, width: int, height: int) -> None:
    w, h = _image_size(data, path)
    if width and height and (w, h) != (width, height):
        raise DataError(f"{path}: image is {w}x{h} but its JSON says {width}x{height}")


def _import_labelled(st: _Import, jp: str, labels, label_map, outside_tolerance: float) -> None:
    """One LabelMe file into ``st.report`` (a sample, warnings; raises for a bad file)."""
    rec, warns = read_labelme(jp, labels, label_map, outside_tolerance)
    st.report.warnings.extend(FileIssue(jp, w) for w in warns)
    flags = (rec.extra or {}).get("flags") or {}
    if isinstance(flags, dict) and flags.get(REVIEW_FLAG):
        st.report.warnings.append(FileIssue(jp, f"{jp}: auto-labels not reviewed yet (untick "
                                                f"'{REVIEW_FLAG}' in LabelMe once checked)"))
    image_path = os.path.abspath(rec.image_path)
    on_disk = os.path.isfile(image_path)
    source = str((rec.extra or {}).get("source_id") or "")
    if st.check_images:
        try:
            data = _read_bytes(image_path) if on_disk else labelme_image_bytes(jp)
        except OSError as exc:
            raise DataError(f"{image_path}: cannot read ({exc.strerror or exc})") from exc
        _check_size(image_path if on_disk else f"{jp} (imageData)", data, rec.width, rec.height)
        if not source:
            source = st.content_source(image_path, data)
        else:
            st.explicit_source.add(image_path)
    elif not source:
        source = "path:" + os.path.splitext(image_path)[0]
    else:
        st.explicit_source.add(image_path)
    st.used_images.add(image_path)
    st.report.samples.append(Sample(image_path, rec.boxes, source, rec.width, rec.height, rec.labels,
                                    os.path.abspath(jp), embedded=rec.has_image_data))


def _import_negative(st: _Import, ip: str) -> None:
    """One image without a JSON into ``st.report`` as a negative (raises for a bad file)."""
    if st.check_images:
        try:
            data = _read_bytes(ip)
        except OSError as exc:
            raise DataError(f"{ip}: cannot read ({exc.strerror or exc})") from exc
        w, h = _image_size(data, ip)
        source = st.content_source(ip, data)
    else:
        w = h = 0
        source = "path:" + os.path.splitext(ip)[0]
    st.report.samples.append(Sample(ip, (), source, w, h, (), None))


def _guarded(report: ImportReport, path: str, step, *args) -> None:
    """Run one file's import step; a bad file becomes one error line, never an exception."""
    try:
        step(*args)
    except DataError as exc:
        report.errors.append(FileIssue(path, str(exc)))
    except Exception as exc:  # a bug or an odd file must not end the whole import
        report.errors.append(FileIssue(path, f"{path}: {exc.__class__.__name__}: {exc}"))


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
    st = _Import(report, check_images, group_near_duplicates, group_near_duplicates != "none" and check_images)
    for i, jp in enumerate(jsons):
        if i and i % 500 == 0:
            log.info("import %s: %d/%d annotation files", root, i, len(jsons))
        _guarded(report, jp, _import_labelled, st, jp, labels, label_map, outside_tolerance)

    json_stems = {os.path.splitext(os.path.abspath(j))[0] for j in jsons}
    for ip in images:
        # An image whose JSON was rejected is not a negative: it has faces we could not read.
        if os.path.abspath(ip) in st.used_images or os.path.splitext(os.path.abspath(ip))[0] in json_stems:
            continue
        if not negatives:
            report.unlabelled.append(os.path.abspath(ip))
            continue
        ip = os.path.abspath(ip)
        _guarded(report, ip, _import_negative, st, ip)

    if st.thumbs:
        report.samples = _group_sequences(report.samples, st.thumbs, group_near_duplicates,
                                          near_duplicate_threshold, st.explicit_source)
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
    return replace(s, source_id=source_id)


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
