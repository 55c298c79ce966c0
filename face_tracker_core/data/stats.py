"""Dataset report: counts, box-size histogram and a contact sheet PNG with the boxes drawn."""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..types import BBox
from .dataset import Sample

log = logging.getLogger(__name__)

#: Bin edges of the face size histogram: sqrt(box area) in pixels.
SIZE_BINS: Tuple[int, ...] = (0, 16, 32, 64, 128, 256, 100000)


def dataset_stats(samples: Sequence[Sample]) -> Dict[str, Any]:
    """Counts and histograms of a dataset.

    Returns:
        A JSON-friendly dict: ``images``, ``negatives``, ``faces``, ``sources``,
        ``faces_per_image`` (``{count: images}``), ``face_size_px`` (histogram of sqrt(area) over
        :data:`SIZE_BINS`, pixels of the original image), ``face_size_rel`` (histogram of the box
        height / image height in tenths), ``image_sizes`` (``{"WxH": images}``, top 10),
        ``labels``.
    """
    faces = [b for s in samples for b in s.boxes]
    sizes = [math.sqrt(max(b.area, 0.0)) for b in faces]
    size_hist = np.histogram(sizes, bins=SIZE_BINS)[0].tolist() if sizes else [0] * (len(SIZE_BINS) - 1)
    size_labels = [f"{SIZE_BINS[i]}-{SIZE_BINS[i + 1]}" if SIZE_BINS[i + 1] < 100000 else f">={SIZE_BINS[i]}"
                   for i in range(len(SIZE_BINS) - 1)]
    rel = [b.height / s.height for s in samples for b in s.boxes if s.height > 0]
    rel_hist = np.histogram(rel, bins=np.linspace(0, 1, 11))[0].tolist() if rel else [0] * 10
    per_image = Counter(len(s.boxes) for s in samples)
    dims = Counter(f"{s.width}x{s.height}" for s in samples)
    return {
        "images": len(samples),
        "negatives": sum(1 for s in samples if s.negative),
        "faces": len(faces),
        "sources": len({s.source_id for s in samples}),
        "faces_per_image": {str(k): per_image[k] for k in sorted(per_image)},
        "face_size_px": dict(zip(size_labels, size_hist)),
        "face_size_median_px": float(np.median(sizes)) if sizes else 0.0,
        "face_size_rel": {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": c for i, c in enumerate(rel_hist)},
        "image_sizes": dict(dims.most_common(10)),
        "labels": dict(Counter(lb for s in samples for lb in s.labels)),
    }


def format_stats(stats: Dict[str, Any], title: str = "dataset") -> str:
    """Plain-text report with bar charts (for the terminal)."""
    lines = [f"{title}: {stats['images']} images, {stats['faces']} faces, {stats['negatives']} negatives, "
             f"{stats['sources']} sources"]

    def bars(name: str, hist: Dict[str, int]) -> None:
        lines.append(name)
        top = max(hist.values()) if hist and max(hist.values()) else 1
        for k, v in hist.items():
            lines.append(f"  {k:>10} {v:7d} {'#' * int(round(40 * v / top))}")

    bars("faces per image", stats["faces_per_image"])
    bars(f"face size sqrt(area) px (median {stats['face_size_median_px']:.0f})", stats["face_size_px"])
    bars("face height / image height", stats["face_size_rel"])
    return "\n".join(lines)


def draw_boxes(bgr: np.ndarray, boxes: Sequence[BBox], color=(0, 255, 0), thickness: int = 2) -> np.ndarray:
    """Copy of ``bgr`` with ``boxes`` (pixels) drawn."""
    out = bgr.copy()
    for b in boxes:
        cv2.rectangle(out, (int(round(b.x1)), int(round(b.y1))), (int(round(b.x2)), int(round(b.y2))),
                      color, thickness)
    return out


def contact_sheet(items: Sequence[Tuple[np.ndarray, Sequence[BBox], str]], path: str, cols: int = 6,
                  thumb: int = 200) -> str:
    """Write a grid of thumbnails with boxes drawn as a PNG.

    Args:
        items: ``(bgr image, boxes in its pixels, caption)``.
        path: output ``.png`` (folder created).
        cols: thumbnails per row.
        thumb: thumbnail side, pixels (letterboxed, aspect kept).

    Returns:
        ``path``.
    """
    from ..imaging import letterbox

    cols = max(1, min(cols, len(items) or 1))
    rows = max(1, -(-len(items) // cols))
    cap_h = 18
    sheet = np.full((rows * (thumb + cap_h), cols * thumb, 3), 32, np.uint8)
    for k, (img, boxes, caption) in enumerate(items):
        t, scale, (px, py) = letterbox(img, (thumb, thumb), fill=32)
        mapped = [BBox(b.x1 * scale + px, b.y1 * scale + py, b.x2 * scale + px, b.y2 * scale + py) for b in boxes]
        t = draw_boxes(t, mapped, thickness=1 if thumb < 160 else 2)
        r, c = divmod(k, cols)
        y0, x0 = r * (thumb + cap_h), c * thumb
        sheet[y0:y0 + thumb, x0:x0 + thumb] = t
        cv2.putText(sheet, caption[:thumb // 8], (x0 + 3, y0 + thumb + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (230, 230, 230), 1, cv2.LINE_AA)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, sheet):
        raise OSError(f"{path}: cannot write PNG")
    return path


def sample_contact_sheet(samples: Sequence[Sample], path: str, count: int = 36, seed: int = 0, cols: int = 6,
                         thumb: int = 200) -> str:
    """Contact sheet of ``count`` random samples (unreadable ones are skipped with a log line)."""
    chosen = list(samples)
    random.Random(seed).shuffle(chosen)
    items: List[Tuple[np.ndarray, Sequence[BBox], str]] = []
    for s in chosen:
        if len(items) >= count:
            break
        try:
            img = s.load_bgr()
        except Exception as exc:
            log.error("contact sheet: skipping %s", exc)
            continue
        items.append((img, s.boxes, f"{os.path.basename(s.image_path)} ({len(s.boxes)})"))
    return contact_sheet(items, path, cols=cols, thumb=thumb)


def plot_size_histogram(samples: Sequence[Sample], path: str) -> Optional[str]:
    """Histogram PNG of face sizes (sqrt(area), log-spaced bins); ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sizes = [math.sqrt(b.area) for s in samples for b in s.boxes if b.area > 0]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if sizes:
        bins = np.geomspace(max(1.0, min(sizes)), max(sizes) + 1, 30)
        ax.hist(sizes, bins=bins, color="#4a8")
        ax.set_xscale("log")
    ax.set_xlabel("face size sqrt(box area), pixels")
    ax.set_ylabel("faces")
    ax.set_title(f"{len(sizes)} faces in {len(samples)} images")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
