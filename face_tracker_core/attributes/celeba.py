"""Readers for the official CelebA annotation files, streaming and with located errors.

Formats (whitespace separated, any run of spaces/tabs; blank lines are ignored):

* ``list_attr_celeba.txt``: line 1 the image count, line 2 the 40 attribute names, then
  ``image v1 ... v40`` with values ``-1`` (absent) or ``1`` (present). The comma-separated
  variant (``list_attr_celeba.csv``: a header ``image_id,name1,...`` then rows) is accepted too.
* ``list_bbox_celeba.txt``: count, header ``image_id x_1 y_1 width height``, rows of 4 ints
  (pixels of the original in-the-wild image, top-left corner and size).
* ``list_landmarks_celeba.txt`` / ``list_landmarks_align_celeba.txt``: count, header of 10 names,
  rows of 10 ints ``lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x ...``.
* ``identity_CelebA.txt``: no header, rows ``image person_id``.
* ``list_eval_partition.txt``: no header, rows ``image 0|1|2`` (train/val/test).

Every malformed line raises :class:`~face_tracker_core.errors.DataError` naming the file and the
1-based line number, so a typo in a 200k-line file is found without a debugger.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from ..types import BBox

__all__ = [
    "AttributeRow", "AttributeTable", "iter_attributes", "read_attribute_header", "read_attributes",
    "read_bboxes", "read_landmarks", "read_identities", "read_partition", "CELEBA_ATTRIBUTES",
]

#: The 40 CelebA attribute names in the official order.
CELEBA_ATTRIBUTES: Tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby",
    "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male",
    "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose",
    "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)


@dataclass(frozen=True)
class AttributeRow:
    """One image's labels.

    Attributes:
        line: 1-based line number in the attribute file (for error messages).
        image: image file name as written in the file (relative to the images folder).
        labels: ``(n_attributes,)`` ``uint8`` array, 1 = present, 0 = absent.
    """

    line: int
    image: str
    labels: np.ndarray


@dataclass
class AttributeTable:
    """A whole attribute file in memory (labels only: 200k x 40 bytes for full CelebA).

    Attributes:
        path: the file read.
        names: attribute names, in file order.
        images: image file names, in file order.
        labels: ``(N, n_attributes)`` ``uint8`` array of 0/1.
        lines: ``(N,)`` 1-based line numbers of each row.
    """

    path: str
    names: List[str]
    images: List[str]
    labels: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: Sequence[int]) -> "AttributeTable":
        """Rows ``idx`` (in that order) as a new table."""
        idx = np.asarray(idx, dtype=np.int64)
        return AttributeTable(self.path, list(self.names), [self.images[i] for i in idx],
                              self.labels[idx], self.lines[idx])


def _open(path: str) -> io.TextIOBase:
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    # errors="replace" so that a stray byte becomes a located parse error, not a UnicodeDecodeError.
    return open(path, "r", encoding="utf-8", errors="replace", newline=None)


def _lines(fh: io.TextIOBase) -> Iterator[Tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, stripped."""
    for no, raw in enumerate(fh, start=1):
        line = raw.strip().lstrip("\ufeff")
        if line:
            yield no, line


def read_attribute_header(path: str) -> Tuple[Optional[int], List[str]]:
    """Read just the count and attribute names of an attribute file.

    Returns:
        ``(declared_count, names)``; the count is ``None`` for the CSV variant (which has none).

    Raises:
        DataError: missing file, bad count line or bad names line (with the line number).
    """
    with _open(path) as fh:
        header = _parse_header(path, _lines(fh))
    return header[0], header[1]


def _parse_header(path: str, it: Iterator[Tuple[int, str]]) -> Tuple[Optional[int], List[str], bool]:
    first = next(it, None)
    if first is None:
        raise DataError(f"{path}: empty attribute file (expected a count line, a names line, then rows)")
    no, line = first
    if "," in line:  # CSV variant: header "image_id,attr1,..."
        names = [t.strip() for t in line.split(",")[1:]]
        csv = True
        count: Optional[int] = None
    else:
        try:
            count = int(line)
        except ValueError:
            raise DataError(f"{path} line {no}: expected the image count (an integer), got '{line[:60]}'") from None
        if count < 0:
            raise DataError(f"{path} line {no}: negative image count {count}")
        second = next(it, None)
        if second is None:
            raise DataError(f"{path}: missing the attribute names line after line {no}")
        no, line = second
        names = line.split()
        csv = False
        # Some copies prefix the names with an "image_id" column title.
        if names and names[0].lower() in ("image_id", "image", "filename"):
            names = names[1:]
    if not names:
        raise DataError(f"{path} line {no}: no attribute names")
    bad = [n for n in names if not n or n.lstrip("-").replace(".", "").isdigit()]
    if bad:
        raise DataError(f"{path} line {no}: expected attribute names, got '{bad[0]}' "
                        "(is the names line missing?)")
    seen: Dict[str, int] = {}
    for n in names:
        if n in seen:
            raise DataError(f"{path} line {no}: attribute '{n}' appears twice")
        seen[n] = 1
    return count, names, csv


