"""The embedder training's own Keras callbacks: the wall-time learning-rate schedule and the
validation that picks the kept weights (pair separability of held-out people, weight averaging).

Imports Keras: import this module only after the device layout is set up (see
:meth:`~face_tracker_core.engine.trainer.Trainer.make_run`).
"""

from __future__ import annotations

import logging
import math
from typing import Callable, List, Optional

import keras
import numpy as np

from .embed_metrics import embed_crops, pair_separability, selection_score

log = logging.getLogger(__name__)

__all__ = ["WallTimeSchedule", "PairValidation"]


class WallTimeSchedule(keras.callbacks.Callback):
    """Learning rate over the wall-time budget (linear warm-up, then cosine or constant); stops the
    run when the budget is spent and adds ``lr`` and ``elapsed_s`` (seconds) to every epoch's logs.

    Set before every step, not every epoch: on a slow machine an epoch can last longer than the
    whole warm-up, which a per-epoch schedule would spend at its first (near-zero) value.

    Args:
        lr: peak learning rate.
        warmup: fraction of the budget with linear warm-up, in [0, 1).
        schedule: ``"cosine"`` (decays to 0 at the end of the budget) or ``"constant"``.
        budget_s: training wall time, seconds.
        elapsed: seconds since training started (several hosts: host 0's clock, so every host
            uses the same rate and stops at the same epoch).
    """

    def __init__(self, lr: float, warmup: float, schedule: str, budget_s: float,
                 elapsed: Callable[[], float]) -> None:
        super().__init__()
        self.lr, self.warmup, self.schedule, self.budget_s = lr, warmup, schedule, budget_s
        self.elapsed = elapsed

    def rate(self, fraction: float) -> float:
        """Learning rate after ``fraction`` of the budget (never under a thousandth of the peak)."""
        f, w = fraction, self.warmup
        if self.schedule == "constant":
            lr = self.lr * (f / w if f < w else 1.0)
        else:
            lr = self.lr * (f / w if f < w else 0.5 * (1 + math.cos(math.pi * (f - w) / (1 - w))))
        return max(lr, self.lr * 1e-3)

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate.assign(self.rate(min(1.0, self.elapsed() / self.budget_s)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(np.asarray(self.model.optimizer.learning_rate))
            logs["elapsed_s"] = self.elapsed()
        if self.elapsed() >= self.budget_s:
            self.model.stop_training = True


class PairValidation(keras.callbacks.Callback):
    """Pair separability of the validation people after every epoch (``val_acc``, ``val_auc`` in the
    logs); keeps the best weights by :func:`~.embed_metrics.selection_score`, in memory and in
    ``best_path``.

    With ``swa_start >= 0`` it also keeps the running average of the weights of every epoch end from
    that epoch on (stochastic weight averaging, Izmailov et al. 2018: the average of the points a
    constant-LR run wanders through generalises better than any one of them; batch-norm statistics
    are averaged with the rest) and scores that average too (``swa_val_acc``, ``swa_val_auc``). When
    training starts from given weights (``init``), they are scored first, so the run can never hand
    back something worse on validation than what it started from.

    Args:
        net: the embedding network (for a siamese model, its tower).
        val_x: ``(N, S, S, 3)`` validation crops at the input size; empty: nothing is watched.
        val_y: ``(N,)`` person ids.
        flip: test-time flip averaging of the embeddings.
        best_path: ``.weights.h5`` written at each new best.
        swa_start: first averaged epoch (0-based); -1: no averaging.
        init: the starting weights' file (scored before the first epoch), or None.

    Attributes:
        best / best_weights / best_source: the best score, its weights and what they are
            (``"init"``, ``"epoch 3"``, ``"SWA of epochs 2-5"``); ``None`` weights while nothing was scored.
    """

    def __init__(self, net, val_x: np.ndarray, val_y: np.ndarray, flip: bool, best_path: str,
                 swa_start: int = -1, init: Optional[str] = None) -> None:
        super().__init__()
        self.net, self.val_x, self.val_y, self.flip = net, val_x, val_y, flip
        self.best_path, self.swa_start, self.init = best_path, swa_start, init
        self.best, self.best_weights, self.best_source = -1.0, None, None
        self.swa: Optional[List[np.ndarray]] = None
        self.swa_n = 0

    def _score(self, weights, source: str, logs, prefix: str = ""):
        m = pair_separability(embed_crops(self.net, self.val_x, self.flip), self.val_y)
        if logs is not None:
            logs.update({prefix + k: v for k, v in m.items()})
        key = selection_score(m)
        if key > self.best:
            self.best, self.best_weights, self.best_source = key, weights, source
            # On disk too: a crash later in the run must not lose the training.
            self.net.save_weights(self.best_path)
        return m

    def on_train_begin(self, logs=None):
        if self.init and len(self.val_x):
            m = self._score(self.net.get_weights(), "init", None)
            log.info("start (%s): val_acc %.4f val_auc %.4f", self.init, m["val_acc"], m["val_auc"])

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or len(self.val_x) == 0:  # nothing watched (e.g. fold_val)
            return
        current = self.net.get_weights()
        self._score(current, f"epoch {epoch + 1}", logs)
        if self.swa_start >= 0:  # the CSV logger fixes its columns at the first epoch
            logs.update(swa_val_acc=float("nan"), swa_val_auc=float("nan"))
        if 0 <= self.swa_start <= epoch:
            self._average(current, epoch, logs)

    def _average(self, current: List[np.ndarray], epoch: int, logs) -> None:
        """Add this epoch's weights to the running average and score the average."""
        self.swa_n += 1
        if self.swa is None:
            self.swa = [np.array(w, np.float64) for w in current]
        else:
            for a, w in zip(self.swa, current):
                a += (w - a) / self.swa_n
        avg = [a.astype(w.dtype) for a, w in zip(self.swa, current)]
        self.net.set_weights(avg)
        self._score(avg, f"SWA of epochs {self.swa_start + 1}-{epoch + 1}", logs, "swa_")
        self.net.set_weights(current)  # training goes on from its own weights
