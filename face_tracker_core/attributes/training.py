"""Training of the attribute model (and its optional identity pre-training), with run folders.

Pipeline (:func:`train_attributes`):

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
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..errors import DataError
from .celeba import read_attributes, read_bboxes, read_partition
from .crops import CropCache, CropItem, FaceCropper, build_crop_cache, items_from_folder
from .metrics import attribute_report, majority_classes, markdown_table, mean_row
from .runs import keras_callbacks, make_run_dir, plot_history, write_json, write_rows_csv
from ..splits import split_items, split_people

log = logging.getLogger(__name__)

__all__ = ["AttributeTrainConfig", "train_attributes", "evaluate_attribute_model", "attribute_data",
           "identity_data"]


@dataclass
class AttributeTrainConfig:
    """Everything that defines an attribute training run (written to ``config.json``).

    Paths are as given; ``runs_root/attributes/name`` receives the outputs.
    """

    attr_file: str
    images_dir: str
    name: str = "celeba"
    bbox_file: Optional[str] = None
    partition_file: Optional[str] = None
    runs_root: str = "runs"
    cache_root: str = os.path.join("runs", "cache", "attributes")
    arch: str = "resnet"
    size: int = 64
    margin: float = 0.4
    color: str = "rgb"
    detector: str = "default"
    fallback: str = "dlib_hog"
    test_frac: float = 0.2
    val_frac: float = 0.15
    split_salt: str = "celeba-attr-v1"
    batch_size: int = 32
    epochs: int = 60
    head_epochs: int = 8
    lr: float = 1e-3
    finetune_lr: float = 3e-4
    balanced_bce: bool = False
    hidden: int = 256
    dropout: float = 0.3
    seed: int = 0
    pretrain_identity: Optional[str] = None
    pretrain_teacher: Optional[str] = None
    pretrain_holdout: float = 0.35
    pretrain_epochs: int = 40
    pretrain_lr: float = 2e-3
    pretrain_embed_weight: float = 1.0
    pretrain_extra_detectors: List[str] = field(default_factory=list)
    people_salt: str = "people-v1"
    max_photos: Optional[int] = None
    init_base: Optional[str] = None
    extra: Dict = field(default_factory=dict)


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


def _save_base(base, pdir: str) -> None:
    """Keep the pre-trained base (``pretrain/conv_base.keras``) for ``--init-base`` reruns."""
    base.save(os.path.join(pdir, "conv_base.keras"))


def _init_base(base, path: str) -> Optional[dict]:
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


def _fit(model, train_seq, val_seq, epochs, lr, loss, metrics, run_dir, csv_append, initial_epoch=0):
    import keras

    steps = max(1, len(train_seq) * (epochs - initial_epoch))
    sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss=loss, metrics=metrics)
    return model.fit(train_seq, validation_data=val_seq, epochs=epochs, initial_epoch=initial_epoch, verbose=2,
                     callbacks=keras_callbacks(run_dir, append=csv_append))


def pretrain_identity(base, cfg: AttributeTrainConfig, cropper: FaceCropper, run_dir: str) -> dict:
    """Pre-train ``base`` (in place) to classify the *seen* people of ``cfg.pretrain_identity``.

    Returns:
        Summary with the people split and the validation accuracy of the identity head.
    """
    import keras

    from .data import CropBatches
    from .model import build_attribute_model

    cache, person, people = identity_data(cfg.pretrain_identity, cropper, cfg.cache_root, cfg.pretrain_holdout,
                                          cfg.people_salt)
    write_json(os.path.join(run_dir, "people_split.json"), people)
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
    pdir = os.path.join(run_dir, "pretrain")
    os.makedirs(pdir, exist_ok=True)
    hist = _fit(model, train_seq, val_seq, cfg.pretrain_epochs, cfg.pretrain_lr,
                keras.losses.SparseCategoricalCrossentropy(), ["accuracy"], pdir, False)
    plot_history(os.path.join(pdir, "metrics.csv"), os.path.join(pdir, "loss.png"), "identity pre-training")
    _save_base(base, pdir)
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


def pretrain_distill(base, cfg: AttributeTrainConfig, cropper: FaceCropper, run_dir: str, attr_cache: CropCache,
                     attr_rows, attr_paths) -> dict:
    """Pre-train ``base`` (in place) to reproduce dlib's face embedding (see :mod:`.teacher`).

    Photos: the *seen* people of ``cfg.pretrain_identity`` (the held-out people are never shown, so
    the transfer task measures new faces) plus the attribute training photos.

    Returns:
        Summary with the people split and the validation cosine similarity to the teacher.
    """
    import keras

    from .data import CropBatches
    from .teacher import teacher_targets

    if cfg.pretrain_teacher != "dlib":
        raise ValueError(f"unknown teacher '{cfg.pretrain_teacher}' (only 'dlib')")
    cache, person, people = identity_data(cfg.pretrain_identity, cropper, cfg.cache_root, cfg.pretrain_holdout,
                                          cfg.people_salt)
    write_json(os.path.join(run_dir, "people_split.json"), people)
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
    pdir = os.path.join(run_dir, "pretrain")
    os.makedirs(pdir, exist_ok=True)
    hist = _fit(model, train_seq, val_seq, cfg.pretrain_epochs, cfg.pretrain_lr, keras.losses.MeanSquaredError(),
                [], pdir, False)
    plot_history(os.path.join(pdir, "metrics.csv"), os.path.join(pdir, "loss.png"), "distillation pre-training")
    _save_base(base, pdir)
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


def train_attributes(cfg: AttributeTrainConfig) -> dict:
    """Run the whole pipeline (module docstring) and return the summary written to ``summary.json``."""
    import keras

    from .data import CropBatches
    from .losses import WeightedBCE
    from .model import build_attribute_model, build_base, save_model

    keras.utils.set_random_seed(cfg.seed)
    run_dir = make_run_dir(cfg.runs_root, "attributes", cfg.name)
    write_json(os.path.join(run_dir, "config.json"), asdict(cfg))
    cropper = _cropper(cfg)
    table, cache, splits = attribute_data(cfg, cropper)
    log.info("attribute photos: %s; split train/val/test = %d/%d/%d", cache.summary(), len(splits["train"]),
             len(splits["val"]), len(splits["test"]))
    write_json(os.path.join(run_dir, "split.json"),
               {k: [table.images[i] for i in v] for k, v in splits.items()})
    labels = table.labels.astype(np.float32)
    names = list(table.names)
    rate = labels[splits["train"]].mean(axis=0)
    majority = majority_classes(table.labels[splits["train"]])

    channels = 1 if cfg.color == "gray" else 3
    base = build_base(cfg.arch, (cfg.size, cfg.size, channels))
    if cfg.pretrain_identity and cfg.pretrain_teacher:
        # With --init-base too: distillation continues from that base.
        init = _init_base(base, cfg.init_base) if cfg.init_base else None
        paths = [os.path.join(cfg.images_dir, k) for k in cache.keys]
        pre = pretrain_distill(base, cfg, cropper, run_dir, cache, splits["train"], paths)
        if init:
            pre["continued_from"] = init
    elif cfg.init_base:
        pre = _init_base(base, cfg.init_base)
    elif cfg.pretrain_identity:
        pre = pretrain_identity(base, cfg, cropper, run_dir)
    else:
        pre = None
    model = build_attribute_model(base, len(names), cfg.hidden, cfg.dropout)
    loss = WeightedBCE(rate if cfg.balanced_bce else None)
    metrics = [keras.metrics.BinaryAccuracy(name="acc")]
    train_seq = CropBatches(cache.crops, labels, splits["train"], cfg.batch_size, augment=True, shuffle=True,
                            seed=cfg.seed)
    val_seq = CropBatches(cache.crops, labels, splits["val"], 128) if len(splits["val"]) else None
    if pre is not None and cfg.head_epochs > 0:
        base.trainable = False  # a random head would first wreck the pre-trained features
        _fit(model, train_seq, val_seq, cfg.head_epochs, cfg.lr, loss, metrics, run_dir, False)
        if cfg.epochs > 0:  # --epochs 0: the base stays as pre-trained (frozen), only the head trains
            base.trainable = True
            _fit(model, train_seq, val_seq, cfg.head_epochs + cfg.epochs, cfg.finetune_lr, loss, metrics, run_dir,
                 True, initial_epoch=cfg.head_epochs)
    else:
        _fit(model, train_seq, val_seq, cfg.epochs, cfg.lr, loss, metrics, run_dir, False)
    plot_history(os.path.join(run_dir, "metrics.csv"), os.path.join(run_dir, "loss.png"), f"attributes {cfg.name}")

    summary = {"name": cfg.name, "photos": cache.summary(), "split_sizes": {k: int(len(v)) for k, v in splits.items()},
               "pretrain": pre}
    for part in ("val", "test"):
        if len(splits[part]) == 0:
            continue
        rows, _prob = evaluate_attribute_model(model, cache.crops, labels, splits[part], majority, names)
        write_rows_csv(os.path.join(run_dir, f"attributes_{part}.csv"), rows + [mean_row(rows)])
        with open(os.path.join(run_dir, f"attributes_{part}.md"), "w", encoding="utf-8") as fh:
            fh.write(markdown_table(rows) + "\n")
        m = mean_row(rows)
        summary[part] = {k: m[k] for k in ("accuracy", "balanced_accuracy", "majority_accuracy", "gain")}
        log.info("%s: mean accuracy %.2f%% vs majority %.2f%% (%+.2f points), balanced accuracy %.2f%%", part,
                 100 * m["accuracy"], 100 * m["majority_accuracy"], 100 * m["gain"], 100 * m["balanced_accuracy"])
    meta = {"attributes": names, "crop": cropper.crop_config(), "detector": cropper.config()["detector"]
            if any(cache.status == 1) else None, "arch": cfg.arch, "threshold": 0.5, "majority": majority.tolist(),
            "train_positive_rate": [float(v) for v in rate], "trained_on": cfg.attr_file, "pretrain": pre,
            "summary": {k: summary.get(k) for k in ("val", "test", "split_sizes")}}
    base.trainable = True  # saved unfrozen: a base saved frozen reloads with inconsistent flags
    save_model(model, os.path.join(run_dir, "attributes.keras"), meta)
    write_json(os.path.join(run_dir, "summary.json"), summary)
    return summary
