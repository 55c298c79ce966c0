"""Training of our embedders (``facenet``: triplet loss, ``siamese``: pair loss) on aligned crops.

Pipeline: photos (folder per person) -> our detector (+ retries) -> 5-point landmarks -> aligned
crops stored once as JPEG bytes in an ``.npz`` (:func:`build_crops`), then P x K batches with
on-the-fly augmentation (:class:`AugmentedBatches`), a time-budgeted cosine learning-rate
schedule and a validation of pair separability on held-out people after every epoch.

Crops are stored larger than the network input (``store_size`` > ``input_size``, with matching
``store_padding``) so random crops, shifts and zooms never reach the border; the centre
``input_size`` crop equals the inference crop (``input_size``, ``padding``).

Writes ``runs/embedder/<name>/``: ``config.json``, ``model.keras`` + ``model.json`` (card),
``metrics.csv``, ``loss.png``, ``tb/`` (TensorBoard, when a writer is available).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import threading
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from ..errors import DataError

log = logging.getLogger(__name__)

DEFAULTS: Dict = {
    "model": "facenet",       # or "siamese"
    "input_size": 112,        # network input, pixels
    "padding": 0.2,           # alignment padding of the inference crop
    "store_size": 128,        # stored crop side (input_size + margin for augmentation)
    "dim": 128,
    "width": 1.0,             # facenet channel multiplier
    "filters": [32, 64, 128, 256],  # siamese tower channels per block
    "dropout": 0.2,
    "p": 64,                  # people per batch
    "k": 4,                   # photos per person
    "margin": 0.2,            # triplet margin (squared distance)
    "lr": 2e-3,
    "weight_decay": 5e-4,
    "warmup": 0.05,           # fraction of the budget with linear warm-up
    "time_budget_s": 180.0,   # training stops after this much wall time (schedule follows it)
    "max_epochs": 1000,
    "steps_per_epoch": 50,
    "seed": 0,
    "flip": True,             # card: test-time flip averaging
    "erase": 0.0,             # random-erasing probability per training view (occlusion robustness)
    "init": None,             # start from this embedder (.keras file or .weights.h5 of the same network)
    "schedule": "cosine",     # "cosine" over the budget, or "constant" (fine-tuning / weight averaging)
    "swa_start": -1,          # from this epoch on, average the weights of every epoch end (SWA); -1 = off
    "fold_val": False,        # train on the validation people too (final recipe: nothing is watched,
                              # the last weights are kept; the held-out people stay untouched)
    "train_splits": ["train"],  # crops-file splits trained on (e.g. + "identify": more people, but then
                                # the open-set identification test is no longer held out for this model)
}


#: People splits a crops file may hold: never ``verify``, the verification test people.
CROP_SPLITS = ("train", "val", "identify")
#: Splits ``train_splits`` may name (``val`` joins through ``fold_val``, which also stops validation).
TRAIN_SPLITS = ("train", "identify")


def store_padding(input_size: int, padding: float, store_size: int) -> float:
    """Padding of a ``store_size`` crop whose centre ``input_size`` crop has ``padding``."""
    return ((store_size / input_size) * (1.0 + 2.0 * padding) - 1.0) / 2.0


# ------------------------------------------------------------------------------------------------
# Crops
# ------------------------------------------------------------------------------------------------

def build_crops(root: str, out_path: str, finder=None, splits: Sequence[str] = ("train", "val"),
                input_size: int = 112, padding: float = 0.2, store_size: int = 128,
                cache_dir: Optional[str] = None, quality: int = 95) -> Dict:
    """Detect, align and store the faces of the people of ``splits`` as a compact ``.npz``.

    Photos where the finder sees no face are skipped (and counted); photos with several faces
    use the main one (see :class:`~.faces.FaceFinder`).

    Returns:
        Summary ``{"photos", "faces", "no_face", "several", "people"}``.
    """
    from ..imaging import read_image
    from .align import align_face
    from .dataset import FaceCache, list_identities, split_identities
    from .faces import FaceFinder

    if not splits or set(splits) - set(CROP_SPLITS):
        raise ValueError(f"crop splits must be a non-empty subset of {', '.join(CROP_SPLITS)}; got {list(splits)}")
    people = list_identities(root)
    split = split_identities(list(people))
    cache = FaceCache(finder or FaceFinder("default"), cache_dir)
    pad = store_padding(input_size, padding, store_size)
    blobs, labels, names, tags, paths = [], [], [], [], []
    stats = {"photos": 0, "faces": 0, "no_face": 0, "several": 0}
    for tag in splits:
        for person in split[tag]:
            for path in people[person]:
                stats["photos"] += 1
                e = cache.get(path)
                if not e.get("points5"):
                    stats["no_face"] += 1
                    continue
                stats["several"] += len(e["boxes"]) > 1
                crop = align_face(read_image(path), np.asarray(e["points5"], np.float32), store_size, pad)
                ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
                blobs.append(buf.reshape(-1))
                if person not in names:
                    names.append(person)
                labels.append(names.index(person))
                tags.append(tag)
                paths.append(os.path.relpath(path, root))
                stats["faces"] += 1
    cache.save()
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    np.savez(out_path, jpeg=np.concatenate(blobs) if blobs else np.zeros(0, np.uint8), offsets=offsets,
             label=np.array(labels, np.int32), person=np.array(names), split=np.array(tags),
             path=np.array(paths), meta=np.array(json.dumps({
                 "input_size": input_size, "padding": padding, "store_size": store_size,
                 "store_padding": pad, "finder": cache.finder.describe(), "root": os.path.abspath(root)})))
    stats["people"] = len(names)
    log.info("crops: %s -> %s", stats, out_path)
    return stats


def load_crops(path: str) -> Dict:
    """Decode a crops ``.npz`` into ``{"images": (N, S, S, 3) uint8 BGR, "label", "split", "meta"...}``."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: crops file not found")
    try:
        z = np.load(path, allow_pickle=False)
        jpeg, off = z["jpeg"], z["offsets"]
        imgs = [cv2.imdecode(jpeg[off[i]:off[i + 1]], cv2.IMREAD_COLOR) for i in range(len(off) - 1)]
        out = {"label": z["label"], "split": z["split"], "person": z["person"], "path": z["path"],
               "meta": json.loads(str(z["meta"]))}
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a crops file ({exc})") from exc
    if any(im is None for im in imgs):
        raise DataError(f"{path}: a stored crop does not decode")
    out["images"] = np.stack(imgs) if imgs else np.zeros((0, 1, 1, 3), np.uint8)
    return out


