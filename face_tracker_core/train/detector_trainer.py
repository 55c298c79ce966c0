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
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError
from ..engine import distributed
from .detector_augment import AugmentConfig, letterbox_example
from .detector_data import BatchStream, DetSample, assign_targets, grid_points, load_detection_set, load_packed
from .run_dir import load_config_file, make_run_dir, plot_losses, prediction_grid, read_metrics, write_config

log = logging.getLogger(__name__)

#: sets the shipped model trains on, with how often each is drawn.
DEFAULT_SET_WEIGHTS = {"facemask": 0.55, "celeba_one_face": 0.3, "noface": 0.15}
#: sets of scenes without any face (false-face checks), and sets with only one face labelled per
#: photo (recall checks only: their unlabelled bystanders would count as false faces).
NO_FACE_SETS = ("noface", "noface_more")
ONE_FACE_SETS = ("celeba_one_face",)


@dataclasses.dataclass
class TrainConfig:
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

    name: str = "detector"
    runs_root: str = "runs"
    data_root: str = os.path.join("..", "shared", "data", "detection")
    sets: Tuple[str, ...] = ("facemask", "celeba_one_face", "noface")
    packed_index: Optional[str] = None
    set_weights: Dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_SET_WEIGHTS))
    model: Dict[str, Any] = dataclasses.field(default_factory=dict)
    augment: Dict[str, Any] = dataclasses.field(default_factory=dict)
    batch_size: int = 32
    steps_per_epoch: int = 100
    epochs: int = 60
    lr: float = 2e-3
    weight_decay: float = 0.05
    clipnorm: float = 5.0
    warmup_epochs: float = 2.0
    patience: int = 20
    seed: int = 0
    workers: int = 0
    prefetch: Optional[int] = None
    max_minutes: Optional[float] = None
    stop_epoch: Optional[int] = None
    max_images: Optional[int] = None
    init_weights: Optional[str] = None
    tensorboard: bool = True
    jit_compile: Any = "auto"
    run_eagerly: bool = False
    verbose: int = 1

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise DataError(f"unknown training config keys: {sorted(unknown)} (known: {sorted(names)})")
        d = dict(d)
        if "sets" in d:
            d["sets"] = tuple(d["sets"])
        return cls(**d)

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


def load_samples(cfg: TrainConfig) -> List[DetSample]:
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


def _callbacks(cfg: TrainConfig, run_dir: str, dataset, val, val_sets: List[str], model_cfg):
    import keras

    from ..eval.detection_metrics import average_precision, false_faces_per_image, postprocess, recall_at
    from ..engine.distributed_keras import predict

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
            if logs is not None:
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
                logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            log.info("epoch %d: %s", epoch + 1, {k: round(float(v), 4) for k, v in (logs or {}).items()})

    class _TimeLimit(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t0 = time.time()
            self.time_boxed = False

        def on_epoch_end(self, epoch, logs=None):
            if cfg.stop_epoch and epoch + 1 >= cfg.stop_epoch:
                log.info("stop_epoch %d reached", cfg.stop_epoch)
                self.model.stop_training = self.time_boxed = True
            if cfg.max_minutes and time.time() - self.t0 > cfg.max_minutes * 60:
                log.warning("time limit of %.1f min reached after epoch %d: stopping (run the same command "
                            "again to resume)", cfg.max_minutes, epoch + 1)
                self.model.stop_training = self.time_boxed = True

    time_limit = _TimeLimit()

    class _Backup(keras.callbacks.BackupAndRestore):
        """Resume state that survives a time box: Keras deletes the backup whenever ``fit`` returns,
        which would make a run cut by ``max_minutes``/``stop_epoch`` start again from epoch 1."""

        def on_train_end(self, logs=None):
            if not time_limit.time_boxed:
                super().on_train_end(logs)

    metrics_csv = os.path.join(run_dir, "metrics.csv")
    backup_dir = os.path.join(run_dir, "backup")
    # A resumed run must not overwrite best.keras with a worse epoch: start from the best so far.
    logged = [v for v in read_metrics(metrics_csv).get("val_ap50", []) if np.isfinite(v)]
    best_so_far = max(logged) if logged and os.path.isdir(backup_dir) else None
    if best_so_far is not None:
        log.info("resuming %s (best val_ap50 so far %.4f)", run_dir, best_so_far)
    cbs = [_EpochSync(), _ValAP(),
           keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "best.keras"), monitor="val_ap50", mode="max",
                                           save_best_only=True, initial_value_threshold=best_so_far),
           keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "last.keras")),
           keras.callbacks.EarlyStopping(monitor="val_ap50", mode="max", patience=cfg.patience),
           keras.callbacks.CSVLogger(metrics_csv, append=True),
           _Backup(backup_dir),
           time_limit]
    if cfg.tensorboard:
        from ..engine.tensorboard import tensorboard_callback

        cbs.append(tensorboard_callback(os.path.join(run_dir, "tensorboard")))
    return cbs


