"""Pre-training of the attribute model's conv base, before the attribute head is trained.

Two ways (both hold out a fraction of the people of ``cfg.pretrain_identity``, never shown, so
the transfer task can later be measured on faces the base never saw):

* :func:`pretrain_identity`: classify the *seen* people;
* :func:`pretrain_distill`: reproduce dlib's face embedding and landmarks (the teacher of
  :mod:`.teacher`) on the seen people's photos and the attribute training photos.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..engine import Run
from ..engine.callbacks import run_callbacks
from ..engine.plots import plot_metrics
from ..errors import DataError
from ..splits import split_items, split_people
from .crops import CropCache, CropItem, FaceCropper, build_crop_cache, items_from_folder

if TYPE_CHECKING:
    from .training import AttributeTrainConfig

log = logging.getLogger("face_tracker_core.attributes.training")

__all__ = ["identity_data", "save_base", "init_base", "fit_cosine", "pretrain_identity", "StackedCrops",
           "pretrain_distill", "pretrain_run"]


def identity_data(root: str, cropper: FaceCropper, cache_root: str, holdout: float, salt: str):
    """Crop cache of a folder of person folders and its people split.

    Returns:
        ``(cache, person_of_row list[str], people_split {"seen": [...], "heldout": [...]})``.
    """
    if not os.path.isdir(root):
        raise DataError(f"{root}: identity folder not found (expected one sub-folder per person)")
    items = items_from_folder(root)
    items = [it for it in items if "/" in it.key]  # photos directly in root belong to nobody
    if not items:
        raise DataError(f"{root}: no photos in person sub-folders")
    cache = build_crop_cache(items, cropper, cache_root, "identity")
    person = [k.split("/")[0] for k in cache.keys]
    return cache, person, split_people(person, holdout, salt)


def pretrain_run(run: Run) -> Run:
    """The pre-training's own run folder ``<run>/pretrain/`` (``metrics.csv``, ``tensorboard/``,
    ``loss.png``, ``conv_base.keras``): its epochs must not mix with the attribute training's."""
    return Run(run.task, run.name, path=run.file("pretrain"), chief=run.chief)


def save_base(base, pre_run: Run, title: str) -> None:
    """Loss plot of the pre-training and the pre-trained base (``pretrain/conv_base.keras``, for
    ``--init-base`` reruns)."""
    plot_metrics(pre_run.metrics_csv, pre_run.file("loss.png"), title=title)
    base.save(pre_run.file("conv_base.keras"))
    pre_run.close()


def init_base(base, path: str) -> Optional[dict]:
    """Copy conv-base weights from ``path`` (a ``conv_base.keras`` or an attribute model) into ``base``.

    Returns:
        The pre-training summary of that run (from its ``summary.json``/sidecar), if any.
    """
    import json

    from .model import conv_base_of, load_model

    src, meta = load_model(path)
    src_base = src if src.name == "conv_base" else conv_base_of(src)
    try:
        base.set_weights(src_base.get_weights())
    except ValueError as exc:
        raise DataError(f"{path}: conv base does not match --arch/--size ({exc})") from exc
    pre = meta.get("pretrain")
    summ = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "summary.json")
    if pre is None and os.path.isfile(summ):
        with open(summ, encoding="utf-8") as fh:
            pre = json.load(fh).get("pretrain")
    log.info("conv base initialised from %s", path)
    return {**(pre or {}), "init_base": path}


def fit_cosine(model, train_seq, val_seq, epochs, lr, loss, metrics, run: Run, csv_append, initial_epoch=0):
    """Compile ``model`` with Adam on a cosine-decayed learning rate and fit it, logging to ``run``
    (``metrics.csv`` with the learning rate, TensorBoard, one log line per epoch).

    Args:
        train_seq: training batches; ``val_seq``: validation batches or ``None``.
        epochs: last epoch (exclusive, Keras' convention); ``initial_epoch``: first one.
        lr: peak learning rate (decays to 2 % of it over the run).
        csv_append: append to an existing ``metrics.csv`` (a second phase of one run).

    Returns:
        Keras' ``History``.
    """
    import keras

    steps = max(1, len(train_seq) * (epochs - initial_epoch))
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, metrics=metrics)
    # No checkpoints or resume state: the run saves its model once, at the end.
    cbs = run_callbacks(run, save_last=False, backup=False, append=csv_append)
    return model.fit(train_seq, validation_data=val_seq, epochs=epochs, initial_epoch=initial_epoch, verbose=2,
                     callbacks=cbs)


