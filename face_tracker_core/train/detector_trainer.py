"""Training of the multi-face detector (``face-tracker train detector``).

Runs on any Keras 3 backend: TensorFlow here, JAX on the GPU machine (which has no TensorFlow).
Writes only under ``runs/detect/<name>/``:

* ``config.json`` / ``config.yaml``: every resolved setting;
* ``best.keras`` (best validation AP@0.5 so far), ``last.keras``, ``backup/`` (resume state: a run stopped by
  ``max_minutes``/``stop_epoch`` or killed resumes at its next epoch when the same command runs again);
* ``metrics.csv`` (one row per epoch: train/val losses, val AP, learning rate);
* ``loss_total.png``, ``loss_class.png``, ``loss_box.png`` (train vs val);
* ``predictions.png`` (best model on held-out test photos); ``tensorboard/`` (train/validation scalars).

Run without the CLI (e.g. on a machine with JAX but no TensorFlow)::

    KERAS_BACKEND=jax python -m face_tracker_core.train.detector_trainer --config CONFIG.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..engine import Trainer, TrainingConfig, distributed
from ..engine.plots import prediction_grid
from ..errors import DataError
from .detector_augment import AugmentConfig, letterbox_example
from .detector_data import BatchStream, DetSample, assign_targets, grid_points, load_detection_set, load_packed

log = logging.getLogger(__name__)

#: sets the shipped model trains on, with how often each is drawn.
DEFAULT_SET_WEIGHTS = {"facemask": 0.55, "celeba_one_face": 0.3, "noface": 0.15}
#: sets of scenes without any face (false-face checks), and sets with only one face labelled per
#: photo (recall checks only: their unlabelled bystanders would count as false faces).
NO_FACE_SETS = ("noface", "noface_more")
ONE_FACE_SETS = ("celeba_one_face",)


@dataclasses.dataclass
class DetectorTrainConfig(TrainingConfig):
    """Everything a detector training run depends on (written to ``config.json``).

    Attributes:
        name: run name (folder ``runs/detect/<name>``).
        runs_root: parent of ``detect/``.
        data_root: folder holding the detection sets (``../shared/data/detection``).
        sets: set folders under ``data_root`` to use (train/val parts by file hash).
        packed_index: alternatively an ``index.json`` from :func:`pack_samples` (GPU machine).
        set_weights: draw rate of each set.
        model: :class:`~face_tracker_core.models.face_detector.DetectorConfig` fields.
        augment: :class:`~face_tracker_core.train.detector_augment.AugmentConfig` fields.
        batch_size / steps_per_epoch / epochs: schedule; the LR follows a warm-up + cosine decay
            over ``epochs * steps_per_epoch`` steps.
        lr / weight_decay / clipnorm: AdamW settings.
        warmup_epochs: linear warm-up length.
        patience: early stopping on ``val_ap50`` (epochs without improvement).
        seed: seeds weights init and every augmented batch.
        workers: batch-building processes (0 = in the training process).
        prefetch: batches built ahead (None: twice the workers, at least 8), so every worker stays busy.
        max_minutes: stop (keeping the best model) after this wall time; None = no limit.
        stop_epoch: stop after this many epochs while keeping the LR schedule of ``epochs``
            (reproduces a run that ``max_minutes`` cut short).
        max_images: use at most this many train (and val) images (tiny CI runs); None = all.
        init_weights: optional ``.keras`` file to start from (fine-tuning).
        tensorboard: write TensorBoard logs (Keras' callback where ``tensorboard`` is installed,
            else our dependency-free writer: :mod:`face_tracker_core.engine.tensorboard`).
        jit_compile: Keras' XLA switch (``"auto"``, True, False); False starts faster on CPU.
        run_eagerly: no graph tracing at all (only sensible for a handful of steps, e.g. CI).
        verbose: Keras progress (1 = bars, 2 = one line per epoch).
    """

    # Fields in alphabetical order, as config.yaml lists them; the docstring groups them by role.
    augment: Dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 32
    clipnorm: float = 5.0
    data_root: str = os.path.join("..", "shared", "data", "detection")
    epochs: int = 60
    init_weights: Optional[str] = None
    jit_compile: Any = "auto"
    lr: float = 2e-3
    max_images: Optional[int] = None
    max_minutes: Optional[float] = None
    model: Dict[str, Any] = dataclasses.field(default_factory=dict)
    name: str = "detector"
    packed_index: Optional[str] = None
    patience: int = 20
    prefetch: Optional[int] = None
    run_eagerly: bool = False
    runs_root: str = "runs"
    seed: int = 0
    set_weights: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SET_WEIGHTS))
    sets: Tuple[str, ...] = ("facemask", "celeba_one_face", "noface")
    steps_per_epoch: int = 100
    stop_epoch: Optional[int] = None
    tensorboard: bool = True
    verbose: int = 1
    warmup_epochs: float = 2.0
    weight_decay: float = 0.05
    workers: int = 0

    def model_config(self):
        from ..models.face_detector import DetectorConfig

        return DetectorConfig.from_config(self.model)

    def augment_config(self) -> AugmentConfig:
        d = dict(self.augment)
        for k in ("scale_range", "background_sets"):
            if k in d:
                d[k] = tuple(d[k])
        d.setdefault("size", self.model_config().input_size)
        return AugmentConfig(**d)


def load_samples(cfg: DetectorTrainConfig) -> List[DetSample]:
    """All images of the configured sets (every split), sorted for reproducibility."""
    if cfg.packed_index:
        samples = load_packed(cfg.packed_index)
        return [s for s in samples if s.set_name in cfg.sets]
    samples: List[DetSample] = []
    for name in cfg.sets:
        samples += load_detection_set(os.path.join(cfg.data_root, name), name)
    return samples


def validation_arrays(samples: Sequence[DetSample], size: int) -> Tuple[np.ndarray, np.ndarray, List[np.ndarray]]:
    """Letterboxed validation images, dense targets and per-image true boxes (input pixels)."""
    import cv2

    points, strides = grid_points(size, size)
    xs, ys, gts = [], [], []
    for s in samples:
        img = cv2.imread(s.image_path, cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: unreadable, left out of validation", s.image_path)
            continue
        x, b = letterbox_example(img, s.boxes, size)
        xs.append(x)
        ys.append(assign_targets(b, points, strides))
        gts.append(b)
    return (np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32), gts)


def _keras_dataset(stream: BatchStream):
    import keras

    class _Batches(keras.utils.PyDataset):
        """Keras view of a :class:`BatchStream`; ``epoch`` is set by :class:`_EpochSync`."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0

        def __len__(self):
            return stream.steps

        def __getitem__(self, i):
            x, y = stream.get(self.epoch, int(i))
            return x.astype(np.float32), y

    return _Batches()