def center_crop(images: np.ndarray, size: int) -> np.ndarray:
    """Centre ``size`` x ``size`` crop of ``(N, S, S, 3)`` images."""
    o = (images.shape[1] - size) // 2
    return images[:, o:o + size, o:o + size]


# ------------------------------------------------------------------------------------------------
# Augmented P x K batches
# ------------------------------------------------------------------------------------------------

def augment(img: np.ndarray, size: int, rng: np.random.Generator, erase: float = 0.0) -> np.ndarray:
    """One random view of a stored crop: rotation +-10 deg, scale 0.9-1.1, shift +-5 %, mirror,
    brightness/contrast/saturation jitter, sometimes grey or low-resolution (blurry webcams), and
    with probability ``erase`` a random rectangle (2-20 % of the area) replaced by noise
    (occlusions: hands, microphones, sunglasses).

    Args:
        img: ``(S, S, 3)`` uint8 stored crop.
        size: output side (the network input).
        erase: random-erasing probability.

    Returns:
        ``(size, size, 3)`` float32 pixel values in [0, 255].
    """
    s = img.shape[0]
    ang = rng.uniform(-10, 10)
    scale = rng.uniform(0.9, 1.1)
    tx, ty = rng.uniform(-0.05, 0.05, 2) * size
    m = cv2.getRotationMatrix2D((s / 2.0, s / 2.0), ang, scale)
    m[:, 2] += (size - s) / 2.0 + np.array([tx, ty])
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.2:  # low resolution
        r = int(rng.uniform(0.3, 0.6) * size)
        out = cv2.resize(cv2.resize(out, (r, r), interpolation=cv2.INTER_AREA), (size, size))
    x = out.astype(np.float32)
    if rng.random() < 0.1:
        x[:] = x.mean(axis=2, keepdims=True)
    else:
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.6, 1.4)  # saturation
    mean = x.mean()
    x = (x - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.7, 1.3)  # contrast, brightness
    if erase > 0 and rng.random() < erase:
        area = rng.uniform(0.02, 0.2) * size * size
        aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
        eh = int(min(size, np.sqrt(area * aspect)))
        ew = int(min(size, np.sqrt(area / aspect)))
        y0, x0 = int(rng.integers(0, size - eh + 1)), int(rng.integers(0, size - ew + 1))
        x[y0:y0 + eh, x0:x0 + ew] = rng.uniform(0, 255, (eh, ew, 3))
    return np.clip(x, 0, 255)


