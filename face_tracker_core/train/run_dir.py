"""Run folders ``runs/<task>/<name>/``: resolved config, metrics.csv, the tutorials' three loss plots.

Every training run writes only here (``runs/`` is git-ignored).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)


def make_run_dir(task: str, name: str, root: str = "runs") -> str:
    """Create (or reuse, for resuming) ``<root>/<task>/<name>``."""
    path = os.path.join(root, task, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_config(run_dir: str, config: Mapping[str, Any]) -> str:
    """Write ``config.json`` (and ``config.yaml`` when PyYAML is installed) with every resolved value."""
    path = os.path.join(run_dir, "config.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(dict(config), fh, indent=2, sort_keys=True, default=str)
    try:
        import yaml

        with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(json.loads(json.dumps(dict(config), default=str)), fh, sort_keys=True)
    except ImportError:
        pass
    return path


def load_config_file(path: str) -> Dict[str, Any]:
    """Read a YAML or JSON config file.

    Raises:
        DataError: unreadable or not a mapping (the file is named).
    """
    from ..errors import DataError

    try:
        with open(path, "r", encoding="utf-8") as fh:
            text = fh.read()
        if path.endswith((".yaml", ".yml")):
            import yaml

            cfg = yaml.safe_load(text)
        else:
            cfg = json.loads(text)
    except Exception as exc:  # yaml / json / OS errors alike: one clear line
        raise DataError(f"{path}: cannot read config ({exc})") from exc
    if not isinstance(cfg, dict):
        raise DataError(f"{path}: config must be a mapping, got {type(cfg).__name__}")
    return cfg


def read_metrics(csv_path: str) -> Dict[str, List[float]]:
    """Columns of a Keras ``CSVLogger`` file as float lists."""
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


def plot_losses(csv_path: str, out_dir: str,
                names: Sequence[tuple] = (("loss", "total"), ("class_loss", "class"), ("box_loss", "box"))
                ) -> List[str]:
    """The tutorials' three plots (train vs val per epoch): ``loss_total.png``, ``loss_class.png``,
    ``loss_box.png``. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = read_metrics(csv_path)
    written = []
    if "epoch" not in cols:
        return written
    epochs = np.asarray(cols["epoch"]) + 1
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


def prediction_grid(images: Sequence[np.ndarray], detections: Sequence[Sequence[tuple]], path: str,
                    ground_truth: Optional[Sequence[np.ndarray]] = None, cols: int = 4, tile: int = 256) -> str:
    """Save a grid of BGR images with predicted boxes (green, score) and true boxes (blue).

    Args:
        images: BGR ``uint8`` images.
        detections: per image a list of ``((x1, y1, x2, y2), score)`` in that image's pixels.
        path: PNG to write.
        ground_truth: optional per image ``[G, 4]`` true boxes.
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
