"""Training of the attribute model (and its optional identity pre-training) on the shared engine.

Pipeline (:class:`AttributeTrainer`, run folder ``runs/attributes/<name>/``):

1. read the CelebA attribute file (labels only in RAM: 200k x 40 bytes for full CelebA);
2. crop every photo once into an on-disk crop cache (given boxes or our detector);
3. split photos deterministically by a hash of their file name (or by ``list_eval_partition.txt``);
4. optionally pre-train the conv base to tell people apart on a folder of person folders
   (``../shared/data/identity/celeba``), holding out a fraction of the people so that the transfer
   task can later be measured on faces the base never saw;
5. train base + 40-sigmoid head with (optionally class-balanced) BCE, streaming batches from the
   cache; with a pre-trained base the head is trained first with the base frozen;
6. evaluate per attribute next to the majority baseline, write the run folder.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..engine import Trainer, TrainingConfig
from ..errors import DataError
from ..splits import split_items
from .celeba import read_attributes, read_bboxes, read_partition
from .crops import CropItem, FaceCropper, build_crop_cache
from .metrics import attribute_report, majority_classes, markdown_table, mean_row
from .pretrain import fit_cosine, identity_data, init_base, pretrain_distill, pretrain_identity

log = logging.getLogger(__name__)

__all__ = ["AttributeTrainConfig", "AttributeTrainer", "train_attributes", "evaluate_attribute_model",
           "attribute_data", "identity_data"]

_CELEBA = os.path.join("..", "shared", "data", "attributes", "celeba")


@dataclass
class AttributeTrainConfig(TrainingConfig):
    """Everything that defines an attribute training run (written to ``config.json``).

    Paths are as given; ``runs_root/attributes/name`` receives the outputs. Crops are ``size`` x
    ``size`` pixels, the face box grown by ``margin`` (fraction of its side) per side; learning rates
    are the peaks of cosine decays; ``*_frac`` are fractions of the photos (hash split).
    """

    # Fields in alphabetical order, as config.yaml lists them; the docstring groups them by role.
    arch: str = "resnet"
    attr_file: str = os.path.join(_CELEBA, "list_attr_celeba.txt")
    balanced_bce: bool = False
    batch_size: int = 32
    bbox_file: Optional[str] = None
    cache_root: str = os.path.join("runs", "cache", "attributes")
    color: str = "rgb"
    detector: str = "default"
    dropout: float = 0.3
    epochs: int = 60
    extra: Dict = field(default_factory=dict)
    fallback: str = "dlib_hog"
    finetune_lr: float = 3e-4
    head_epochs: int = 8
    hidden: int = 256
    images_dir: str = os.path.join(_CELEBA, "images")
    init_base: Optional[str] = None
    lr: float = 1e-3
    margin: float = 0.4
    max_photos: Optional[int] = None
    name: str = "celeba"
    partition_file: Optional[str] = None
    people_salt: str = "people-v1"
    pretrain_embed_weight: float = 1.0
    pretrain_epochs: int = 40
    pretrain_extra_detectors: List[str] = field(default_factory=list)
    pretrain_holdout: float = 0.35
    pretrain_identity: Optional[str] = None
    pretrain_lr: float = 2e-3
    pretrain_teacher: Optional[str] = None
    seed: int = 0
    size: int = 64
    split_salt: str = "celeba-attr-v1"
    test_frac: float = 0.2
    val_frac: float = 0.15


def _cropper(cfg: AttributeTrainConfig) -> FaceCropper:
    return FaceCropper(cfg.detector, margin=cfg.margin, size=cfg.size, color=cfg.color, fallback=cfg.fallback)


def attribute_data(cfg: AttributeTrainConfig, cropper: Optional[FaceCropper] = None):
    """Table, crop cache and split indices (into the cache) of the attribute photos.

    Returns:
        ``(table, cache, splits)`` with ``splits = {"train"|"val"|"test": int array}`` of usable rows.
    """
    table = read_attributes(cfg.attr_file)
    if cfg.max_photos:
        table = table.subset(range(min(cfg.max_photos, len(table))))
    if len(table) == 0:
        raise DataError(f"{cfg.attr_file}: no images listed")
    boxes = read_bboxes(cfg.bbox_file) if cfg.bbox_file else {}
    base = os.path.basename(cfg.attr_file)
    items = [CropItem(im, os.path.join(cfg.images_dir, im), boxes.get(im), f"{base} line {ln}")
             for im, ln in zip(table.images, table.lines)]
    cache = build_crop_cache(items, cropper or _cropper(cfg), cfg.cache_root, "attr")
    if cfg.partition_file:
        part = read_partition(cfg.partition_file)
        names = {0: "train", 1: "val", 2: "test"}
        sp: Dict[str, List[int]] = {"train": [], "val": [], "test": []}
        for i, im in enumerate(table.images):
            if im not in part:
                raise DataError(f"{cfg.partition_file}: no partition for '{im}' (listed in {cfg.attr_file} "
                                f"line {table.lines[i]})")
            sp[names[part[im]]].append(i)
    else:
        sp = split_items(table.images, cfg.test_frac, cfg.val_frac, cfg.split_salt)
    usable = cache.usable
    splits = {k: np.asarray([i for i in v if usable[i]], np.int64) for k, v in sp.items()}
    if len(splits["train"]) == 0:
        raise DataError(f"{cfg.attr_file}: no usable training photos ({cache.summary()})")
    return table, cache, splits


def evaluate_attribute_model(model, crops: np.ndarray, labels: np.ndarray, rows: np.ndarray, majority: np.ndarray,
                             names: List[str], threshold: float = 0.5, batch_size: int = 128):
    """Per-attribute report on ``rows`` of a crop array (see :func:`attribute_report`).

    Args:
        rows: photos to evaluate, in any order (``--split all`` concatenates test, val and train).

    Returns:
        ``(report rows, prob)``; ``prob`` is ``(len(rows), K)``, row ``j`` for photo ``rows[j]``.
    """
    from .data import predict_rows

    rows = np.asarray(rows, np.int64)
    prob = predict_rows(model, crops, rows, batch_size) if len(rows) else np.zeros((0, len(names)), np.float32)
    return attribute_report(labels[rows], prob, majority, names, threshold), prob


class AttributeTrainer(Trainer):
    """The attribute model's run (module docstring): :meth:`train` returns the summary written to
    ``summary.json``; the weights are ``attributes.keras`` (+ ``.json`` sidecar), the pre-training
    writes its own run folder ``pretrain/``."""

    task = "attributes"

    def setup(self) -> None:
        """Photos, crops and split; the conv base, pre-trained as configured; the attribute model."""
        import keras

        from .data import CropBatches
        from .losses import WeightedBCE
        from .model import build_attribute_model, build_base

        cfg = self.cfg
        self.cropper = _cropper(cfg)
        table, self.cache, splits = attribute_data(cfg, self.cropper)
        log.info("attribute photos: %s; split train/val/test = %d/%d/%d", self.cache.summary(),
                 len(splits["train"]), len(splits["val"]), len(splits["test"]))
        self.run.write_json("split.json", {k: [table.images[i] for i in v] for k, v in splits.items()})
        self.splits, self.labels, self.names = splits, table.labels.astype(np.float32), list(table.names)
        self.rate = self.labels[splits["train"]].mean(axis=0)
        self.majority = majority_classes(table.labels[splits["train"]])
        self.base = build_base(cfg.arch, (cfg.size, cfg.size, 1 if cfg.color == "gray" else 3))
        self.pre = self._pretrain()
        self.model = build_attribute_model(self.base, len(self.names), cfg.hidden, cfg.dropout)
        self.loss = WeightedBCE(self.rate if cfg.balanced_bce else None)
        self.metrics = [keras.metrics.BinaryAccuracy(name="acc")]
        self.train_seq = CropBatches(self.cache.crops, self.labels, splits["train"], cfg.batch_size, augment=True,
                                     shuffle=True, seed=cfg.seed)
        self.val_seq = CropBatches(self.cache.crops, self.labels, splits["val"], 128) if len(splits["val"]) else None

    def _pretrain(self) -> Optional[dict]:
        """Pre-train (or initialise) ``self.base`` as configured; returns the pre-training summary."""
        cfg = self.cfg
        if cfg.pretrain_identity and cfg.pretrain_teacher:
            # With --init-base too: distillation continues from that base.
            init = init_base(self.base, cfg.init_base) if cfg.init_base else None
            paths = [os.path.join(cfg.images_dir, k) for k in self.cache.keys]
            pre = pretrain_distill(self.base, cfg, self.cropper, self.run, self.cache, self.splits["train"], paths)
            if init:
                pre["continued_from"] = init
            return pre
        if cfg.init_base:
            return init_base(self.base, cfg.init_base)
        if cfg.pretrain_identity:
            return pretrain_identity(self.base, cfg, self.cropper, self.run)
        return None

    def fit_arguments(self) -> dict:
        return {"x": self.train_seq, "validation_data": self.val_seq}

    def _phase(self, epochs: int, lr: float, append: bool, initial_epoch: int = 0) -> None:
        """Epochs ``initial_epoch .. epochs - 1`` on a cosine decay from ``lr`` (``metrics.csv`` appended
        to for a second phase)."""
        fit_cosine(self.model, self.train_seq, self.val_seq, epochs, lr, self.loss, self.metrics, self.run, append,
                   initial_epoch)

    def fit(self) -> None:
        """A pre-trained base: head alone on the frozen base, then everything at ``finetune_lr``;
        otherwise everything at ``lr``."""
        cfg = self.cfg
        if self.pre is not None and cfg.head_epochs > 0:
            self.base.trainable = False  # a random head would first wreck the pre-trained features
            self._phase(cfg.head_epochs, cfg.lr, False)
            if cfg.epochs > 0:  # --epochs 0: the base stays as pre-trained (frozen), only the head trains
                self.base.trainable = True
                self._phase(cfg.head_epochs + cfg.epochs, cfg.finetune_lr, True, initial_epoch=cfg.head_epochs)
        else:
            self._phase(cfg.epochs, cfg.lr, False)

    def _evaluate(self, part: str, summary: dict) -> None:
        """Per-attribute table of one split part (``attributes_<part>.csv/.md``) and its mean in ``summary``."""
        rows, _prob = evaluate_attribute_model(self.model, self.cache.crops, self.labels, self.splits[part],
                                               self.majority, self.names)
        m = mean_row(rows)
        self.run.write_rows_csv(f"attributes_{part}.csv", rows + [m])
        with open(self.run.file(f"attributes_{part}.md"), "w", encoding="utf-8") as fh:
            fh.write(markdown_table(rows) + "\n")
        summary[part] = {k: m[k] for k in ("accuracy", "balanced_accuracy", "majority_accuracy", "gain")}
        log.info("%s: mean accuracy %.2f%% vs majority %.2f%% (%+.2f points), balanced accuracy %.2f%%", part,
                 100 * m["accuracy"], 100 * m["majority_accuracy"], 100 * m["gain"], 100 * m["balanced_accuracy"])

    def finish(self) -> dict:
        """Loss plot, evaluation on val and test, ``attributes.keras`` with its sidecar, ``summary.json``."""
        from .model import save_model

        super().finish()
        cfg, cache = self.cfg, self.cache
        summary = {"name": cfg.name, "photos": cache.summary(),
                   "split_sizes": {k: int(len(v)) for k, v in self.splits.items()}, "pretrain": self.pre}
        for part in ("val", "test"):
            if len(self.splits[part]):
                self._evaluate(part, summary)
        meta = {"attributes": self.names, "crop": self.cropper.crop_config(),
                "detector": self.cropper.config()["detector"] if any(cache.status == 1) else None,
                "arch": cfg.arch, "threshold": 0.5, "majority": self.majority.tolist(),
                "train_positive_rate": [float(v) for v in self.rate], "trained_on": cfg.attr_file,
                "pretrain": self.pre, "summary": {k: summary.get(k) for k in ("val", "test", "split_sizes")}}
        self.base.trainable = True  # saved unfrozen: a base saved frozen reloads with inconsistent flags
        save_model(self.model, self.run.file("attributes.keras"), meta)
        self.run.write_json("summary.json", summary)
        return summary


def train_attributes(cfg: AttributeTrainConfig) -> dict:
    """Run the whole pipeline (module docstring) and return the summary written to ``summary.json``."""
    return AttributeTrainer(cfg).train()
