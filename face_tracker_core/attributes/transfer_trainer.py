"""The "is it person X" transfer run on the shared engine: :class:`TransferTrainConfig` and
:class:`TransferTrainer` (run folder ``runs/transfer/<name>/``).

Two protocols (:mod:`.transfer`): the benchmark over people of an identity folder that the base never
saw (``identity_root``), or one person's classifier from folders of photos (``positives`` /
``negatives``, optional ``unseen``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Optional

from ..engine import Trainer, TrainingConfig
from ..engine.plots import plot_metrics
from ..errors import DataError

log = logging.getLogger(__name__)

__all__ = ["TransferTrainConfig", "TransferTrainer", "train_transfer"]

#: Head options that default to :data:`.transfer_head.DEFAULT_HEAD` when None.
HEAD_OPTIONS = ("pooling", "solver", "copies", "l2")


@dataclass
class TransferTrainConfig(TrainingConfig):
    """Everything that defines a transfer run (written to ``config.json``).

    Attributes:
        base: attribute model (``.keras``) whose conv base is reused, frozen; None: the shipped one.
        identity_root: folder of person folders: run the benchmark on ``targets`` people the base never
            saw, each with at least ``min_photos`` usable photos.
        positives / negatives / unseen: folders for one person's classifier (see
            :func:`.transfer.train_person_classifier`).
        cache_root: where face crops are cached; ``detector``: the backend that finds the faces.
        epochs / lr: the ``adam`` solver's epochs and initial learning rate.
        unfreeze_top_epochs: second phase with the base's top block unfrozen (lr 1e-4); 0: none.
        normalize: L2-normalise the features fed to the neuron.
        pooling / solver / copies / l2: head options; None: :data:`.transfer_head.DEFAULT_HEAD`.
    """

    # Fields in alphabetical order, as config.yaml lists them; the docstring groups them by role.
    base: Optional[str] = None
    cache_root: str = os.path.join("runs", "cache", "attributes")
    copies: Optional[int] = None
    detector: str = "default"
    epochs: int = 30
    identity_root: Optional[str] = None
    l2: Optional[float] = None
    lr: float = 0.05
    min_photos: int = 12
    name: str = "transfer"
    negatives: Optional[str] = None
    normalize: bool = True
    pooling: Optional[str] = None
    positives: Optional[str] = None
    seed: int = 0
    solver: Optional[str] = None
    targets: int = 5
    unfreeze_top_epochs: int = 0
    unseen: Optional[str] = None

    def head(self) -> dict:
        """The head options that are set (the rest come from ``DEFAULT_HEAD``)."""
        return {k: getattr(self, k) for k in HEAD_OPTIONS if getattr(self, k) is not None}


class TransferTrainer(Trainer):
    """One transfer run: :meth:`train` returns the summary written to ``summary.json``.

    The run folder holds ``results.csv`` (benchmark) or ``person.keras`` + ``.json`` (one person), each
    head's training curve ``metrics_<target>.csv`` with its plot (``loss_<target>.png``; one person:
    ``loss.png``) and TensorBoard scalars under ``tensorboard/metrics_<target>/``.

    Raises:
        DataError: neither ``identity_root`` nor ``positives`` and ``negatives`` configured.
    """

    task = "transfer"

    def __init__(self, cfg: TransferTrainConfig, dist=None) -> None:
        if not cfg.identity_root and not (cfg.positives and cfg.negatives):
            raise DataError("give --positives and --negatives, or --identity-root")
        super().__init__(cfg, dist)
        from .predictor import DEFAULT_MODEL

        self.base_path = cfg.base or DEFAULT_MODEL
        self.summary: dict = {}

    def resolved_config(self) -> dict:
        """The config with the attribute model actually used."""
        return {**super().resolved_config(), "base": self.base_path}

    def setup(self) -> None:
        """The cropper of the base's crop geometry (its sidecar)."""
        from .crops import FaceCropper
        from .model import load_model

        crop = load_model(self.base_path)[1].get("crop", {})
        self.cropper = FaceCropper(self.cfg.detector, margin=crop.get("margin", 0.4), size=crop.get("size", 64),
                                   color=crop.get("color", "rgb"))

    def fit(self) -> None:
        """The benchmark or the one-person classifier (:mod:`.transfer`)."""
        from .transfer import train_person_classifier, transfer_benchmark

        cfg = self.cfg
        common = {"cropper": self.cropper, "seed": cfg.seed, "normalize": cfg.normalize, "head": cfg.head()}
        if cfg.identity_root:
            self.summary = transfer_benchmark(self.base_path, cfg.identity_root, self.run, cfg.targets,
                                              cfg.min_photos, cfg.epochs, cfg.lr, cfg.unfreeze_top_epochs,
                                              cfg.cache_root, **common)
        else:
            self.summary = train_person_classifier(self.base_path, cfg.positives, cfg.negatives, self.run,
                                                   cfg.unseen, cfg.epochs, cfg.lr, cfg.unfreeze_top_epochs,
                                                   cfg.cache_root, **common)

    def finish(self) -> dict:
        """Each head's loss plot; returns the summary."""
        if "targets" in self.summary:
            for t in self.summary["targets"]:
                plot_metrics(self.run.file(f"metrics_{t}.csv"), self.run.file(f"loss_{t}.png"), title=f"is it {t}")
        else:
            t = self.summary["target"]
            plot_metrics(self.run.file(f"metrics_{t}.csv"), self.run.file("loss.png"), title=f"is it {t}")
        return self.summary


def train_transfer(cfg: TransferTrainConfig) -> dict:
    """Run a transfer experiment (:class:`TransferTrainer`); returns its summary."""
    return TransferTrainer(cfg).train()
