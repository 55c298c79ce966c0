"""Training runs of the reenactment pix2pix on the shared engine (:mod:`face_tracker_core.engine`).

A run folder ``runs/reenact/<name>/`` holds:

* ``config.json`` / ``config.yaml``: the resolved configuration (:class:`Pix2PixTrainConfig`, data,
  networks, pair counts, the epoch this call started at, backend);
* ``ckpt.keras`` + ``state.json``: the whole model with optimizer state and the next epoch,
  written every ``ckpt_every`` epochs and at the end; a second call with the same folder resumes;
* ``generator.keras`` + ``generator.json``: the generator alone with its metadata (what
  :class:`~.renderer.Generator` and the export read);
* ``metrics.csv``: per-epoch losses (``g_l1`` on the [-1, 1] scale), held-out SSIM and L1 (0..1
  scale) every ``eval_every`` epochs (``nan`` between), minutes since this call started;
* ``tensorboard/train/``: the same as scalars, and image summaries (sketch / output / target rows);
* ``samples.png``: the latest image summary; ``loss.png``: loss curves.

The held-out SSIM is logged to watch training only; the model kept is always the last epoch's
(no selection on the test split).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any, Dict, Optional, Union

import numpy as np

from ..engine import Trainer, TrainingConfig
from ..engine.plots import plot_metrics
from ..errors import DataError
from .prepare import PairDataset, load_pairs

log = logging.getLogger(__name__)

#: ``metrics.csv`` columns after ``epoch``, in order.
CSV_COLUMNS = ("g_gan", "g_l1", "d_loss", "d_real", "d_fake", "test_ssim", "test_l1", "minutes")
#: ``loss.png`` panels: L1 train vs held-out, the adversarial pair, held-out SSIM.
LOSS_PANELS = (("g_l1", "test_l1"), ("g_gan", "d_loss"), ("test_ssim",))


@dataclasses.dataclass
class Pix2PixTrainConfig(TrainingConfig):
    """Everything a run needs besides the data folder.

    Attributes:
        name / runs_root: the run folder ``<runs_root>/reenact/<name>/``.
        base_filters / max_filters: generator width (see :class:`~.unet.UNetConfig`).
        d_base_filters / d_max_filters: discriminator width (the paper: 64 / 512).
        dropout: generator dropout rate.
        l1_weight: lambda (the paper: 100).
        learning_rate / beta_1: Adam (the paper: 2e-4 / 0.5).
        batch_size: pairs per step.
        epochs: last epoch (exclusive) of the run, counting resumed ones.
        max_minutes: stop (and checkpoint) after this much training time in this call; ``None`` = no limit.
        ckpt_every / sample_every / eval_every: epochs between checkpoints / image summaries /
            held-out evaluations.
        eval_frames: held-out frames used for the in-training SSIM.
        limit: use only the first ``limit`` training pairs (smoke tests).
        seed: initialisation and shuffling seed.
        jit_compile: Keras' ``compile(jit_compile=...)``; ``"auto"`` = XLA where it can (fast on a
            GPU; on a small CPU run, XLA's compile time outweighs the steps, so tests use ``False``).
        verbose: Keras progress verbosity.
    """

    # Fields in alphabetical order, as config.yaml lists them; the docstring groups them by role.
    base_filters: int = 16
    batch_size: int = 8
    beta_1: float = 0.5
    ckpt_every: int = 10
    d_base_filters: int = 64
    d_max_filters: int = 512
    dropout: float = 0.5
    epochs: int = 200
    eval_every: int = 10
    eval_frames: int = 64
    jit_compile: Union[bool, str] = "auto"
    l1_weight: float = 100.0
    learning_rate: float = 2e-4
    limit: Optional[int] = None
    max_filters: int = 96
    max_minutes: Optional[float] = None
    name: str = "pix2pix"
    sample_every: int = 5
    seed: int = 0
    verbose: int = 2


def generator_meta(dataset_meta: Dict, model_config: Dict, extra: Optional[Dict] = None) -> Dict:
    """The sidecar a :class:`~.renderer.Generator` needs, from the dataset's metadata."""
    keys = ("resolution", "thickness", "reference_landmarks", "crop", "crop_scale", "video", "frame_size",
            "split_frame", "frames_read")
    meta = {k: dataset_meta[k] for k in keys if k in dataset_meta}
    meta["video"] = os.path.basename(str(meta.get("video", "")))
    meta["input"] = "uint8 BGR sketch, scaled to [-1, 1]: x / 127.5 - 1"
    meta["output"] = "BGR in [-1, 1] (tanh): (y + 1) * 127.5"
    meta["model"] = model_config
    meta.update(extra or {})
    return meta


