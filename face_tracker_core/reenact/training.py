"""Training runs of the reenactment pix2pix: run folder, checkpoints, resume, summaries.

A run folder ``runs/reenact/<name>/`` holds:

* ``config.json``: the resolved configuration (data, networks, optimiser, schedule);
* ``ckpt.keras`` + ``state.json``: the whole model with optimizer state and the next epoch,
  written every ``ckpt_every`` epochs and at the end; a second call with the same folder resumes;
* ``generator.keras`` + ``generator.json``: the generator alone with its metadata (what
  :class:`~.renderer.Generator` and the export read);
* ``metrics.csv``: per-epoch losses (``g_l1`` on the [-1, 1] scale), held-out SSIM and L1 (0..1
  scale) every ``eval_every`` epochs (``nan`` between), minutes since this call started;
* ``tb/``: TensorBoard scalars and image summaries (sketch / output / target rows);
* ``samples.png``: the latest image summary; ``loss.png``: loss curves.

The held-out SSIM is logged to watch training only; the model kept is always the last epoch's
(no selection on the test split).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np

from ..errors import DataError
from .prepare import PairDataset, load_pairs

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    """Everything a run needs besides the data folder.

    Attributes:
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
    """

    base_filters: int = 16
    max_filters: int = 96
    d_base_filters: int = 64
    d_max_filters: int = 512
    dropout: float = 0.5
    l1_weight: float = 100.0
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 8
    epochs: int = 200
    max_minutes: Optional[float] = None
    ckpt_every: int = 10
    sample_every: int = 5
    eval_every: int = 10
    eval_frames: int = 64
    limit: Optional[int] = None
    seed: int = 0
    jit_compile: Any = "auto"

    def get_config(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


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


def _build_model(cfg: TrainConfig, resolution: int):
    import keras

    from .patchgan import PatchGANConfig
    from .pix2pix import Pix2Pix, paper_optimizer
    from .unet import UNetConfig

    keras.utils.set_random_seed(cfg.seed)
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


def _make_callbacks(run_dir: str, cfg: TrainConfig, data: PairDataset, train_sketches: np.ndarray,
                    train_frames: np.ndarray, gen_meta: Dict, start_time: float):
    import keras

    from .evaluate import image_grid, image_metrics
    from ..engine.tensorboard import EventWriter

    test = data.subset("test")
    t_idx = np.linspace(0, len(test) - 1, min(cfg.eval_frames, len(test))).round().astype(int) if len(test) else []
    test_sketches = test.sketches()[t_idx] if len(test) else None
    test_frames = test.frames[t_idx] if len(test) else None
    show_train = np.linspace(0, len(train_sketches) - 1, min(4, len(train_sketches))).round().astype(int)
    writer = EventWriter(os.path.join(run_dir, "tb"))

    def generate(model, sketches):
        out = []
        for i in range(0, len(sketches), 32):
            x = sketches[i:i + 32].astype(np.float32) / 127.5 - 1.0
            y = keras.ops.convert_to_numpy(model.generator(x, training=False))
            out.append(np.clip((y + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8))
        return np.concatenate(out)

    class RunCallback(keras.callbacks.Callback):
        """Held-out SSIM, image summaries, checkpoints and the time budget, at epoch ends."""

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            done = epoch + 1
            logs["minutes"] = (time.time() - start_time) / 60
            last = done >= cfg.epochs
            out_of_time = cfg.max_minutes is not None and (time.time() - start_time) / 60 >= cfg.max_minutes
            if out_of_time:
                log.info("time budget of %.1f min reached after epoch %d", cfg.max_minutes, done)
                self.model.stop_training = True
            final = last or out_of_time
            # Always present (NaN when not evaluated): CSVLogger fixes its columns at the first epoch.
            logs["test_ssim"] = logs["test_l1"] = float("nan")
            if test_frames is not None and (done % cfg.eval_every == 0 or final):
                outs = generate(self.model, test_sketches)
                m = image_metrics(outs, test_frames)
                logs["test_ssim"], logs["test_l1"] = m["ssim"], m["l1"]
                log.info("epoch %d (%.1f min): g_l1 %.4f g_gan %.3f d_loss %.3f | held-out SSIM %.4f L1 %.4f", done,
                         logs["minutes"], float(logs.get("g_l1", np.nan)), float(logs.get("g_gan", np.nan)),
                         float(logs.get("d_loss", np.nan)), m["ssim"], m["l1"])
            for k, v in logs.items():
                if np.isfinite(float(v)):
                    writer.scalar(f"epoch/{k}", float(v), done)
            if done % cfg.sample_every == 0 or final:
                rows = [image_grid(train_sketches[show_train], generate(self.model, train_sketches[show_train]),
                                   train_frames[show_train], max_cols=4)]
                if test_frames is not None:
                    k = np.linspace(0, len(test_sketches) - 1, min(4, len(test_sketches))).round().astype(int)
                    rows.append(image_grid(test_sketches[k], generate(self.model, test_sketches[k]), test_frames[k],
                                           max_cols=4))
                grid = np.hstack(rows) if len(rows) == 2 and rows[0].shape[0] == rows[1].shape[0] else rows[0]
                writer.image("samples/train_then_test (rows: sketch, output, target)", grid, done)
                import cv2

                cv2.imwrite(os.path.join(run_dir, "samples.png"), grid)
            writer.flush()
            _append_csv(os.path.join(run_dir, "metrics.csv"), done - 1, logs)
            if done % cfg.ckpt_every == 0 or final:
                save_checkpoint(self.model, run_dir, done, gen_meta)

        def on_train_end(self, logs=None):
            writer.close()

    return [RunCallback()]


CSV_COLUMNS = ("epoch", "g_gan", "g_l1", "d_loss", "d_real", "d_fake", "test_ssim", "test_l1", "minutes")


def _append_csv(path: str, epoch: int, logs: Dict) -> None:
    """One row of ``metrics.csv`` (header on a new file; resumed runs append)."""
    new = not os.path.isfile(path) or os.path.getsize(path) == 0
    row = {"epoch": epoch, **{k: f"{float(v):.6g}" for k, v in logs.items() if k in CSV_COLUMNS}}
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, CSV_COLUMNS, restval="nan", extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


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


def train(data_dir: str, run_dir: str, cfg: TrainConfig = TrainConfig(), resume: bool = True, verbose: int = 2):
    """Train (or resume) a reenactment pix2pix.

    Args:
        data_dir: folder written by :func:`~.prepare.prepare_dataset`.
        run_dir: run folder (created); resumed from when it holds ``ckpt.keras`` and ``resume``.
        cfg: hyper-parameters; on resume the saved networks are kept and only the schedule fields
            (epochs, max_minutes, every-N settings) of ``cfg`` apply.
        resume: continue from ``run_dir``'s checkpoint when there is one.
        verbose: Keras progress verbosity.

    Returns:
        The trained :class:`~.pix2pix.Pix2Pix`.

    Raises:
        DataError: no training pairs.
    """
    import keras

    from . import pix2pix  # noqa: F401  (registers Pix2Pix for loading)

    data = load_pairs(data_dir)
    train_set = data.subset("train")
    if cfg.limit:
        train_set = PairDataset(train_set.frames[:cfg.limit], train_set.landmarks[:cfg.limit],
                                train_set.frame_index[:cfg.limit], train_set.split[:cfg.limit], data.meta)
    if len(train_set) == 0:
        raise DataError(f"{data_dir}: no training pairs")
    os.makedirs(run_dir, exist_ok=True)
    ckpt, state_path = os.path.join(run_dir, "ckpt.keras"), os.path.join(run_dir, "state.json")
    initial_epoch = 0
    if resume and os.path.isfile(ckpt) and os.path.isfile(state_path):
        model = keras.saving.load_model(ckpt)
        with open(state_path) as f:
            initial_epoch = int(json.load(f)["next_epoch"])
        log.info("resuming %s at epoch %d", run_dir, initial_epoch)
    else:
        model = _build_model(cfg, data.resolution)
    if model.generator_config.resolution != data.resolution:
        raise DataError(f"{data_dir}: pairs are {data.resolution} px but the model in {run_dir} is "
                        f"{model.generator_config.resolution} px")
    resolved = {"data": os.path.abspath(data_dir), "train": cfg.get_config(), "model": model.get_config(),
                "backend": keras.backend.backend(), "pairs_train": len(train_set),
                "pairs_test": int((data.split == 1).sum()), "initial_epoch": initial_epoch}
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(resolved, f, indent=1, default=str)
    gen_meta = generator_meta(data.meta, {"generator": model.generator_config.get_config(),
                                          "discriminator": model.discriminator_config.get_config(),
                                          "l1_weight": model.l1_weight})
    if initial_epoch >= cfg.epochs:
        log.info("%s: already trained for %d epochs", run_dir, initial_epoch)
        return model
    sketches = train_set.sketches()
    callbacks = _make_callbacks(run_dir, cfg, data, sketches, train_set.frames, gen_meta, time.time())
    log.info("training on %d pairs at %d px, %s backend, epochs %d..%d", len(train_set), data.resolution,
             keras.backend.backend(), initial_epoch, cfg.epochs)
    model.fit(sketches, train_set.frames, batch_size=cfg.batch_size, epochs=cfg.epochs, initial_epoch=initial_epoch,
              shuffle=True, callbacks=callbacks, verbose=verbose)
    plot_losses(run_dir)
    return model


def plot_losses(run_dir: str) -> Optional[str]:
    """``loss.png`` from ``metrics.csv`` (skipped without matplotlib)."""
    path = os.path.join(run_dir, "metrics.csv")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: no loss plot")
        return None
    with open(path) as f:
        rows: List[Dict[str, str]] = list(csv.DictReader(f))
    if not rows:
        return None
    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, keys in zip(axes, (("g_l1", "test_l1"), ("g_gan", "d_loss"), ("test_ssim",))):
        for k in keys:
            pts = [(e, float(r[k])) for e, r in zip(ep, rows) if r.get(k) not in (None, "", "nan")]
            if pts:
                ax.plot(*zip(*pts), label=k)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = os.path.join(run_dir, "loss.png")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
