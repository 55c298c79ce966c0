"""Keras callbacks every ``model.fit`` training run shares (built by :func:`run_callbacks`).

* best / last checkpoints (``best.keras`` on a monitored validation metric, ``last.keras``);
* early stopping;
* ``metrics.csv`` (Keras' ``CSVLogger``, appending on resume) and the learning rate as a column;
* resume state in ``backup/`` that survives a time box (:class:`TimeBox`: ``max_minutes`` /
  ``stop_epoch``): the same command continues at the next epoch;
* TensorBoard scalars (Keras' callback where ``tensorboard`` is installed, else ours);
* one log line per epoch.

Family-specific callbacks that add validation metrics to ``logs`` go first (``before``), so the
checkpoints, early stopping and CSV see them.
"""

from __future__ import annotations

import logging
import time
from typing import List, Optional, Sequence

log = logging.getLogger(__name__)

__all__ = ["run_callbacks", "time_box", "epoch_log"]


def time_box(max_minutes: Optional[float] = None, stop_epoch: Optional[int] = None):
    """A callback stopping training after ``max_minutes`` of wall time or ``stop_epoch`` epochs;
    ``time_boxed`` tells afterwards whether it did (the run is then unfinished, not done)."""
    import keras

    class TimeBox(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.time_boxed = False
            self.t0 = time.time()

        def on_train_begin(self, logs=None):
            self.t0 = time.time()
            self.time_boxed = False

        def on_epoch_end(self, epoch, logs=None):
            if stop_epoch and epoch + 1 >= stop_epoch:
                log.info("stop_epoch %d reached", stop_epoch)
                self.model.stop_training = self.time_boxed = True
            if max_minutes and time.time() - self.t0 > max_minutes * 60:
                log.warning("time limit of %.1f min reached after epoch %d: stopping (run the same command "
                            "again to resume)", max_minutes, epoch + 1)
                self.model.stop_training = self.time_boxed = True

    return TimeBox()


def _backup(backup_dir: str, box):
    import keras

    class ResumableBackup(keras.callbacks.BackupAndRestore):
        """Keras deletes the backup whenever ``fit`` returns, which would make a run cut by the time box
        start again from epoch 1: keep it then."""

        def on_train_end(self, logs=None):
            if not box.time_boxed:
                super().on_train_end(logs)

    return ResumableBackup(backup_dir)


def epoch_log(label: str = "epoch"):
    """One INFO line per epoch with every logged value (rounded), and the learning rate added to
    ``logs`` as ``lr`` (so ``metrics.csv`` has it)."""
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and "lr" not in logs and getattr(self.model, "optimizer", None) is not None:
                try:
                    logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                except Exception:  # an optimizer without a readable rate: the column is just absent
                    pass
            shown = {}
            for k, v in (logs or {}).items():
                try:
                    shown[k] = round(float(v), 4)
                except (TypeError, ValueError):
                    continue
            log.info("%s %d: %s", label, epoch + 1, shown)

    return EpochLog()


def run_callbacks(run, monitor: Optional[str] = None, mode: str = "max", patience: Optional[int] = None,
                  before: Sequence = (), max_minutes: Optional[float] = None, stop_epoch: Optional[int] = None,
                  tensorboard: bool = True, save_last: bool = True, backup: bool = True,
                  csv_name: str = "metrics.csv", append: bool = True) -> List:
    """The shared callbacks of a :class:`~.run.Run`, in the order they must run.

    Args:
        run: the run folder.
        monitor: validation metric choosing ``best.keras`` (and early stopping); None: no best checkpoint.
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        patience: early stopping after this many epochs without improvement; None: none.
        before: family callbacks that add metrics to ``logs`` (run first).
        max_minutes / stop_epoch: time box (see :func:`time_box`).
        tensorboard: write ``tensorboard/``.
        save_last: write ``last.keras`` every epoch.
        backup: resume state in ``backup/``.
        csv_name: metrics CSV in the run folder.
        append: append to an existing CSV (resume; a second phase of one run).
    """
    import keras

    box = time_box(max_minutes, stop_epoch)
    cbs = list(before) + [epoch_log()]
    if monitor:
        initial = run.best_so_far(monitor, mode)
        if initial is not None:
            log.info("resuming %s (best %s so far %.4f)", run.path, monitor, initial)
        cbs.append(keras.callbacks.ModelCheckpoint(run.file("best.keras"), monitor=monitor, mode=mode,
                                                   save_best_only=True, initial_value_threshold=initial))
    if save_last:
        cbs.append(keras.callbacks.ModelCheckpoint(run.file("last.keras")))
    if monitor and patience:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience))
    cbs.append(keras.callbacks.CSVLogger(run.file(csv_name), append=append))
    if backup:
        cbs.append(_backup(run.backup_dir, box))
    cbs.append(box)
    if tensorboard:
        from .tensorboard import tensorboard_callback

        cbs.append(tensorboard_callback(run.tensorboard_dir))
    return cbs
