"""Run folders ``<runs_root>/<task>/<name>/``: the one place a training run writes.

Layout, the same for every model family::

    config.yaml                  the typed config, resolved (a config file again: --config)
    config.json                  the same plus what the run derived (backend, device layout, data)
    metrics.csv                  one row per epoch (train and ``val_`` columns, learning rate)
    best.keras / last.keras      weights (family-specific extra files beside them)
    backup/                      resume state: the same command resumes a stopped or killed run
    tensorboard/                 ``train/`` and ``validation/`` scalars (and images), no TensorFlow needed
    loss*.png, predictions.png   plots

``runs/`` is git-ignored.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .plots import read_metrics

log = logging.getLogger(__name__)

__all__ = ["Run"]


def _json_ready(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


class Run:
    """A run folder and the files every family writes into it.

    Args:
        task: task folder (``detect``, ``embed``, ``attributes``, ``transfer``, ``reenact``).
        name: run name.
        root: parent of the task folders.
        path: an explicit folder instead of ``root/task/name`` (runs a caller placed elsewhere).
        chief: whether this process writes (data-parallel hosts other than host 0 do not).
    """

    def __init__(self, task: str, name: str, root: str = "runs", path: Optional[str] = None,
                 chief: bool = True) -> None:
        self.task, self.name = task, name
        self.path = path or os.path.join(root, task, name)
        self.chief = chief
        self._writers: Dict[str, Any] = {}
        if chief:
            os.makedirs(self.path, exist_ok=True)

    @classmethod
    def for_config(cls, task: str, cfg, chief: bool = True) -> "Run":
        """The folder of a :class:`~.config.TrainingConfig` (its ``runs_root`` and ``name``)."""
        return cls(task, cfg.name, cfg.runs_root, chief=chief)

    def file(self, *parts: str) -> str:
        """A path inside the run folder."""
        return os.path.join(self.path, *parts)

    @property
    def metrics_csv(self) -> str:
        return self.file("metrics.csv")

    @property
    def backup_dir(self) -> str:
        return self.file("backup")

    @property
    def tensorboard_dir(self) -> str:
        return self.file("tensorboard")

    # -- files -------------------------------------------------------------------------------------

    def write_config(self, config: Mapping[str, Any], fields: Optional[Sequence[str]] = None) -> str:
        """``config.json`` with every resolved value and ``config.yaml`` with the config's own ``fields``
        (all keys when None): the YAML is a config file again (``--config runs/…/config.yaml``), the
        JSON also records what the run derived (backend, device layout, data sizes). Returns the JSON path.
        """
        plain = _json_ready(dict(config))
        path = self.write_json("config.json", plain)
        import yaml

        own = plain if fields is None else {k: v for k, v in plain.items() if k in set(fields)}
        with open(self.file("config.yaml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(own, fh, sort_keys=True)
        return path

    def write_json(self, name: str, obj: Any) -> str:
        """``<run>/<name>`` as indented JSON (non-JSON values as strings); returns the path."""
        path = self.file(name)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        return path

    def write_rows_csv(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Optional[str]:
        """Rows of dicts (same keys) as ``<run>/<name>``; floats with 6 significant digits."""
        if not rows:
            return None
        path = self.file(name)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
        return path

    # -- metrics -----------------------------------------------------------------------------------

    def log_epoch(self, epoch: int, logs: Mapping[str, Any], csv_name: str = "metrics.csv") -> None:
        """One epoch of a hand-written training loop: a ``metrics.csv`` row (columns fixed by the first
        row, as Keras' ``CSVLogger``; a resumed run appends) and TensorBoard scalars.

        Args:
            epoch: 0-based epoch.
            logs: metric name -> value; ``val_`` names go to TensorBoard's ``validation`` run.
            csv_name: CSV file in the run folder.
        """
        if not self.chief:
            return
        path = self.file(csv_name)
        new = not os.path.isfile(path) or os.path.getsize(path) == 0
        if new:
            fields = ["epoch"] + list(logs)
        else:
            with open(path, newline="", encoding="utf-8") as fh:
                fields = next(csv.reader(fh))
        with open(path, "a", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", restval="NA")
            if new:
                w.writeheader()
            w.writerow({"epoch": epoch, **{k: _cell(v) for k, v in logs.items()}})
        from .tensorboard import write_epoch_scalars

        write_epoch_scalars(self.tensorboard, logs, epoch)
        for w in self._writers.values():
            w.flush()

    def tensorboard(self, sub: str = "train"):
        """The :class:`~.tensorboard.EventWriter` of ``tensorboard/<sub>`` (one per sub-folder)."""
        if sub not in self._writers:
            from .tensorboard import EventWriter

            self._writers[sub] = EventWriter(os.path.join(self.tensorboard_dir, sub))
        return self._writers[sub]

    def metrics(self, csv_name: str = "metrics.csv") -> Dict[str, List[float]]:
        """Columns of the metrics CSV so far (``{}`` before the first epoch)."""
        return read_metrics(self.file(csv_name))

    def best_so_far(self, key: str, mode: str = "max") -> Optional[float]:
        """Best logged value of ``key`` when the run is being resumed (a backup exists), else None:
        a resumed run must not overwrite ``best.keras`` with a worse epoch."""
        values = [v for v in self.metrics().get(key, []) if math.isfinite(v)]
        if not values or not os.path.isdir(self.backup_dir):
            return None
        return max(values) if mode == "max" else min(values)

    def close(self) -> None:
        """Close the TensorBoard writers."""
        for w in self._writers.values():
            w.close()
        self._writers = {}


def _cell(v: Any) -> Any:
    """A CSV cell: floats in full precision, NaN as ``nan``, the rest as is."""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "nan"
    try:
        return repr(float(v)) if hasattr(v, "__float__") and not isinstance(v, (int, bool)) else v
    except (TypeError, ValueError):
        return v
