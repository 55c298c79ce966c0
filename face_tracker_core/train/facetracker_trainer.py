"""Training of the classic FaceTracker (``face-tracker train facetracker``), TensorFlow backend.

Data: photos with one face (``celeba_one_face``) and without (``noface``) by default, split by
file hash like the detector (:mod:`face_tracker_core.eval.detection_split`), fed by the data
workflow's ``single_face_dataset`` (images ``[B, S, S, 3]`` in [0, 1], ``(class [B, 1], box [B, 4])``).

Writes under ``runs/detect/<name>/`` like the detector: ``config.json``, ``best.keras`` (lowest
validation loss), ``last.keras``, ``backup/`` (resume), ``metrics.csv``, the three loss plots and
``predictions.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from ..eval.detection_split import split_of, unsplit_duplicates
from .run_dir import load_config_file, make_run_dir, plot_losses, prediction_grid, write_config

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FaceTrackerConfig:
    """Settings of a FaceTracker run (written to ``config.json``).

    Attributes:
        name: run folder name under ``runs/detect/``.
        runs_root: parent of ``detect/``.
        data_root: folder holding the sets.
        sets: set folders (images with at most one face, and negatives).
        backbone / image_size / weights: see :class:`~face_tracker_core.models.face_tracker.FaceTracker`.
        batch_size / epochs / lr: Adam with the tutorials' inverse-time decay.
        patience: early stopping on ``val_loss``.
        max_images: cap on train images (tiny CI runs).
        max_steps: cap on steps per epoch (tiny CI runs).
        seed: shuffling and weights init.
        run_eagerly: skip graph tracing (a handful of CI steps only).
    """

    name: str = "facetracker"
    runs_root: str = "runs"
    data_root: str = os.path.join("..", "shared", "data", "detection")
    sets: Tuple[str, ...] = ("celeba_one_face", "noface")
    backbone: str = "vgg16"
    image_size: int = 120
    weights: Optional[str] = None
    batch_size: int = 8
    epochs: int = 10
    lr: float = 1e-4
    patience: int = 5
    max_images: Optional[int] = None
    max_steps: Optional[int] = None
    seed: int = 0
    run_eagerly: bool = False
    verbose: int = 1

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "FaceTrackerConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise DataError(f"unknown FaceTracker config keys: {sorted(unknown)}")
        d = dict(d)
        if "sets" in d:
            d["sets"] = tuple(d["sets"])
        if d.get("weights") in ("none", "None", ""):
            d["weights"] = None
        return cls(**d)


def load_split_samples(cfg: FaceTrackerConfig) -> Dict[str, List]:
    """``{"train": [...], "val": [...], "test": [...]}`` of data-workflow Samples (file-name split;
    byte-identical photos share one split, as for the detector)."""
    from ..data.dataset import import_folder

    out: Dict[str, List] = {"train": [], "val": [], "test": []}
    for name in cfg.sets:
        folder = os.path.join(cfg.data_root, name)
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: data folder not found")
        report = import_folder(folder, negatives=True, check_images=False, group_near_duplicates="none")
        samples = sorted(report.samples, key=lambda s: s.image_path)
        paths = [s.image_path for s in samples]
        for s, split in zip(samples, unsplit_duplicates(paths, [split_of(name, p) for p in paths])):
            out[split].append(s)
    return out


def _subsample(samples: Sequence, n: Optional[int]) -> List:
    if not n or len(samples) <= n:
        return list(samples)
    # Keep faces and negatives in proportion: evenly spaced picks over the sorted list.
    idx = np.linspace(0, len(samples) - 1, n).round().astype(int)
    return [samples[i] for i in idx]


def build_facetracker(cfg: FaceTrackerConfig, steps_per_epoch: int):  # noqa: D401
    """A compiled :class:`FaceTracker` (Adam, the tutorials' inverse-time LR decay)."""
    import keras

    from ..models.face_tracker import FaceTracker

    model = FaceTracker(cfg.backbone, cfg.image_size, cfg.weights)
    model.build((None, cfg.image_size, cfg.image_size, 3))
    # Seeds: decay = (1 / 0.75 - 1) / batches_per_epoch, i.e. lr / (1 + decay * step).
    schedule = keras.optimizers.schedules.InverseTimeDecay(cfg.lr, decay_steps=max(1, steps_per_epoch),
                                                           decay_rate=1 / 0.75 - 1)
    model.compile(optimizer=keras.optimizers.Adam(schedule), run_eagerly=cfg.run_eagerly)
    return model


def train_facetracker(cfg: FaceTrackerConfig) -> str:
    """Train; returns the run folder."""
    import keras
    import tensorflow as tf

    from ..data.tfdata import single_face_dataset

    if keras.backend.backend() != "tensorflow":
        raise DataError("the classic FaceTracker trains on the TensorFlow backend (KERAS_BACKEND=tensorflow)")
    run_dir = make_run_dir("detect", cfg.name, cfg.runs_root)
    write_config(run_dir, dataclasses.asdict(cfg))
    keras.utils.set_random_seed(cfg.seed)
    splits = load_split_samples(cfg)
    train = _subsample(splits["train"], cfg.max_images)
    val = _subsample(splits["val"], cfg.max_images)
    if not train or not val:
        raise DataError(f"no train/val images in {cfg.data_root} {cfg.sets}")
    log.info("FaceTracker: train %d / val %d images", len(train), len(val))
    train_ds = single_face_dataset(train, cfg.image_size, cfg.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = single_face_dataset(val, cfg.image_size, cfg.batch_size, shuffle=False)
    steps = -(-len(train) // cfg.batch_size)
    if cfg.max_steps:
        steps = min(steps, cfg.max_steps)
        train_ds = train_ds.repeat()
    model = build_facetracker(cfg, steps)
    cbs = [keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "best.keras"), monitor="val_loss",
                                           save_best_only=True),
           keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "last.keras")),
           keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience),
           keras.callbacks.CSVLogger(os.path.join(run_dir, "metrics.csv"), append=True),
           keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"))]
    from ..engine.tensorboard import tensorboard_callback

    cbs.append(tensorboard_callback(os.path.join(run_dir, "tensorboard")))
    model.fit(train_ds, epochs=cfg.epochs, steps_per_epoch=steps if cfg.max_steps else None,
              validation_data=val_ds, callbacks=cbs, verbose=cfg.verbose)
    plot_losses(os.path.join(run_dir, "metrics.csv"), run_dir)
    test = _subsample(splits["test"], 12) or val[:12]
    _grid(model, test, cfg.image_size, os.path.join(run_dir, "predictions.png"))
    del tf
    return run_dir


def _grid(model, samples, size: int, path: str) -> None:
    import cv2

    images, dets, gts = [], [], []
    for s in samples:
        try:
            img = s.load_bgr()
        except Exception as exc:
            log.warning("%s", exc)
            continue
        x = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (size, size)).astype(np.float32)[None] / 255.0
        cls, box = model.predict(x, verbose=0)
        h, w = img.shape[:2]
        b = np.asarray(box[0]) * [w, h, w, h]
        dets.append([(b, float(cls[0, 0]))] if cls[0, 0] >= 0.5 else [])
        images.append(img)
        gts.append(np.array([bb.as_xyxy() for bb in s.boxes]).reshape(-1, 4))
    prediction_grid(images, dets, path, gts)


def config_from_args(path: Optional[str], overrides: Sequence[str]) -> FaceTrackerConfig:
    import yaml

    d: Dict[str, Any] = load_config_file(path) if path else {}
    for item in overrides:
        if "=" not in item:
            raise DataError(f"override '{item}' is not KEY=VALUE")
        k, v = item.split("=", 1)
        d[k] = yaml.safe_load(v)
    return FaceTrackerConfig.from_dict(d)