def pretrain_identity(base, cfg: "AttributeTrainConfig", cropper: FaceCropper, run: Run) -> dict:
    """Pre-train ``base`` (in place) to classify the *seen* people of ``cfg.pretrain_identity``.

    Returns:
        Summary with the people split and the validation accuracy of the identity head.
    """
    import keras

    from .data import CropBatches
    from .model import build_attribute_model

    cache, person, people = identity_data(cfg.pretrain_identity, cropper, cfg.cache_root, cfg.pretrain_holdout,
                                          cfg.people_salt)
    run.write_json("people_split.json", people)
    seen = {p: i for i, p in enumerate(people["seen"])}
    rows = np.asarray([i for i in range(len(cache)) if cache.usable[i] and person[i] in seen], np.int64)
    labels = np.asarray([seen.get(p, -1) for p in person], np.int64)
    sp = split_items([cache.keys[i] for i in rows], 0.0, 0.1, "identity-val-v1")
    tr, va = rows[sp["train"]], rows[sp["val"]]
    log.info("identity pre-training: %d people, %d train / %d val photos (%d people held out)",
             len(seen), len(tr), len(va), len(people["heldout"]))
    model = build_attribute_model(base, len(seen), hidden=0, dropout=0.2, activation="softmax",
                                  name="identity_pretrain")
    train_seq = CropBatches(cache.crops, labels, tr, cfg.batch_size * 2, augment=True, shuffle=True, seed=cfg.seed)
    val_seq = CropBatches(cache.crops, labels, va, 128) if len(va) else None
    pre_run = pretrain_run(run)
    hist = fit_cosine(model, train_seq, val_seq, cfg.pretrain_epochs, cfg.pretrain_lr,
                      keras.losses.SparseCategoricalCrossentropy(), ["accuracy"], pre_run, False)
    save_base(base, pre_run, "identity pre-training")
    return {"identity_root": cfg.pretrain_identity, "people_seen": len(seen), "people_heldout": people["heldout"],
            "people_salt": cfg.people_salt, "holdout": cfg.pretrain_holdout, "train_photos": int(len(tr)),
            "val_accuracy": float(hist.history.get("val_accuracy", [float("nan")])[-1])}


