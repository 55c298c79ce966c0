"""Run folders ``runs/<task>/<name>/``: resolved config, metrics CSV, plots, TensorBoard logs."""

from __future__ import annotations

import csv
import json
import logging
import os
from typing import Dict, List, Sequence

log = logging.getLogger(__name__)

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
    """CSV logger (``metrics.csv``) and TensorBoard scalars (``tb/``) callbacks for ``model.fit``."""
    import keras

    cbs = [keras.callbacks.CSVLogger(os.path.join(run_dir, csv_name), append=append)]
    try:
        cbs.append(ScalarEventLogger(os.path.join(run_dir, "tb")))
    except ImportError as exc:  # e.g. a JAX-only machine without TensorFlow: CSV + plots still there
        log.warning("TensorBoard logging disabled: %s", exc)
    return cbs


def _scalar_event_logger_class():
    import keras

    class _ScalarEventLogger(keras.callbacks.Callback):
        """Per-epoch scalars as TensorBoard event files, written with TensorFlow's own protos.

        ``keras.callbacks.TensorBoard`` needs the separate ``tensorboard`` package just to *write*
        scalars; an event file is a TFRecord file of ``Event`` protos, which TensorFlow can write alone.
        """

        def __init__(self, log_dir: str):
            super().__init__()
            import socket

            import tensorflow as tf
            from tensorflow.core.framework import summary_pb2
            from tensorflow.core.util import event_pb2

            self._pb = (event_pb2, summary_pb2)
            self.log_dir = log_dir
            self._writers = {}
            self._tf = tf
            self._host = socket.gethostname()

        def _writer(self, sub: str):
            if sub not in self._writers:
                import time

                d = os.path.join(self.log_dir, sub)
                os.makedirs(d, exist_ok=True)
                path = os.path.join(d, f"events.out.tfevents.{int(time.time())}.{self._host}.{os.getpid()}")
                w = self._tf.io.TFRecordWriter(path)
                ev = self._pb[0].Event(wall_time=time.time(), file_version="brain.Event:2")
                w.write(ev.SerializeToString())
                self._writers[sub] = w
            return self._writers[sub]

        def on_epoch_end(self, epoch, logs=None):
            import time

            event_pb2, summary_pb2 = self._pb
            groups = {}
            for k, v in (logs or {}).items():
                sub, tag = ("validation", k[4:]) if k.startswith("val_") else ("train", k)
                try:
                    groups.setdefault(sub, []).append(summary_pb2.Summary.Value(tag=f"epoch_{tag}",
                                                                                simple_value=float(v)))
                except (TypeError, ValueError):
                    continue
            for sub, values in groups.items():
                ev = event_pb2.Event(wall_time=time.time(), step=int(epoch), summary=summary_pb2.Summary(value=values))
                w = self._writer(sub)
                w.write(ev.SerializeToString())
                w.flush()

        def on_train_end(self, logs=None):
            for w in self._writers.values():
                w.close()
            self._writers = {}

    return _ScalarEventLogger


def ScalarEventLogger(log_dir: str):  # noqa: N802 - behaves like a class for the caller
    """Keras callback writing epoch scalars to TensorBoard event files under ``log_dir/{train,validation}``.

    Raises:
        ImportError: TensorFlow is not installed.
    """
    return _scalar_event_logger_class()(log_dir)


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