def train_detector(cfg: TrainConfig, dist=None) -> str:
    """Train; returns the run folder (see the module docstring). ``dist``: a :class:`.distributed.DistConfig`
    for data-parallel training on several devices/hosts (host 0 writes the folder), None: one device."""
    topo = distributed.start(dist)  # before Keras is imported: it selects the JAX backend
    import keras

    from ..losses import detector_box_loss, detector_cls_loss, detector_loss
    from ..models.face_detector import build_face_detector

    run_dir = topo.run_dir(lambda: make_run_dir("detect", cfg.name, cfg.runs_root))
    model_cfg = cfg.model_config()
    aug_cfg = cfg.augment_config()
    resolved = dataclasses.asdict(cfg)
    resolved["model"] = model_cfg.get_config()
    resolved["augment"] = dataclasses.asdict(aug_cfg)
    resolved["keras_backend"] = keras.backend.backend()
    resolved["distributed"] = topo.describe() if topo.active else None
    write_config(run_dir, resolved)
    keras.utils.set_random_seed(cfg.seed)

    samples = load_samples(cfg)
    train = [s for s in samples if s.split == "train"]
    if cfg.max_images:
        train = train[:: max(1, len(train) // cfg.max_images)][: cfg.max_images]
    val_samples = [s for s in samples if s.split == "val"]
    if cfg.max_images:
        val_samples = val_samples[:: max(1, len(val_samples) // cfg.max_images)][: cfg.max_images]
    test_samples = [s for s in samples if s.split == "test"]
    if not train or not val_samples:
        raise DataError(f"no train or no validation images in {cfg.packed_index or cfg.data_root} ({cfg.sets})")
    log.info("train %d / val %d / test %d images (%s)", len(train), len(val_samples), len(test_samples),
             ", ".join(cfg.sets))
    val = validation_arrays(val_samples, aug_cfg.size)

    # This host's data shards of every global batch (the whole batch on one host).
    stream = distributed.ShardedStream(topo, cfg.seed, cfg.batch_size, lambda seed, rows: BatchStream(
        train, rows, cfg.steps_per_epoch, aug_cfg, seed=seed, workers=cfg.workers, set_weights=cfg.set_weights,
        prefetch=cfg.prefetch or max(8, 2 * cfg.workers)))
    dataset = _keras_dataset(stream)

    model = build_face_detector(model_cfg)
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
    cbs = _callbacks(cfg, run_dir, dataset, val, [s.set_name for s in val_samples], model_cfg) + topo.callbacks()
    rows = topo.validation_rows(len(val[0]))  # this host's share of the validation loss
    t0 = time.time()
    try:
        model.fit(dataset, epochs=cfg.epochs, validation_data=(val[0][rows], val[1][rows]),
                  validation_batch_size=topo.eval_batch(16), callbacks=cbs, verbose=cfg.verbose)
    finally:
        stream.close()
        topo.close()
    if not topo.is_chief:
        return os.path.join(cfg.runs_root, "detect", cfg.name)  # host 0 wrote it
    log.info("training took %.1f min", (time.time() - t0) / 60)
    plot_losses(os.path.join(run_dir, "metrics.csv"), run_dir)
    best_path = os.path.join(run_dir, "best.keras")
    if os.path.isfile(best_path):
        best = keras.saving.load_model(best_path, compile=False)
        _prediction_grid(best, test_samples or val_samples, aug_cfg.size, model_cfg,
                         os.path.join(run_dir, "predictions.png"))
    return run_dir


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
    cfg = config_from_args(args.config, args.set)
    train_detector(cfg, distributed.from_args(args))
    return 0


def config_from_args(path: Optional[str], overrides: Sequence[str]) -> TrainConfig:
    """Config file + ``key=value`` overrides (values parsed as YAML; ``model.neck=48`` nests)."""
    import yaml

    d: Dict[str, Any] = load_config_file(path) if path else {}
    for item in overrides:
        if "=" not in item:
            raise DataError(f"override '{item}' is not KEY=VALUE")
        key, value = item.split("=", 1)
        target = d
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = yaml.safe_load(value)
    return TrainConfig.from_dict(d)


if __name__ == "__main__":
    raise SystemExit(main())