class StackedCrops:
    """Rows of several crop arrays seen as one (index ``i`` of part ``k`` is ``offset[k] + i``).

    Lets pre-training mix the identity and attribute caches without copying them into RAM.
    """

    def __init__(self, parts):
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.offsets[-1]),) + tuple(self.parts[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx):
        idx = np.atleast_1d(np.asarray(idx, np.int64))
        out = np.empty((len(idx),) + self.shape[1:], self.parts[0].dtype)
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        for k in np.unique(part):
            sel = part == k
            out[sel] = self.parts[k][idx[sel] - self.offsets[k]]
        return out


def _distill_targets(cfg: "AttributeTrainConfig", cropper: FaceCropper, run: Run, attr_cache: CropCache,
                     attr_rows, attr_paths):
    """Crops and standardised teacher targets of the distillation photos.

    Returns:
        ``(crops, target, rows, all_keys, people, seen, ew)``: a :class:`StackedCrops` over every
        cache, ``(N, D)`` targets (embedding dimensions first, weighted by ``sqrt(ew)``), the usable
        rows, a key per row (``"id/<person>/<photo>"``, ``"attr/<photo>"``), the people split, the
        seen people and the embedding weight ``ew``.
    """
    from .teacher import teacher_targets

    cache, person, people = identity_data(cfg.pretrain_identity, cropper, cfg.cache_root, cfg.pretrain_holdout,
                                          cfg.people_salt)
    run.write_json("people_split.json", people)
    seen = set(people["seen"])
    id_rows = [i for i in range(len(cache)) if cache.usable[i] and person[i] in seen]
    id_paths = [os.path.join(cfg.pretrain_identity, k) for k in cache.keys]
    t_id = teacher_targets(cache, id_paths, id_rows)
    t_attr = teacher_targets(attr_cache, attr_paths, attr_rows)
    parts, tparts, keyparts = [cache.crops, attr_cache.crops], [t_id, t_attr], [
        [f"id/{k}" for k in cache.keys], [f"attr/{k}" for k in attr_cache.keys]]
    rows_l = list(id_rows) + [len(cache) + int(r) for r in attr_rows]
    # Extra crops of the *same* photos from other detectors (e.g. the shipped one, whose boxes sit
    # lower and are taller than the Haar cascade's): the teacher target of a photo does not depend on
    # the crop (dlib aligns the face itself), so they share it; this teaches the base the crop
    # geometry it meets at run time and in the transfer task.
    for det in cfg.pretrain_extra_detectors:
        xc = FaceCropper(det, margin=cfg.margin, size=cfg.size, color=cfg.color, fallback=cfg.fallback)
        for (src_cache, src_t, prefix, src_rows, kind) in (
                (cache, t_id, "id", id_rows, "identity"), (attr_cache, t_attr, "attr", attr_rows, "attr")):
            if kind == "identity":
                xcache, _, _ = identity_data(cfg.pretrain_identity, xc, cfg.cache_root, cfg.pretrain_holdout,
                                             cfg.people_salt)
            else:
                xcache = build_crop_cache([CropItem(k, p, None, k) for k, p in
                                           zip(attr_cache.keys, attr_paths)], xc, cfg.cache_root, "attr")
            want = {src_cache.keys[r] for r in src_rows}
            xt = np.full((len(xcache), src_t.shape[1]), np.nan, np.float32)
            off = sum(len(q) for q in parts)
            for i, k in enumerate(xcache.keys):
                if xcache.usable[i] and k in want:
                    xt[i] = src_t[src_cache.index[k]]
                    rows_l.append(off + i)
            parts.append(xcache.crops)
            tparts.append(xt)
            keyparts.append([f"{prefix}/{k}" for k in xcache.keys])
    crops = StackedCrops(parts)
    target = np.concatenate(tparts).astype(np.float32)
    all_keys = [k for kp in keyparts for k in kp]
    target[:, :128] /= np.linalg.norm(target[:, :128], axis=1, keepdims=True) + 1e-8
    rows = np.asarray(rows_l, np.int64)
    rows = rows[np.isfinite(target[rows]).all(axis=1)]
    # Every target dimension standardised on the training photos: MSE then weighs embedding and
    # landmark dimensions alike ...
    mu, sd = target[rows].mean(axis=0), target[rows].std(axis=0) + 1e-6
    target = np.nan_to_num((target - mu) / sd)
    # ... unless the embedding dimensions are weighted up: scaling a standardised target by sqrt(w)
    # multiplies its squared error by w (the linear projection absorbs the scale).
    ew = float(cfg.pretrain_embed_weight)
    target[:, :128] *= np.sqrt(ew)
    return crops, target, rows, all_keys, people, seen, ew


def pretrain_distill(base, cfg: "AttributeTrainConfig", cropper: FaceCropper, run: Run, attr_cache: CropCache,
                     attr_rows, attr_paths) -> dict:
    """Pre-train ``base`` (in place) to reproduce dlib's face embedding (see :mod:`.teacher`).

    Photos: the *seen* people of ``cfg.pretrain_identity`` (the held-out people are never shown, so
    the transfer task measures new faces) plus the attribute training photos.

    Returns:
        Summary with the people split and the validation cosine similarity to the teacher.
    """
    import keras

    from .data import CropBatches

    if cfg.pretrain_teacher != "dlib":
        raise ValueError(f"unknown teacher '{cfg.pretrain_teacher}' (only 'dlib')")
    crops, target, rows, all_keys, people, seen, ew = _distill_targets(cfg, cropper, run, attr_cache, attr_rows,
                                                                        attr_paths)
    keys = [all_keys[r] for r in rows]  # both crops of a photo share its key: same split
    sp = split_items(keys, 0.0, 0.1, "distill-val-v1")
    tr, va = rows[sp["train"]], rows[sp["val"]]
    log.info("distillation pre-training: %d train / %d val crops (%d people held out; extra detectors %s, "
             "embedding weight %g)", len(tr), len(va), len(people["heldout"]), cfg.pretrain_extra_detectors, ew)
    inp = keras.Input(base.input_shape[1:], name="image")
    out = keras.layers.Dense(target.shape[1], name="distill_proj")(base(inp))
    model = keras.Model(inp, out, name="distill_pretrain")
    # No mirroring: landmark targets are not mirror-symmetric; small rotations only.
    train_seq = CropBatches(crops, target, tr, cfg.batch_size * 2, augment=True, shuffle=True, seed=cfg.seed,
                            augment_kw={"flip": False, "max_rotate": 4.0})
    val_seq = CropBatches(crops, target, va, 128) if len(va) else None
    pre_run = pretrain_run(run)
    hist = fit_cosine(model, train_seq, val_seq, cfg.pretrain_epochs, cfg.pretrain_lr, keras.losses.MeanSquaredError(),
                      [], pre_run, False)
    save_base(base, pre_run, "distillation pre-training")
    emb_mse = float("nan")
    if len(va):
        pred = np.concatenate([np.asarray(model.predict_on_batch(val_seq[i][0])) for i in range(len(val_seq))])
        emb_mse = float(np.mean((pred[:, :128] - target[val_seq.read_rows(), :128]) ** 2) / ew)
        log.info("distillation: validation MSE of the standardised embedding dimensions %.3f", emb_mse)
    return {"teacher": "dlib_face_recognition_resnet_model_v1 embedding + shape_predictor_68 landmarks "
                       "(face_recognition_models)",
            "identity_root": cfg.pretrain_identity, "people_seen": len(seen), "people_heldout": people["heldout"],
            "people_salt": cfg.people_salt, "holdout": cfg.pretrain_holdout, "train_photos": int(len(tr)),
            "val_mse_standardised": float(hist.history.get("val_loss", [float("nan")])[-1]),
            "val_mse_embedding_standardised": emb_mse, "embed_weight": ew,
            "extra_detectors": list(cfg.pretrain_extra_detectors), "epochs": cfg.pretrain_epochs,
            "lr": cfg.pretrain_lr}