def _build_model(cfg: Pix2PixTrainConfig, resolution: int):
    """A compiled :class:`~.pix2pix.Pix2Pix` (weights drawn from the seed the trainer set)."""
    from .patchgan import PatchGANConfig
    from .pix2pix import Pix2Pix, paper_optimizer
    from .unet import UNetConfig

    model = Pix2Pix(UNetConfig(resolution=resolution, base_filters=cfg.base_filters, max_filters=cfg.max_filters,
                               dropout=cfg.dropout),
                    PatchGANConfig(resolution=resolution, base_filters=cfg.d_base_filters,
                                   max_filters=cfg.d_max_filters),
                    l1_weight=cfg.l1_weight)
    model.compile(optimizer=paper_optimizer(cfg.learning_rate, cfg.beta_1), jit_compile=cfg.jit_compile)
    # Building Adam's slots here, eagerly, instead of inside the first traced step saves a retrace
    # of the whole GAN step (TensorFlow traces again after a function creates variables).
    model.optimizer.build(model.trainable_variables)
    return model


def _spread(n: int, k: int) -> np.ndarray:
    """``min(k, n)`` evenly spaced indices into ``n`` items."""
    return np.linspace(0, n - 1, min(k, n)).round().astype(int)


def save_checkpoint(model, run_dir: str, next_epoch: int, gen_meta: Dict) -> None:
    """Write ``ckpt.keras`` (whole model + optimizer), ``generator.keras/.json`` and ``state.json``.

    Files are written under a temporary name and renamed, so an interrupted save never leaves a
    half-written checkpoint behind.
    """
    ckpt, gen = os.path.join(run_dir, "ckpt.keras"), os.path.join(run_dir, "generator.keras")
    model.save(ckpt + ".tmp.keras")
    os.replace(ckpt + ".tmp.keras", ckpt)
    model.generator.save(gen + ".tmp.keras")
    os.replace(gen + ".tmp.keras", gen)
    with open(os.path.join(run_dir, "generator.json"), "w") as f:
        json.dump({**gen_meta, "epochs_trained": next_epoch}, f, indent=1)
    with open(os.path.join(run_dir, "state.json"), "w") as f:
        json.dump({"next_epoch": next_epoch, "time": time.time()}, f)
    log.info("checkpoint: %s (next epoch %d)", ckpt, next_epoch)