def _validation_callbacks(dataset, val, val_sets: List[str], model_cfg) -> List:
    """Batch seeds that follow the epoch, and the validation AP/recall/false faces added to ``logs``."""
    import keras

    from ..engine.distributed_keras import predict
    from ..eval.detection_metrics import average_precision, false_faces_per_image, postprocess, recall_at

    x_val, _, gts = val

    class _EpochSync(keras.callbacks.Callback):
        # Resumed runs start at a later epoch: the batch seeds must follow.
        def on_epoch_begin(self, epoch, logs=None):
            dataset.epoch = epoch

    class _ValAP(keras.callbacks.Callback):
        """Adds ``val_ap50`` (face sets, scenes pooled), ``val_ap50_faces``, ``val_recall40``, ``val_fp``."""

        def on_epoch_end(self, epoch, logs=None):
            raw = predict(self.model, x_val, 16)  # also under a data-parallel distribution
            per_set: Dict[str, list] = {}
            for r, gt, name in zip(raw, gts, val_sets):
                boxes, scores = postprocess(np.asarray(r), 0.05, model_cfg.nms_iou, model_cfg.max_detections)
                per_set.setdefault(name, []).append((boxes, scores, gt))
            thr = model_cfg.score_threshold
            scenes = [e for k, v in per_set.items() if k in NO_FACE_SETS for e in v]
            if logs is None:
                return
            # AP of each fully labelled face set with the no-face scenes pooled in: a false face on
            # a wall costs AP as it costs a robot, so the best checkpoint is not the one that
            # finds faces everywhere.
            faces = [v for k, v in per_set.items() if k not in NO_FACE_SETS + ONE_FACE_SETS]
            logs["val_ap50"] = float(np.mean([average_precision(v + scenes) for v in faces] or [0.0]))
            logs["val_ap50_faces"] = float(np.mean([average_precision(v) for v in faces] or [0.0]))
            if "celeba_one_face" in per_set:
                logs["val_recall40"] = recall_at(per_set["celeba_one_face"], 0.4, thr)
            if scenes:
                logs["val_fp"] = false_faces_per_image(scenes, thr)

    return [_EpochSync(), _ValAP()]