def _make_batches(images: np.ndarray, labels: np.ndarray, size: int, p: int, k: int, steps: int, seed: int,
                  erase: float = 0.0):
    import keras

    from .triplet import PKSampler

    class AugmentedBatches(keras.utils.PyDataset):
        """``steps`` random P x K batches per epoch, augmented in worker threads."""

        def __init__(self):
            super().__init__(workers=8, use_multiprocessing=False, max_queue_size=16)
            self.sampler = PKSampler(labels, p, k, seed)
            self._lock = threading.Lock()
            self._n = 0

        def __len__(self):
            return steps

        def __getitem__(self, i):
            with self._lock:
                idx = self.sampler.batch()
                self._n += 1
                rng = np.random.default_rng([seed, self._n])
            x = np.stack([augment(images[j], size, rng, erase) for j in idx])
            return x, labels[idx].astype(np.int32)

    return AugmentedBatches()


# ------------------------------------------------------------------------------------------------
# Validation and schedule
# ------------------------------------------------------------------------------------------------

def embed_crops(net, crops: np.ndarray, flip: bool = True, batch: int = 256) -> np.ndarray:
    """L2-normalised embeddings of input-size crops (optionally averaged with the mirror image)."""
    from ..engine.distributed_keras import predict_on_batch  # also under a data-parallel distribution
    from .embedders import l2_normalize

    def fwd(x):
        return np.concatenate([predict_on_batch(net, x[i:i + batch].astype(np.float32))
                               for i in range(0, len(x), batch)])

    v = fwd(crops)
    if flip:
        v = v + fwd(crops[:, :, ::-1])
    return l2_normalize(v)


def pair_separability(emb: np.ndarray, labels: np.ndarray) -> Dict[str, float]:
    """All-pairs verification quality of a labelled set: best-threshold accuracy on balanced
    pairs (genuine and impostor weighted equally) and ROC AUC."""
    from .metrics import roc_auc

    sims = (1.0 + emb @ emb.T) / 2.0
    iu = np.triu_indices(len(labels), 1)
    s, y = sims[iu], (labels[:, None] == labels[None, :])[iu]
    order = np.argsort(-s)
    tp = np.cumsum(y[order]) / max(1, y.sum())
    fp = np.cumsum(~y[order]) / max(1, (~y).sum())
    bal_acc = float(np.max(0.5 * (tp + 1.0 - fp)))
    return {"val_acc": bal_acc, "val_auc": roc_auc(s, y)}


def selection_score(m: Dict[str, float]) -> float:
    """What picks the kept weights: validation ROC AUC, or the pair accuracy where the AUC is
    undefined (validation people without an impostor or genuine pair)."""
    auc = m.get("val_auc", float("nan"))
    return float(auc) if math.isfinite(auc) else float(m.get("val_acc", -1.0))