class Pix2PixTrainer(Trainer):
    """One pix2pix run: ``model.fit`` with the GAN ``train_step`` of :class:`~.pix2pix.Pix2Pix`.

    Resume uses the run's own next-epoch checkpoint (``ckpt.keras`` + ``state.json``), not the
    engine's ``BackupAndRestore``: Keras deletes that backup whenever ``fit`` ends normally, so a
    finished run could not be continued to a larger ``epochs`` (how the model card's runs grow, one
    time budget after another), and it restores weights into networks rebuilt from the current
    config, while a resumed GAN keeps the saved networks (and their width) whatever the config says.

    Args:
        cfg: hyper-parameters; on resume the saved networks are kept and only the schedule fields
            (epochs, max_minutes, every-N settings) apply.
        data_dir: folder written by :func:`~.prepare.prepare_dataset`.
        run_dir: run folder; None: ``<runs_root>/reenact/<name>``.
        resume: continue from the run folder's checkpoint when there is one.
    """

    task = "reenact"
    monitor = None  # the last epoch's model is kept: no selection on the held-out split

    def __init__(self, cfg: Pix2PixTrainConfig, data_dir: str, run_dir: Optional[str] = None,
                 resume: bool = True) -> None:
        super().__init__(cfg)
        self.data_dir, self.run_dir, self.resume = data_dir, run_dir, resume
        self.initial_epoch = 0
        self.derived: Dict[str, Any] = {}

    def run_path(self) -> str:
        return self.run_dir or super().run_path()

    def resolved_config(self) -> Dict[str, Any]:
        """The config and backend, plus (once :meth:`setup` ran) data, networks and start epoch."""
        return {**super().resolved_config(), **self.derived}

    def setup(self) -> None:
        """Pairs, the model (loaded from the run's checkpoint when resuming) and the held-out frames.

        Raises:
            DataError: no training pairs, or pairs of another resolution than the resumed model's.
        """
        import keras

        from . import pix2pix  # noqa: F401  (registers Pix2Pix for loading)

        cfg = self.cfg
        data = load_pairs(self.data_dir)
        train_set = data.subset("train")
        if cfg.limit:
            train_set = PairDataset(train_set.frames[:cfg.limit], train_set.landmarks[:cfg.limit],
                                    train_set.frame_index[:cfg.limit], train_set.split[:cfg.limit], data.meta)
        if len(train_set) == 0:
            raise DataError(f"{self.data_dir}: no training pairs")
        ckpt, state_path = self.run.file("ckpt.keras"), self.run.file("state.json")
        if self.resume and os.path.isfile(ckpt) and os.path.isfile(state_path):
            self.model = keras.saving.load_model(ckpt)
            with open(state_path) as f:
                self.initial_epoch = int(json.load(f)["next_epoch"])
            log.info("resuming %s at epoch %d", self.run.path, self.initial_epoch)
        else:
            self.model = _build_model(cfg, data.resolution)
        model = self.model
        if model.generator_config.resolution != data.resolution:
            raise DataError(f"{self.data_dir}: pairs are {data.resolution} px but the model in {self.run.path} is "
                            f"{model.generator_config.resolution} px")
        self.derived = {"data": os.path.abspath(self.data_dir), "model": model.get_config(),
                        "pairs_train": len(train_set), "pairs_test": int((data.split == 1).sum()),
                        "initial_epoch": self.initial_epoch}
        self.write_config()
        self.gen_meta = generator_meta(data.meta, {"generator": model.generator_config.get_config(),
                                                   "discriminator": model.discriminator_config.get_config(),
                                                   "l1_weight": model.l1_weight})
        self.train_set = train_set
        test = data.subset("test")
        t_idx = _spread(len(test), cfg.eval_frames) if len(test) else []
        self.test_sketches = test.sketches()[t_idx] if len(test) else None
        self.test_frames = test.frames[t_idx] if len(test) else None

    def fit(self) -> None:
        import keras

        from ..engine.callbacks import epoch_log

        cfg = self.cfg
        if self.initial_epoch >= cfg.epochs:
            log.info("%s: already trained for %d epochs", self.run.path, self.initial_epoch)
            return
        self.train_sketches = self.train_set.sketches()
        self.t0 = time.time()
        trainer = self

        class EpochEnd(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                trainer.end_epoch(epoch, logs if logs is not None else {})

        log.info("training on %d pairs at %d px, %s backend, epochs %d..%d", len(self.train_set),
                 self.model.generator_config.resolution, keras.backend.backend(), self.initial_epoch, cfg.epochs)
        self.model.fit(self.train_sketches, self.train_set.frames, batch_size=cfg.batch_size, epochs=cfg.epochs,
                       initial_epoch=self.initial_epoch, shuffle=True, verbose=cfg.verbose,
                       callbacks=[EpochEnd(), epoch_log()] + self.topo.callbacks())

    def end_epoch(self, epoch: int, logs: Dict[str, Any]) -> None:
        """Time budget, held-out SSIM / L1, image summaries, ``metrics.csv`` + TensorBoard row and
        checkpoint at the end of 0-based ``epoch`` (adds ``minutes``, ``test_ssim``, ``test_l1`` to ``logs``)."""
        cfg, done = self.cfg, epoch + 1
        logs["minutes"] = (time.time() - self.t0) / 60
        out_of_time = cfg.max_minutes is not None and logs["minutes"] >= cfg.max_minutes
        if out_of_time:
            log.info("time budget of %.1f min reached after epoch %d", cfg.max_minutes, done)
            self.model.stop_training = True
        final = done >= cfg.epochs or out_of_time
        # Always present (NaN when not evaluated): the CSV's columns are fixed by its first row.
        logs["test_ssim"] = logs["test_l1"] = float("nan")
        if self.test_frames is not None and (done % cfg.eval_every == 0 or final):
            from .evaluate import image_metrics

            m = image_metrics(self._generate(self.test_sketches), self.test_frames)
            logs["test_ssim"], logs["test_l1"] = m["ssim"], m["l1"]
        if done % cfg.sample_every == 0 or final:
            self._write_samples(epoch)
        self.run.log_epoch(epoch, {k: logs[k] for k in CSV_COLUMNS if k in logs})
        if done % cfg.ckpt_every == 0 or final:
            save_checkpoint(self.model, self.run.path, done, self.gen_meta)

    def _generate(self, sketches: np.ndarray) -> np.ndarray:
        """The generator's ``uint8`` BGR outputs for ``uint8`` sketches ``[N, R, R, 3]``, 32 at a time."""
        import keras

        out = []
        for i in range(0, len(sketches), 32):
            x = sketches[i:i + 32].astype(np.float32) / 127.5 - 1.0
            y = keras.ops.convert_to_numpy(self.model.generator(x, training=False))
            out.append(np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8))
        return np.concatenate(out)

    def _write_samples(self, epoch: int) -> None:
        """Sketch / output / target rows of 4 training pairs (and 4 held-out ones beside them) to
        TensorBoard and ``samples.png``."""
        import cv2

        from .evaluate import image_grid

        k = _spread(len(self.train_sketches), 4)
        rows = [image_grid(self.train_sketches[k], self._generate(self.train_sketches[k]),
                           self.train_set.frames[k], max_cols=4)]
        if self.test_frames is not None:
            k = _spread(len(self.test_sketches), 4)
            rows.append(image_grid(self.test_sketches[k], self._generate(self.test_sketches[k]),
                                   self.test_frames[k], max_cols=4))
        grid = np.hstack(rows) if len(rows) == 2 and rows[0].shape[0] == rows[1].shape[0] else rows[0]
        self.run.tensorboard("train").image("samples/train_then_test (rows: sketch, output, target)", grid, epoch)
        cv2.imwrite(self.run.file("samples.png"), grid)

    def finish(self) -> str:
        """``loss.png``; returns the run folder."""
        plot_metrics(self.run.metrics_csv, self.run.file("loss.png"), panels=LOSS_PANELS,
                     title=f"reenact {self.cfg.name}")
        return self.run.path


def train(data_dir: str, run_dir: Optional[str] = None, cfg: Optional[Pix2PixTrainConfig] = None,
          resume: bool = True, verbose: Optional[int] = None):
    """Train (or resume) a reenactment pix2pix: :class:`Pix2PixTrainer` as one call.

    Args:
        data_dir: folder written by :func:`~.prepare.prepare_dataset`.
        run_dir: run folder (created); None: ``<runs_root>/reenact/<name>`` of ``cfg``.
        cfg: hyper-parameters (default :class:`Pix2PixTrainConfig`).
        resume: continue from ``run_dir``'s checkpoint when there is one.
        verbose: Keras progress verbosity (None: ``cfg.verbose``).

    Returns:
        The trained :class:`~.pix2pix.Pix2Pix`.

    Raises:
        DataError: no training pairs, or a resolution mismatch with the resumed model.
    """
    cfg = cfg or Pix2PixTrainConfig()
    if verbose is not None:
        cfg = cfg.replace(verbose=verbose)
    trainer = Pix2PixTrainer(cfg, data_dir, run_dir, resume)
    trainer.train()
    return trainer.model