class DetectorTrainer(Trainer):
    """The multi-face detector on the engine: ``runs/detect/<name>/``, best checkpoint on ``val_ap50``."""

    task = "detect"
    monitor = "val_ap50"
    mode = "max"
    train_val_plots = (("loss", "total"), ("class_loss", "class"), ("box_loss", "box"))

    def resolved_config(self) -> Dict[str, Any]:
        d = super().resolved_config()
        d["model"] = self.cfg.model_config().get_config()
        d["augment"] = dataclasses.asdict(self.cfg.augment_config())
        return d

    def _splits(self) -> Tuple[List[DetSample], List[DetSample], List[DetSample]]:
        """Train, validation and test images (train/val thinned to ``max_images``)."""
        cfg = self.cfg
        samples = load_samples(cfg)
        parts = []
        for split in ("train", "val", "test"):
            part = [s for s in samples if s.split == split]
            if cfg.max_images and split != "test":
                part = part[:: max(1, len(part) // cfg.max_images)][: cfg.max_images]
            parts.append(part)
        if not parts[0] or not parts[1]:
            raise DataError(f"no train or no validation images in {cfg.packed_index or cfg.data_root} ({cfg.sets})")
        log.info("train %d / val %d / test %d images (%s)", *map(len, parts), ", ".join(cfg.sets))
        return parts[0], parts[1], parts[2]

    def setup(self) -> None:
        cfg, topo = self.cfg, self.topo
        self.model_cfg, self.aug_cfg = cfg.model_config(), cfg.augment_config()
        train, val_samples, self.test_samples = self._splits()
        self.val_samples = val_samples
        self.val = validation_arrays(val_samples, self.aug_cfg.size)
        # This host's data shards of every global batch (the whole batch on one host).
        self.stream = distributed.ShardedStream(topo, cfg.seed, cfg.batch_size, lambda seed, rows: BatchStream(
            train, rows, cfg.steps_per_epoch, self.aug_cfg, seed=seed, workers=cfg.workers,
            set_weights=cfg.set_weights, prefetch=cfg.prefetch or max(8, 2 * cfg.workers)))
        self.dataset = _keras_dataset(self.stream)
        self.model = self._compiled_model()

    def _compiled_model(self):
        import keras

        from ..losses import detector_box_loss, detector_cls_loss, detector_loss
        from ..models.face_detector import build_face_detector

        cfg = self.cfg
        model = build_face_detector(self.model_cfg)
        if cfg.init_weights:
            from ..export import load_detector_model

            model.set_weights(load_detector_model(cfg.init_weights).get_weights())
        total = cfg.epochs * cfg.steps_per_epoch
        warm = int(cfg.warmup_epochs * cfg.steps_per_epoch)
        schedule = keras.optimizers.schedules.CosineDecay(cfg.lr * 0.01, max(1, total - warm), alpha=0.01,
                                                          warmup_target=cfg.lr, warmup_steps=warm)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay,
                                                       global_clipnorm=cfg.clipnorm),
                      loss=detector_loss,
                      metrics=[keras.metrics.MeanMetricWrapper(detector_cls_loss, name="class_loss"),
                               keras.metrics.MeanMetricWrapper(detector_box_loss, name="box_loss")],
                      jit_compile=False if cfg.run_eagerly else cfg.jit_compile, run_eagerly=cfg.run_eagerly)
        return model

    def family_callbacks(self) -> List:
        return _validation_callbacks(self.dataset, self.val, [s.set_name for s in self.val_samples],
                                     self.model_cfg)

    def fit_arguments(self) -> Dict[str, Any]:
        rows = self.topo.validation_rows(len(self.val[0]))  # this host's share of the validation loss
        return {"x": self.dataset, "validation_data": (self.val[0][rows], self.val[1][rows]),
                "validation_batch_size": self.topo.eval_batch(16)}

    def teardown(self) -> None:
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.close()
        super().teardown()

    def finish(self) -> str:
        import keras

        path = super().finish()
        best_path = self.run.file("best.keras")
        if os.path.isfile(best_path):
            best = keras.saving.load_model(best_path, compile=False)
            _prediction_grid(best, self.test_samples or self.val_samples, self.aug_cfg.size, self.model_cfg,
                             self.run.file("predictions.png"))
        return path


def train_detector(cfg: DetectorTrainConfig, dist=None) -> str:
    """Train; returns the run folder (see the module docstring). ``dist``: a
    :class:`~face_tracker_core.engine.distributed.DistConfig` for data-parallel training on several
    devices/hosts (host 0 writes the folder), None: one device."""
    return DetectorTrainer(cfg, dist).train()


def _prediction_grid(model, samples: Sequence[DetSample], size: int, model_cfg, path: str, n: int = 12) -> None:
    """Best model on a few held-out photos of every set."""
    import cv2

    from ..eval.detection_metrics import postprocess

    by_set: Dict[str, List[DetSample]] = {}
    for s in samples:
        by_set.setdefault(s.set_name, []).append(s)
    chosen: List[DetSample] = []
    while len(chosen) < n and any(by_set.values()):
        for k in sorted(by_set):
            if by_set[k] and len(chosen) < n:
                chosen.append(by_set[k].pop(0))
    images, dets, gts = [], [], []
    for s in chosen:
        img = cv2.imread(s.image_path, cv2.IMREAD_COLOR)
        if img is None:
            continue
        x, b = letterbox_example(img, s.boxes, size)
        raw = np.asarray(model.predict(x[None].astype(np.float32), verbose=0))[0]
        boxes, scores = postprocess(raw, model_cfg.score_threshold, model_cfg.nms_iou)
        images.append(x)
        dets.append(list(zip(boxes, scores)))
        gts.append(b)
    prediction_grid(images, dets, path, gts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point without the ``face-tracker`` CLI (used on the GPU machine)."""
    p = argparse.ArgumentParser(description="train the multi-face detector")
    p.add_argument("--config", default=None, help="YAML/JSON training config")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values (YAML values)")
    distributed.add_cli_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = DetectorTrainConfig.from_file(args.config, args.set)
    train_detector(cfg, distributed.from_args(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