def _callbacks(cfg: Dict, run_dir: str, net, val_x, val_y, t0: float, elapsed=None):
    import keras

    elapsed = elapsed or (lambda: time.time() - t0)  # several hosts: host 0's clock (same LR, same stop)

    class Schedule(keras.callbacks.Callback):
        """Cosine learning rate over the wall-time budget (with linear warm-up); stops at the end.

        Set before every step, not every epoch: on a slow machine an epoch can last longer than the
        whole warm-up, which a per-epoch schedule would spend at its first (near-zero) value.
        """

        def on_train_batch_begin(self, batch, logs=None):
            f = min(1.0, elapsed() / cfg["time_budget_s"])
            w = cfg["warmup"]
            if cfg["schedule"] == "constant":
                lr = cfg["lr"] * (f / w if f < w else 1.0)
            else:
                lr = cfg["lr"] * (f / w if f < w else 0.5 * (1 + math.cos(math.pi * (f - w) / (1 - w))))
            self.model.optimizer.learning_rate.assign(max(lr, cfg["lr"] * 1e-3))

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["lr"] = float(np.asarray(self.model.optimizer.learning_rate))
                logs["elapsed_s"] = elapsed()
            if elapsed() >= cfg["time_budget_s"]:
                self.model.stop_training = True

    class Validate(keras.callbacks.Callback):
        """Pair separability of the validation people; keeps the best weights.

        With ``swa_start >= 0`` it also keeps the running average of the weights of every epoch
        end from that epoch on (stochastic weight averaging, Izmailov et al. 2018: the average of
        the points a constant-LR run wanders through generalises better than any one of them;
        batch-norm statistics are averaged with the rest) and scores that average too. When
        training starts from ``init``, the starting weights are scored first, so the run can
        never hand back something worse on validation than what it started from.
        """

        def __init__(self):
            super().__init__()
            self.best, self.best_weights, self.best_source = -1.0, None, None
            self.swa, self.swa_n = None, 0

        def _score(self, weights, source, logs, prefix=""):
            m = pair_separability(embed_crops(net, val_x, cfg["flip"]), val_y)
            if logs is not None:
                logs.update({prefix + k: v for k, v in m.items()})
            key = selection_score(m)
            if key > self.best:
                self.best, self.best_weights, self.best_source = key, weights, source
                # On disk too: a crash later in the run must not lose the training.
                net.save_weights(os.path.join(run_dir, "best.weights.h5"))
            return m

        def on_train_begin(self, logs=None):
            if cfg["init"] and len(val_x):
                m = self._score(net.get_weights(), "init", None)
                log.info("start (%s): val_acc %.4f val_auc %.4f", cfg["init"], m["val_acc"], m["val_auc"])

        def on_epoch_end(self, epoch, logs=None):
            if logs is None:
                return
            if len(val_x) == 0:  # nothing watched (e.g. --fold-val): progress still goes to the log
                log.info("epoch %d: loss %.4f (%.0f s)", epoch + 1, logs.get("loss", float("nan")),
                         time.time() - t0)
                return
            current = net.get_weights()
            m = self._score(current, f"epoch {epoch + 1}", logs)
            msg = ""
            if cfg["swa_start"] >= 0:  # the CSV logger fixes its columns at the first epoch
                logs.update(swa_val_acc=float("nan"), swa_val_auc=float("nan"))
            if 0 <= cfg["swa_start"] <= epoch:
                self.swa_n += 1
                if self.swa is None:
                    self.swa = [np.array(w, np.float64) for w in current]
                else:
                    for a, w in zip(self.swa, current):
                        a += (w - a) / self.swa_n
                avg = [a.astype(w.dtype) for a, w in zip(self.swa, current)]
                net.set_weights(avg)
                ms = self._score(avg, f"SWA of epochs {cfg['swa_start'] + 1}-{epoch + 1}", logs, "swa_")
                net.set_weights(current)  # training goes on from its own weights
                msg = f" | SWA of {self.swa_n}: val_acc {ms['val_acc']:.4f} val_auc {ms['val_auc']:.4f}"
            log.info("epoch %d: loss %.4f val_acc %.4f val_auc %.4f (%.0f s)%s", epoch + 1,
                     logs.get("loss", float("nan")), m["val_acc"], m["val_auc"], time.time() - t0, msg)

    sched, val = Schedule(), Validate()
    cbs = [sched, val, keras.callbacks.CSVLogger(os.path.join(run_dir, "metrics.csv"))]
    tb = _tensorboard(run_dir)
    if tb is not None:
        cbs.append(tb)
    return cbs, val


def scalar_writer(logdir: str):
    """A ``write(tag, value, step)`` function producing TensorBoard event files, or ``None``.

    Uses TensorFlow's own summary ops with a hand-made ``scalars`` plugin tag, so it works
    without the ``tensorboard`` package (which ``tf.summary.scalar`` insists on); falls back to
    ``torch.utils.tensorboard`` (e.g. on a GPU machine with only JAX/PyTorch).
    """
    try:
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2
        from tensorflow.python.ops import summary_ops_v2

        writer = tf.summary.create_file_writer(logdir)
        meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))

        def write(tag, value, step):
            with writer.as_default():
                summary_ops_v2.write(tag, tf.constant(float(value), tf.float32), step=int(step), metadata=meta)
            writer.flush()

        return write
    except Exception:
        pass
    try:
        from torch.utils.tensorboard import SummaryWriter

        w = SummaryWriter(logdir)

        def write(tag, value, step):
            w.add_scalar(tag, float(value), int(step))
            w.flush()

        return write
    except Exception:
        log.info("no TensorBoard writer available (metrics.csv still written)")
        return None


