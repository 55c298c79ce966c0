"""Plots of a run folder: curves of ``metrics.csv`` and grids of predicted boxes.

* :func:`plot_train_val`: the tutorials' plots, one per loss, train against validation
  (``loss_total.png``, ``loss_class.png``, ``loss_box.png`` for the detectors);
* :func:`plot_metrics`: one figure of panels, each a group of columns (``loss.png``); by default the
  loss-like columns in one panel and every other metric in a second;
* :func:`prediction_grid`: images with predicted (green) and true (blue) boxes.

Plots are skipped with one log line where matplotlib is not installed: a run never fails for a figure.
"""

from __future__ import annotations

import csv
import logging
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["read_metrics", "plot_train_val", "plot_metrics", "prediction_grid"]

#: columns that are bookkeeping, not curves.
_NOT_CURVES = ("epoch", "learning_rate", "lr", "elapsed_s")


def read_metrics(csv_path: str) -> Dict[str, List[float]]:
    """Columns of a metrics CSV (Keras ``CSVLogger`` or :class:`~.run.Run`) as float lists; cells that are
    not numbers (``NA``, empty) become NaN. A missing file gives ``{}``."""
    cols: Dict[str, List[float]] = {}
    if not os.path.isfile(csv_path):
        return cols
    with open(csv_path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for k, v in row.items():
                try:
                    cols.setdefault(k, []).append(float(v))
                except (TypeError, ValueError):
                    cols.setdefault(k, []).append(float("nan"))
    return cols


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: no plots")
        return None
    return plt


def _epochs(cols: Dict[str, List[float]]) -> np.ndarray:
    """1-based epoch numbers (the CSV's ``epoch`` column is 0-based; row order where it is absent)."""
    n = len(next(iter(cols.values())))
    return np.asarray(cols["epoch"]) + 1 if "epoch" in cols else np.arange(1, n + 1)


def plot_train_val(csv_path: str, out_dir: str,
                   names: Sequence[tuple] = (("loss", "total"), ("class_loss", "class"), ("box_loss", "box"))
                   ) -> List[str]:
    """One plot per ``(column, title)``: the column against its ``val_`` column per epoch, written as
    ``<out_dir>/loss_<title>.png``. Returns the written paths (columns absent from the CSV are skipped)."""
    cols = read_metrics(csv_path)
    plt = _pyplot() if cols else None
    if plt is None:
        return []
    epochs = _epochs(cols)
    written = []
    for key, title in names:
        if key not in cols:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        ax.plot(epochs, cols[key], color="teal", label=key)
        if f"val_{key}" in cols:
            ax.plot(epochs, cols[f"val_{key}"], color="orange", label=f"val_{key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"{title} loss")
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, f"loss_{title}.png")
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def default_panels(columns: Sequence[str]) -> List[List[str]]:
    """Loss-like columns in one panel, every other metric (bookkeeping aside) in a second."""
    curves = [c for c in columns if c not in _NOT_CURVES]
    losses = [c for c in curves if "loss" in c]
    other = [c for c in curves if c not in losses]
    return [p for p in (losses, other) if p]


def plot_metrics(csv_path: str, png_path: str, panels: Optional[Sequence[Sequence[str]]] = None,
                 title: str = "") -> Optional[str]:
    """A figure of side-by-side panels of ``metrics.csv`` columns against the epoch.

    Args:
        csv_path: metrics CSV.
        png_path: figure to write.
        panels: column groups, one panel each; columns absent or all-NaN are left out, and a panel left
            empty is dropped. None: :func:`default_panels`.
        title: figure title.

    Returns:
        ``png_path``, or None when there was nothing to draw.
    """
    cols = read_metrics(csv_path)
    if not cols:
        return None
    groups = [[c for c in p if c in cols and np.isfinite(cols[c]).any()]
              for p in (panels if panels is not None else default_panels(list(cols)))]
    groups = [g for g in groups if g]
    plt = _pyplot() if groups else None
    if plt is None:
        return None
    epochs = _epochs(cols)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups) + 1, 3.8), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for c in group:
            y = np.asarray(cols[c])
            ok = np.isfinite(y)
            ax.plot(epochs[ok], y[ok], label=c)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
    return png_path


def prediction_grid(images: Sequence[np.ndarray], detections: Sequence[Sequence[tuple]], path: str,
                    ground_truth: Optional[Sequence[np.ndarray]] = None, cols: int = 4, tile: int = 256) -> str:
    """Save a grid of BGR images with predicted boxes (green, score) and true boxes (blue).

    Args:
        images: BGR ``uint8`` images.
        detections: per image a list of ``((x1, y1, x2, y2), score)`` in that image's pixels.
        path: PNG to write.
        ground_truth: optional per image ``[G, 4]`` true boxes (``x1, y1, x2, y2`` pixels).
        cols: tiles per row.
        tile: tile side in pixels (each image is scaled to fit).
    """
    import cv2

    tiles = []
    for i, img in enumerate(images):
        scale = tile / max(img.shape[:2])
        canvas = np.zeros((tile, tile, 3), np.uint8)
        small = cv2.resize(img, (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))))
        canvas[:small.shape[0], :small.shape[1]] = small
        if ground_truth is not None:
            for b in np.asarray(ground_truth[i]).reshape(-1, 4):
                p = (b * scale).astype(int)
                cv2.rectangle(canvas, (p[0], p[1]), (p[2], p[3]), (255, 128, 0), 1)
        for box, score in detections[i]:
            p = (np.asarray(box) * scale).astype(int)
            cv2.rectangle(canvas, (p[0], p[1]), (p[2], p[3]), (0, 255, 0), 1)
            cv2.putText(canvas, f"{score:.2f}", (p[0], max(8, p[1] - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                        (0, 255, 0), 1, cv2.LINE_AA)
        tiles.append(canvas)
    while len(tiles) % cols:
        tiles.append(np.zeros((tile, tile, 3), np.uint8))
    rows = [np.concatenate(tiles[r:r + cols], axis=1) for r in range(0, len(tiles), cols)]
    cv2.imwrite(path, np.concatenate(rows, axis=0))
    return path