def iter_attributes(path: str) -> Iterator[AttributeRow]:
    """Stream the rows of a CelebA attribute file without holding it in memory.

    The header is validated first; the declared count is checked when the file ends.

    Yields:
        :class:`AttributeRow` per image, in file order.

    Raises:
        DataError: wrong number of fields, a value other than -1/1 (0/1 in the CSV variant is
            accepted as well), a duplicate image, or a count that does not match the rows; the
            message names ``path`` and the line.
    """
    with _open(path) as fh:
        it = _lines(fh)
        count, names, csv = _parse_header(path, it)
        n = len(names)
        seen: Dict[str, int] = {}
        rows = 0
        for no, line in it:
            toks = [t.strip() for t in line.split(",")] if csv else line.split()
            if len(toks) != n + 1:
                raise DataError(f"{path} line {no}: expected {n + 1} fields (image name + {n} values), "
                                f"got {len(toks)}")
            image = toks[0]
            if image in seen:
                raise DataError(f"{path} line {no}: image '{image}' already listed on line {seen[image]}")
            seen[image] = no
            labels = np.empty(n, np.uint8)
            for j, tok in enumerate(toks[1:]):
                if tok == "1":
                    labels[j] = 1
                elif tok == "-1" or (csv and tok == "0"):
                    labels[j] = 0
                else:
                    raise DataError(f"{path} line {no}: value '{tok}' for attribute '{names[j]}' "
                                    f"(column {j + 2}) is not -1 or 1")
            rows += 1
            yield AttributeRow(no, image, labels)
        if count is not None and rows != count:
            raise DataError(f"{path}: line 1 declares {count} images but the file has {rows} rows")


def read_attributes(path: str) -> AttributeTable:
    """Read a whole attribute file (see :func:`iter_attributes` for the checks)."""
    _count, names = read_attribute_header(path)
    images: List[str] = []
    lines: List[int] = []
    labels: List[np.ndarray] = []
    for row in iter_attributes(path):
        images.append(row.image)
        lines.append(row.line)
        labels.append(row.labels)
    arr = np.stack(labels) if labels else np.zeros((0, len(names)), np.uint8)
    return AttributeTable(path, names, images, arr, np.asarray(lines, np.int64))


def _read_rows(path: str, n_values: int, header: bool, kind: str) -> Iterator[Tuple[int, str, List[int]]]:
    """Rows ``image int*n_values`` of the simple CelebA files, with a count+header when ``header``."""
    with _open(path) as fh:
        it = _lines(fh)
        count = None
        if header:
            first = next(it, None)
            if first is None:
                raise DataError(f"{path}: empty {kind} file")
            no, line = first
            try:
                count = int(line)
            except ValueError:
                raise DataError(f"{path} line {no}: expected the image count, got '{line[:60]}'") from None
            second = next(it, None)
            if second is None:
                raise DataError(f"{path}: missing the column names line of the {kind} file")
        rows = 0
        for no, line in it:
            toks = line.split()
            if len(toks) != n_values + 1:
                raise DataError(f"{path} line {no}: expected {n_values + 1} fields in a {kind} row "
                                f"(image + {n_values} integers), got {len(toks)}")
            try:
                vals = [int(t) for t in toks[1:]]
            except ValueError:
                raise DataError(f"{path} line {no}: non-integer value in '{line[:80]}'") from None
            rows += 1
            yield no, toks[0], vals
        if count is not None and rows != count:
            raise DataError(f"{path}: line 1 declares {count} images but the file has {rows} rows")


def read_bboxes(path: str) -> Dict[str, BBox]:
    """``list_bbox_celeba.txt`` -> ``{image: BBox}`` (pixels, corner format).

    Raises:
        DataError: malformed row or a non-positive width/height (with the line number).
    """
    out: Dict[str, BBox] = {}
    for no, image, (x, y, w, h) in _read_rows(path, 4, True, "bounding-box"):
        if w <= 0 or h <= 0:
            raise DataError(f"{path} line {no}: box of '{image}' has size {w}x{h}")
        out[image] = BBox.from_xywh(x, y, w, h)
    return out


def read_landmarks(path: str) -> Dict[str, np.ndarray]:
    """``list_landmarks_*.txt`` -> ``{image: (5, 2) float32}`` (left eye, right eye, nose,
    left mouth corner, right mouth corner; pixels, CelebA's "left" = the person's left)."""
    return {image: np.asarray(v, np.float32).reshape(5, 2)
            for _no, image, v in _read_rows(path, 10, True, "landmarks")}


def read_identities(path: str) -> Dict[str, int]:
    """``identity_CelebA.txt`` -> ``{image: person_id}``."""
    return {image: v[0] for _no, image, v in _read_rows(path, 1, False, "identity")}


def read_partition(path: str) -> Dict[str, int]:
    """``list_eval_partition.txt`` -> ``{image: 0 train | 1 validation | 2 test}``.

    Raises:
        DataError: a partition value other than 0, 1, 2 (with the line number).
    """
    out: Dict[str, int] = {}
    for no, image, (p,) in _read_rows(path, 1, False, "partition"):
        if p not in (0, 1, 2):
            raise DataError(f"{path} line {no}: partition of '{image}' is {p}, expected 0, 1 or 2")
        out[image] = p
    return out