def _tensorboard(run_dir: str):
    """Callback writing every epoch's logs to ``run_dir/tb`` (``None`` without a writer)."""
    import keras

    write = scalar_writer(os.path.join(run_dir, "tb"))
    if write is None:
        return None

    class Scalars(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for k, v in (logs or {}).items():
                try:
                    write(f"epoch_{k}", float(v), epoch)
                except (TypeError, ValueError):
                    pass

    return Scalars()


def csv_to_tensorboard(run_dir: str) -> bool:
    """Write ``run_dir/metrics.csv`` as TensorBoard scalars in ``run_dir/tb`` (for runs made
    where no writer was available); returns whether anything was written."""
    path = os.path.join(run_dir, "metrics.csv")
    write = scalar_writer(os.path.join(run_dir, "tb")) if os.path.isfile(path) else None
    if write is None:
        return False
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k != "epoch" and v not in ("", None):
                    write(f"epoch_{k}", float(v), int(row["epoch"]))
    return True


def plot_metrics(csv_path: str, png_path: str, title: str = "") -> None:
    """Loss and validation curves of ``metrics.csv`` as a PNG."""
    if not os.path.isfile(csv_path):
        return
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [int(r["epoch"]) + 1 for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(ep, [float(r["loss"]) for r in rows], label="train loss")
    ax[0].set_xlabel("epoch")
    ax[0].legend()
    keys = [k for k in ("val_acc", "val_auc") if rows[0].get(k, "") != ""]
    if not keys and rows[0].get("lr", "") != "":
        keys = ["lr"]  # no validation people (--fold-val): the learning rate instead of an empty panel
    for key in keys:
        ax[1].plot(ep, [float(r[key]) for r in rows], label=key)
    ax[1].set_xlabel("epoch")
    if keys:
        ax[1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------

def load_init_weights(net, path: str) -> None:
    """Copy the weights of ``path`` (a saved embedder ``.keras`` or a ``.weights.h5``) into ``net``.

    Raises:
        DataError: the file is missing, unreadable or holds another architecture.
    """
    import keras

    if not os.path.isfile(path):
        raise DataError(f"{path}: init weights not found")
    try:
        if path.endswith(".weights.h5"):
            net.load_weights(path)
        else:
            src = keras.saving.load_model(path, compile=False)
            net.set_weights(src.get_weights())
    except Exception as e:  # keras raises ValueError / OSError / KeyError depending on the damage
        raise DataError(f"{path}: cannot be used as init weights of this network "
                        f"({type(e).__name__}: {str(e)[:200]})") from e


def save_uncompiled(net, path: str) -> None:
    """Save ``net`` without optimizer state or loss (the shipped file holds weights only, a third
    of what a compiled save holds, and loads without our custom loss functions)."""
    import keras

    export = keras.Model.from_config(net.get_config())
    export.set_weights(net.get_weights())
    export.save(path)


def train_embedder(crops_path: str, run_dir: str, dist=None, **overrides) -> Dict:
    """Train ``facenet`` or ``siamese`` on a crops file; returns a summary dict.

    Args:
        crops_path: ``.npz`` from :func:`build_crops` (``train`` and ``val`` people).
        run_dir: output folder (created).
        dist: :class:`~face_tracker_core.engine.distributed.DistConfig` for data-parallel training
            (P people per global batch split over the data shards; host 0 writes ``run_dir``).
        **overrides: any key of :data:`DEFAULTS`.
    """
    from ..engine import distributed

    topo = distributed.start(dist)  # before Keras is imported: it selects the JAX backend
    import keras

    cfg = dict(DEFAULTS)
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown training options: {sorted(unknown)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if cfg["schedule"] not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {cfg['schedule']!r}")
    if not 0.0 <= float(cfg["warmup"]) < 1.0:
        raise ValueError(f"warmup is a fraction of the time budget in [0, 1), got {cfg['warmup']!r}")
    run_dir = topo.run_dir(run_dir)
    data = load_crops(crops_path)
    meta = data["meta"]
    cfg.update(input_size=meta["input_size"], padding=meta["padding"], store_size=meta["store_size"])
    if not cfg["train_splits"] or set(cfg["train_splits"]) - set(TRAIN_SPLITS):
        raise ValueError(f"train_splits must be a non-empty subset of {', '.join(TRAIN_SPLITS)}; "
                         f"got {cfg['train_splits']}")
    tr = np.isin(data["split"], list(cfg["train_splits"]))
    va = data["split"] == "val"
    if cfg["fold_val"]:
        # Once a recipe is fixed on the validation people, its final run learns from them too
        # (10 more identities for a metric learned from ~130); selection is then impossible, so
        # the schedule's last weights are kept.
        tr, va = tr | va, np.zeros_like(va)
    x_tr, y_tr = data["images"][tr], data["label"][tr]
    val_x, val_y = center_crop(data["images"][va], cfg["input_size"]), data["label"][va]
    if len(np.unique(y_tr)) < 2:
        raise DataError(f"{crops_path}: needs at least 2 training people")
    cfg.update(backend=keras.backend.backend(), crops=os.path.abspath(crops_path),
               train_people=int(len(np.unique(y_tr))), train_faces=int(len(y_tr)),
               val_people=int(len(np.unique(val_y))), val_faces=int(len(val_y)),
               **({"distributed": topo.describe()} if topo.active else {}))
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
    keras.utils.set_random_seed(cfg["seed"])

    if cfg["model"] == "facenet":
        from .facenet import build_facenet
        from .triplet import triplet_semihard_loss

        net = build_facenet(cfg["input_size"], cfg["dim"], cfg["width"], cfg["dropout"])
        train_model = net
        margin = cfg["margin"]

        def loss(y, e):
            return triplet_semihard_loss(y, e, margin)
    elif cfg["model"] == "siamese":
        from .siamese import balanced_pair_bce, build_pair_model, build_tower

        net = build_tower(cfg["input_size"], cfg["dim"], filters=tuple(cfg["filters"]), dropout=cfg["dropout"])
        train_model = build_pair_model(net)
        loss = balanced_pair_bce
    else:
        raise ValueError(f"unknown model '{cfg['model']}' (facenet or siamese)")
    if cfg["init"]:
        load_init_weights(net, cfg["init"])
    log.info("%s: %d parameters, %d training faces of %d people, backend %s", cfg["model"],
             net.count_params(), len(y_tr), cfg["train_people"], cfg["backend"])
    opt = keras.optimizers.AdamW(learning_rate=cfg["lr"], weight_decay=cfg["weight_decay"])
    train_model.compile(optimizer=opt, loss=loss)
    # Optimizer slots made now, not inside the first traced step: otherwise TensorFlow traces the
    # train step twice (once to create the variables), which costs ~25 s per run on 2 cores.
    opt.build(train_model.trainable_variables)
    batches = distributed.sharded_dataset(topo, cfg["seed"], cfg["p"], cfg["k"], lambda seed, p: _make_batches(
        x_tr, y_tr, cfg["input_size"], p, cfg["k"], cfg["steps_per_epoch"], seed, cfg["erase"]))
    t0 = time.time()
    cbs, val = _callbacks(cfg, run_dir, net, val_x, val_y, t0, topo.elapsed_fn(t0))
    train_model.fit(batches, epochs=cfg["max_epochs"], callbacks=cbs + topo.callbacks(), verbose=0)
    train_s = time.time() - t0
    if val.best_weights is not None:
        log.info("keeping the weights of %s (validation score %.4f)", val.best_source, val.best)
        net.set_weights(val.best_weights)
    cfg["selected"] = val.best_source
    head = None
    if cfg["model"] == "siamese":
        from .siamese import head_params

        head = head_params(train_model)
    summary = _write_model(net, cfg, meta, run_dir, val_x, val_y, train_s, head)
    topo.close()
    return summary


def _write_model(net, cfg: Dict, meta: Dict, run_dir: str, val_x: np.ndarray, val_y: np.ndarray,
                 train_s: float, head: Optional[Dict[str, float]]) -> Dict:
    """``model.keras`` + ``model.json`` (card) + ``loss.png`` of a trained embedding network."""
    model_path = os.path.join(run_dir, "model.keras")
    save_uncompiled(net, model_path)
    emb = embed_crops(net, val_x, cfg["flip"]) if len(val_x) else None
    final = pair_separability(emb, val_y) if emb is not None else {}
    card = {"name": cfg["model"], "input_size": cfg["input_size"], "padding": cfg["padding"],
            "dim": cfg["dim"], "flip": cfg["flip"], "params": int(net.count_params()),
            "train_seconds": round(train_s, 1), "train_people": cfg["train_people"],
            "train_faces": cfg["train_faces"], "val": final, "backend": cfg["backend"],
            "init": cfg.get("init"), "selected": cfg.get("selected"),
            "train_splits": list(cfg["train_splits"]), "fold_val": bool(cfg["fold_val"]),
            "loss": "triplet_semihard" if cfg["model"] == "facenet" else "balanced_pair_bce",
            "data": meta.get("root"), "licence": "CelebA: non-commercial research only"}
    if cfg["model"] == "siamese":
        if head is None and emb is not None:
            head = fit_pair_head(emb, val_y)
            card["head_source"] = "refit on validation pairs (training head not saved with the weights)"
        if head is not None:
            card["head"] = head
    with open(os.path.join(run_dir, "model.json"), "w") as f:
        json.dump(card, f, indent=1, sort_keys=True)
    if os.path.isfile(os.path.join(run_dir, "metrics.csv")):
        plot_metrics(os.path.join(run_dir, "metrics.csv"), os.path.join(run_dir, "loss.png"), cfg["model"])
    log.info("saved %s (%.0f s of training, val %s)", model_path, train_s, final)
    return {"model_path": model_path, "train_seconds": train_s, **final}


def fit_pair_head(emb: np.ndarray, labels: np.ndarray, iters: int = 500) -> Dict[str, float]:
    """Logistic fit of ``p(same) = sigmoid(a - b * d^2)`` on all pairs of a labelled set
    (positives and negatives weighted equally, as in training).

    Args:
        emb: ``(N, D)`` unit vectors.
        labels: ``(N,)`` person ids.
    """
    iu = np.triu_indices(len(labels), 1)
    d2 = np.maximum(2.0 - 2.0 * (emb @ emb.T), 0.0)[iu]
    y = (labels[:, None] == labels[None, :])[iu].astype(np.float64)
    w = np.where(y > 0, 0.5 / max(1.0, y.sum()), 0.5 / max(1.0, (1 - y).sum()))
    a, b = 2.0, 1.0
    for _ in range(iters):  # Newton steps on two parameters: converges in a few dozen
        z = np.clip(a - b * d2, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        g = w * (p - y)
        grad = np.array([g.sum(), -(g * d2).sum()])
        h = w * p * (1 - p)
        hess = np.array([[h.sum(), -(h * d2).sum()], [-(h * d2).sum(), (h * d2 * d2).sum()]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], max(1e-3, b - step[1])
        if np.abs(step).max() < 1e-8:
            break
    return {"a": float(a), "b": float(b)}


def finalize_run(run_dir: str) -> Dict:
    """Write ``model.keras`` + card from a run's ``best.weights.h5`` (a run stopped before its end).

    Rebuilds the network from the run's ``config.json``, loads the best validation weights and
    writes what :func:`train_embedder` writes at the end of a run.
    """
    cfg_path = os.path.join(run_dir, "config.json")
    w_path = os.path.join(run_dir, "best.weights.h5")
    for p in (cfg_path, w_path):
        if not os.path.isfile(p):
            raise DataError(f"{p}: not found (is {run_dir} an embedder run with a saved best epoch?)")
    with open(cfg_path) as f:
        cfg = dict(DEFAULTS, **json.load(f))
    data = load_crops(cfg["crops"])
    va = data["split"] == "val"
    val_x, val_y = center_crop(data["images"][va], cfg["input_size"]), data["label"][va]
    if cfg["model"] == "facenet":
        from .facenet import build_facenet

        net = build_facenet(cfg["input_size"], cfg["dim"], cfg["width"], cfg["dropout"])
    else:
        from .siamese import build_tower

        net = build_tower(cfg["input_size"], cfg["dim"], filters=tuple(cfg["filters"]), dropout=cfg["dropout"])
    net.load_weights(w_path)
    train_s = 0.0
    mpath = os.path.join(run_dir, "metrics.csv")
    if os.path.isfile(mpath):
        with open(mpath) as f:
            rows = list(csv.DictReader(f))
        if rows and rows[-1].get("elapsed_s"):
            train_s = float(rows[-1]["elapsed_s"])
    return _write_model(net, cfg, data["meta"], run_dir, val_x, val_y, train_s, None)
