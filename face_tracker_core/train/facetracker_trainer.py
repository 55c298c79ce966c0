"""Training of the classic FaceTracker (``face-tracker train facetracker``), TensorFlow backend.

Data: photos with one face (``celeba_one_face``) and without (``noface``) by default, split by
file hash like the detector (:mod:`face_tracker_core.eval.detection_split`), fed by the data
workflow's ``single_face_dataset`` (images ``[B, S, S, 3]`` in [0, 1], ``(class [B, 1], box [B, 4])``).

:class:`FaceTrackerTrainer` runs on the shared engine (:mod:`face_tracker_core.engine`) and writes
``runs/detect/<name>/``: ``config.json``/``config.yaml``, ``best.keras`` (lowest validation loss),
``last.keras``, ``backup/`` (resume), ``metrics.csv``, ``tensorboard/``, the tutorials' three loss
plots (``loss_total.png``, ``loss_class.png``, ``loss_box.png``), ``loss.png`` and ``predictions.png``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..engine import Trainer, TrainingConfig
from ..engine.plots import prediction_grid
from ..errors import DataError
from ..eval.detection_split import split_of, unsplit_duplicates

log = logging.getLogger(__name__)


@dataclasses.dataclass
class FaceTrackerTrainConfig(TrainingConfig):
    """Settings of a FaceTracker run (written to ``config.json``); files and ``--set`` overrides
    are read by :meth:`~face_tracker_core.engine.TrainingConfig.from_file`.

    Attributes:
        name: run folder name under ``runs/detect/``.
        runs_root: parent of ``detect/``.
        data_root: folder holding the sets.
        sets: set folders (images with at most one face, and negatives).
        backbone / image_size / weights: see :class:`~face_tracker_core.models.face_tracker.FaceTracker`
            (``weights`` ``"none"`` or ``""``, as the CLI passes it, means None).
        batch_size / epochs / lr: Adam with the tutorials' inverse-time decay.
        patience: early stopping on ``val_loss``.
        max_images: cap on train images (tiny CI runs).
        max_steps: cap on steps per epoch (tiny CI runs).
        seed: shuffling and weights init.
        run_eagerly: skip graph tracing (a handful of CI steps only).
        verbose: Keras progress verbosity.
    """

    name: str = "facetracker"
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

    def __post_init__(self) -> None:
        if self.weights in ("none", "None", ""):
            self.weights = None


def load_split_samples(cfg: FaceTrackerTrainConfig) -> Dict[str, List]:
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


def build_facetracker(cfg: FaceTrackerTrainConfig, steps_per_epoch: int):  # noqa: D401
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


class FaceTrackerTrainer(Trainer):
    """One FaceTracker run: ``runs/detect/<name>/``, ``best.keras`` on the lowest ``val_loss``.

    Args:
        cfg: the run's settings.
    """

    task = "detect"
    monitor = "val_loss"
    mode = "min"
    train_val_plots = (("loss", "total"), ("class_loss", "class"), ("box_loss", "box"))

    def setup(self) -> None:
        """Split samples, the ``tf.data`` pipelines and the compiled model.

        Raises:
            DataError: not the TensorFlow backend, or no train/validation images.
        """
        import keras

        from ..data.tfdata import single_face_dataset

        cfg = self.cfg
        if keras.backend.backend() != "tensorflow":
            raise DataError("the classic FaceTracker trains on the TensorFlow backend (KERAS_BACKEND=tensorflow)")
        self.splits = load_split_samples(cfg)
        train = _subsample(self.splits["train"], cfg.max_images)
        self.val = _subsample(self.splits["val"], cfg.max_images)
        if not train or not self.val:
            raise DataError(f"no train/val images in {cfg.data_root} {cfg.sets}")
        log.info("FaceTracker: train %d / val %d images", len(train), len(self.val))
        self.train_ds = single_face_dataset(train, cfg.image_size, cfg.batch_size, shuffle=True, seed=cfg.seed)
        self.val_ds = single_face_dataset(self.val, cfg.image_size, cfg.batch_size, shuffle=False)
        self.steps = -(-len(train) // cfg.batch_size)
        if cfg.max_steps:
            self.steps = min(self.steps, cfg.max_steps)
            self.train_ds = self.train_ds.repeat()
        self.model = build_facetracker(cfg, self.steps)

    def fit_arguments(self) -> Dict:
        return {"x": self.train_ds, "validation_data": self.val_ds,
                "steps_per_epoch": self.steps if self.cfg.max_steps else None}

    def finish(self) -> str:
        """Loss plots and ``predictions.png`` on up to 12 test images; returns the run folder."""
        super().finish()
        test = _subsample(self.splits["test"], 12) or self.val[:12]
        _grid(self.model, test, self.cfg.image_size, self.run.file("predictions.png"))
        return self.run.path


def train_facetracker(cfg: FaceTrackerTrainConfig) -> str:
    """Train (or resume) a FaceTracker run; returns the run folder."""
    return FaceTrackerTrainer(cfg).train()


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
