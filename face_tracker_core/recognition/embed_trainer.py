"""Training of our embedders (``facenet``: triplet loss, ``siamese``: pair loss) on aligned crops,
on the shared training engine (:mod:`face_tracker_core.engine`).

P x K batches of augmented crops (:mod:`.embed_data`), a learning rate that follows a wall-time
budget, and the pair separability of held-out people after every epoch, which picks the kept
weights (:mod:`.embed_callbacks`).

Writes ``<runs_root>/embedder/<name>/``: ``config.json`` + ``config.yaml``, ``metrics.csv``,
``tensorboard/``, ``best.weights.h5`` (best validation weights so far), ``model.keras`` +
``model.json`` (card, see :mod:`.embed_model`) and ``loss.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..engine.callbacks import run_callbacks
from ..engine.config import TrainingConfig
from ..engine.trainer import Trainer
from ..errors import DataError
from .embed_data import TRAIN_SPLITS, center_crop, load_crops, make_batches, training_people

log = logging.getLogger(__name__)

__all__ = ["EmbedderTrainConfig", "EmbedderTrainer", "train_embedder"]

MODELS = ("facenet", "siamese")
SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass
class EmbedderTrainConfig(TrainingConfig):
    """Settings of an embedder training run.

    Attributes:
        name: run name (folder ``<runs_root>/embedder/<name>/``); empty: the model's name.
        crops: aligned-crops ``.npz`` (:func:`~.embed_data.build_crops`); its ``input_size``,
            ``padding`` and ``store_size`` replace this config's.
        model: ``facenet`` (triplet loss) or ``siamese`` (pair loss).
        input_size: network input side, pixels.
        padding: alignment padding of the inference crop (fraction of the eye-mouth frame).
        store_size: stored crop side, pixels (``input_size`` + margin for augmentation).
        dim: embedding size.
        width: facenet channel multiplier.
        filters: siamese tower channels per block.
        dropout: dropout before the embedding projection.
        p / k: people per batch / photos per person (P x K batches; P is global when data-parallel).
        margin: triplet margin (squared distance).
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        warmup: fraction of the time budget with linear warm-up, in [0, 1).
        time_budget_s: training stops after this much wall time, seconds (the schedule follows it).
        max_epochs: epoch limit.
        steps_per_epoch: batches per epoch.
        seed: weights, sampling and augmentation seed.
        flip: test-time flip averaging (validation and card).
        erase: random-erasing probability per training view (occlusion robustness).
        init: start from this embedder (``.keras`` file or ``.weights.h5`` of the same network).
        schedule: ``cosine`` over the budget, or ``constant`` (fine-tuning / weight averaging).
        swa_start: from this epoch (0-based) on, average the weights of every epoch end (SWA); -1: off.
        fold_val: train on the validation people too (a fixed recipe's final run: nothing is watched,
            the last weights are kept; the held-out test people stay untouched).
        train_splits: crops-file people splits trained on (e.g. + ``identify``: more people, but then
            the open-set identification test is no longer held out for this model).
    """

    # Fields in alphabetical order, as config.yaml lists them; the docstring groups them by role.
    crops: str = ""
    dim: int = 128
    dropout: float = 0.2
    erase: float = 0.0
    filters: Tuple[int, ...] = (32, 64, 128, 256)
    flip: bool = True
    fold_val: bool = False
    init: Optional[str] = None
    input_size: int = 112
    k: int = 4
    lr: float = 2e-3
    margin: float = 0.2
    max_epochs: int = 1000
    model: str = "facenet"
    name: str = ""
    p: int = 64
    padding: float = 0.2
    schedule: str = "cosine"
    seed: int = 0
    steps_per_epoch: int = 50
    store_size: int = 128
    swa_start: int = -1
    time_budget_s: float = 180.0
    train_splits: Tuple[str, ...] = ("train",)
    warmup: float = 0.05
    weight_decay: float = 5e-4
    width: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.model
        if self.model not in MODELS:
            raise ValueError(f"unknown model '{self.model}' (facenet or siamese)")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if not 0.0 <= float(self.warmup) < 1.0:
            raise ValueError(f"warmup is a fraction of the time budget in [0, 1), got {self.warmup!r}")
        if not self.train_splits or set(self.train_splits) - set(TRAIN_SPLITS):
            raise ValueError(f"train_splits must be a non-empty subset of {', '.join(TRAIN_SPLITS)}; "
                             f"got {list(self.train_splits)}")
        self.filters = tuple(self.filters)
        self.train_splits = tuple(self.train_splits)


def build_embedder(cfg: EmbedderTrainConfig):
    """The embedding network of ``cfg``, the model trained and its loss.

    Returns:
        ``(net, train_model, loss)``: for ``facenet`` the network itself with the semi-hard triplet
        loss; for ``siamese`` the tower, the pair model around it and the balanced pair loss.
    """
    if cfg.model == "facenet":
        from .facenet import build_facenet
        from .triplet import triplet_semihard_loss

        net = build_facenet(cfg.input_size, cfg.dim, cfg.width, cfg.dropout)
        margin = cfg.margin

        def loss(y, e):
            return triplet_semihard_loss(y, e, margin)

        return net, net, loss
    from .siamese import balanced_pair_bce, build_pair_model, build_tower

    net = build_tower(cfg.input_size, cfg.dim, filters=tuple(cfg.filters), dropout=cfg.dropout)
    return net, build_pair_model(net), balanced_pair_bce


class EmbedderTrainer(Trainer):
    """One embedder training run (see the module docstring).

    Args:
        cfg: the run's settings.
        dist: data-parallel layout (P people per global batch split over the data shards; host 0
            writes the run folder); None: one device.

    Attributes:
        net: the embedding network (``model`` is what is trained: the same, or the siamese pair model).
        validation: the :class:`~.embed_callbacks.PairValidation` callback of the run.
        summary: what :meth:`finish` returns (``model_path``, ``train_seconds``, final ``val_*``).
    """

    task = "embedder"

    def __init__(self, cfg: EmbedderTrainConfig, dist=None) -> None:
        super().__init__(cfg, dist)
        self.net = None
        self.batches = None
        self.val_x, self.val_y = np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, np.int32)
        self.people: Dict[str, Any] = {}
        self.meta: Dict[str, Any] = {}
        self.validation = None
        self.final: Dict[str, Any] = {}
        self.train_seconds = 0.0

    def resolved_config(self) -> Dict[str, Any]:
        """The config, the backend, the layout and, once the crops are loaded, the people trained on."""
        return {**super().resolved_config(), **self.people}

    def setup(self) -> None:
        """Load the crops, choose the training and validation people, build and compile the network."""
        import keras

        cfg = self.cfg
        data = load_crops(cfg.crops)
        self.meta = meta = data["meta"]
        self.cfg = cfg = cfg.replace(input_size=meta["input_size"], padding=meta["padding"],
                                     store_size=meta["store_size"])
        tr, va = training_people(data, cfg.train_splits, cfg.fold_val)
        x_tr, y_tr = data["images"][tr], data["label"][tr]
        self.val_x, self.val_y = center_crop(data["images"][va], cfg.input_size), data["label"][va]
        if len(np.unique(y_tr)) < 2:
            raise DataError(f"{cfg.crops}: needs at least 2 training people")
        self.people = dict(crops=os.path.abspath(cfg.crops), train_people=int(len(np.unique(y_tr))),
                           train_faces=int(len(y_tr)), val_people=int(len(np.unique(self.val_y))),
                           val_faces=int(len(self.val_y)))
        if self.is_chief:  # again, now with the crops' sizes and the people
            self.write_config()
        self.net, self.model, loss = build_embedder(cfg)
        if cfg.init:
            from .embed_model import load_init_weights

            load_init_weights(self.net, cfg.init)
        log.info("%s: %d parameters, %d training faces of %d people, backend %s", cfg.model,
                 self.net.count_params(), len(y_tr), self.people["train_people"], keras.backend.backend())
        opt = keras.optimizers.AdamW(learning_rate=cfg.lr, weight_decay=cfg.weight_decay)
        self.model.compile(optimizer=opt, loss=loss)
        # Optimizer slots made now, not inside the first traced step: otherwise TensorFlow traces the
        # train step twice (once to create the variables), which costs ~25 s per run on 2 cores.
        opt.build(self.model.trainable_variables)
        from ..engine import distributed

        self.batches = distributed.sharded_dataset(self.topo, cfg.seed, cfg.p, cfg.k, lambda seed, p: make_batches(
            x_tr, y_tr, cfg.input_size, p, cfg.k, cfg.steps_per_epoch, seed, cfg.erase))

    def family_callbacks(self):
        """The wall-time schedule and the pair validation (they add ``lr``, ``elapsed_s``, ``val_*``)."""
        from .embed_callbacks import PairValidation, WallTimeSchedule

        t0 = time.time()
        elapsed = self.topo.elapsed_fn(t0) or (lambda: time.time() - t0)
        cfg = self.cfg
        self.validation = PairValidation(self.net, self.val_x, self.val_y, cfg.flip, self.run.file("best.weights.h5"),
                                         cfg.swa_start, cfg.init)
        return [WallTimeSchedule(cfg.lr, cfg.warmup, cfg.schedule, cfg.time_budget_s, elapsed), self.validation]

    def callbacks(self):
        """Family callbacks, then the engine's ``metrics.csv``, TensorBoard and epoch log. No
        ``best.keras``/``last.keras``/resume backup: the validation keeps the best weights itself and a
        wall-time schedule cannot resume; each run writes a fresh ``metrics.csv``."""
        return run_callbacks(self.run, before=self.family_callbacks(), save_last=False, backup=False,
                             append=False) + self.topo.callbacks()

    def fit(self) -> None:
        """Train until the time budget or ``max_epochs``, then keep the best validated weights and score them."""
        t0 = time.time()
        self.model.fit(self.batches, epochs=self.cfg.max_epochs, callbacks=self.callbacks(), verbose=0)
        self.train_seconds = time.time() - t0
        val = self.validation
        if val.best_weights is not None:
            log.info("keeping the weights of %s (validation score %.4f)", val.best_source, val.best)
            self.net.set_weights(val.best_weights)
        from .embed_model import final_validation

        # Before the layout is left (teardown): the same place and devices as the epochs' validation.
        self.final = final_validation(self.net, self.cfg, self.val_x, self.val_y, self.model)

    def finish(self) -> Dict[str, Any]:
        """``model.keras`` + card + ``loss.png``; returns ``{"model_path", "train_seconds", "val_acc", "val_auc"}``."""
        import keras

        from .embed_model import write_model

        info = dict(self.people, backend=keras.backend.backend(), selected=self.validation.best_source,
                    train_seconds=self.train_seconds, data=self.meta.get("root"))
        return write_model(self.net, self.cfg, self.run, info, self.final)


def train_embedder(cfg: EmbedderTrainConfig, dist=None) -> Dict[str, Any]:
    """Train ``facenet`` or ``siamese`` on ``cfg.crops``; returns :meth:`EmbedderTrainer.finish`'s summary
    (on data-parallel hosts other than host 0: the run folder)."""
    return EmbedderTrainer(cfg, dist).train()
