"""Run folders ``runs/<task>/<name>/``: resolved config, metrics CSV, plots, TensorBoard logs."""

from __future__ import annotations

import csv
import json
import os
from typing import Dict, List, Sequence

__all__ = ["make_run_dir", "write_json", "write_rows_csv", "plot_history", "keras_callbacks"]


def make_run_dir(runs_root: str, task: str, name: str) -> str:
    """Create (or reuse) ``runs_root/task/name`` and return it."""
    path = os.path.join(runs_root, task, name)
    os.makedirs(path, exist_ok=True)
    return path


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True, default=str)


def write_rows_csv(path: str, rows: Sequence[Dict]) -> None:
    """Rows of dicts (same keys) to CSV."""
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def keras_callbacks(run_dir: str, csv_name: str = "metrics.csv", append: bool = False) -> List:
    """CSV logger (``metrics.csv``) and TensorBoard scalars (``tb/{train,validation}``) callbacks for
    ``model.fit`` (the scalars through :func:`face_tracker_core.engine.tensorboard.epoch_logger`, which needs
    neither TensorFlow nor the ``tensorboard`` package)."""
    import keras

    from ..engine.tensorboard import epoch_logger

    return [keras.callbacks.CSVLogger(os.path.join(run_dir, csv_name), append=append),
            epoch_logger(os.path.join(run_dir, "tb"))]


def plot_history(csv_path: str, png_path: str, title: str = "") -> None:
    """Plot every ``loss``-like and accuracy-like column of a Keras ``CSVLogger`` file."""
    if not os.path.isfile(csv_path):
        return
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):  # CSVLogger writes "NA" for a metric missing in an epoch
            return float("nan")

    x = list(range(1, len(rows) + 1))
    cols = [c for c in rows[0] if c not in ("epoch", "learning_rate", "lr")]
    loss_cols = [c for c in cols if "loss" in c]
    other = [c for c in cols if c not in loss_cols]
    fig, axes = plt.subplots(1, 2 if other else 1, figsize=(11 if other else 6, 4), squeeze=False)
    for c in loss_cols:
        axes[0, 0].plot(x, [num(r[c]) for r in rows], label=c)
    axes[0, 0].set_xlabel("epoch")
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend()
    if other:
        for c in other:
            axes[0, 1].plot(x, [num(r[c]) for r in rows], label=c)
        axes[0, 1].set_xlabel("epoch")
        axes[0, 1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
