"""Transfer: "is it person X?" from a trained attribute model's conv base, frozen, + one sigmoid.

The attribute model's ``conv_base`` is copied, frozen (weights *and* batch-norm statistics: it is
called in inference mode) and topped with a single ``Dense(1, sigmoid)`` neuron, on parameter-free
features: the L2-normalised global average of the top feature map, by default together with its
L2-normalised 2x2 average (:func:`build_transfer_model`). Only that neuron trains -- by default fitted
to convergence by L-BFGS on the frozen features of the training crops and augmented copies of them
(:func:`train_transfer_head`) -- unless the optional second phase unfreezes the base's top block at a
low learning rate.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from .metrics import roc_auc, tar_at_far
from ..splits import hash_fraction, split_of

log = logging.getLogger(__name__)

__all__ = ["build_transfer_model", "train_transfer_head", "TransferResult", "score_rows", "weights_equal",
           "unfreeze_top_block", "pick_people", "DEFAULT_HEAD", "POOLINGS"]


POOLINGS = ("gap", "multiscale")
#: Head used by :func:`run_target` unless told otherwise (chosen on pseudo-targets among the
#: training-negative people, never on the evaluation people: see the model card).
DEFAULT_HEAD = {"pooling": "multiscale", "solver": "lbfgs", "copies": 32, "l2": 1e-5}


def build_transfer_model(attribute_model, normalize: bool = True, dropout: float = 0.0, name: str = "is_target",
                         pooling: str = "gap"):
    """Frozen copy of ``attribute_model``'s conv base + one sigmoid neuron.

    Args:
        attribute_model: a model with a nested ``conv_base`` (see :mod:`.model`), or the base itself.
        normalize: L2-normalise the base features first (no weights; makes one linear neuron
            behave like a cosine-similarity template, which transfers better to new faces).
        dropout: dropout on the features while training the head.
        pooling: ``"gap"``: the base's own global-average-pooled output; ``"multiscale"``: the top
            block's feature map pooled two ways, global average *and* 2x2 average (where in the face a
            feature fires: upper/lower, left/right), each L2-normalised, concatenated (no weights).

    Returns:
        Model ``[B, H, W, C]`` (0..255) ``-> [B, 1]`` probability that the face is the target.
    """
    import keras

    from .model import block_names, conv_base_of

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling '{pooling}' (choose from {', '.join(POOLINGS)})")
    src = attribute_model if attribute_model.name == "conv_base" else conv_base_of(attribute_model)
    # A base saved frozen comes back with trainable=False on its blocks but not on the variables
    # inside them, and a clone keeps that mix (its "frozen" base would then train): clone it as
    # trainable, then freeze the clone, which reaches every variable.
    was = src.trainable
    src.trainable = True
    base = keras.models.clone_model(src)  # a copy: the attribute model itself stays untouched
    src.trainable = was
    base.set_weights(src.get_weights())
    base.trainable = False
    inp = keras.Input(src.input_shape[1:], name="image")
    if pooling == "gap":
        x = base(inp, training=False)  # inference mode: frozen batch-norm statistics too
        if normalize:
            x = keras.layers.UnitNormalization(name="feature_norm")(x)
    else:
        # The same (copied) layers up to the top block's feature map, still named "conv_base".
        fmap = keras.Model(base.input, base.get_layer(block_names(base)[-1]).output, name="conv_base")
        fmap.trainable = False
        m = fmap(inp, training=False)
        h, w = int(m.shape[1]), int(m.shape[2])
        g = keras.layers.GlobalAveragePooling2D(name="pool_global")(m)
        q = keras.layers.Flatten(name="pool_2x2_flat")(
            keras.layers.AveragePooling2D((max(1, h // 2), max(1, w // 2)), name="pool_2x2")(m))
        if normalize:
            g = keras.layers.UnitNormalization(name="feature_norm")(g)
            q = keras.layers.UnitNormalization(name="feature_norm_2x2")(q)
        x = keras.layers.Concatenate(name="features")([g, q])
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="target_prob")(x)
    return keras.Model(inp, out, name=name)


def unfreeze_top_block(model) -> List[str]:
    """Make only the base's top block trainable (second phase); returns the names unfrozen."""
    from .model import block_names, conv_base_of

    base = conv_base_of(model)
    top = block_names(base)[-1]
    base.trainable = True
    names = []
    for layer in base.layers:
        layer.trainable = layer.name.split("_")[0] == top
        if layer.trainable and layer.weights:
            names.append(layer.name)
    return names


def weights_equal(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """Exact equality of two weight lists."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def train_transfer_head(model, crops: np.ndarray, pos_rows: Sequence[int], neg_rows: Sequence[int],
                        epochs: int = 30, lr: float = 0.05, batch_size: int = 64, seed: int = 0,
                        run_dir: Optional[str] = None, csv_name: str = "metrics.csv", append: bool = False,
                        solver: str = "adam", copies: int = 4, l2: float = 1e-4):
    """Train the trainable part of ``model`` on positive vs negative crop rows.

    Classes are re-weighted to count equally (a person has ~10 photos against hundreds of others).

    Args:
        solver: ``"adam"``: ``epochs`` of Adam (cosine decay from ``lr``) through the whole model on
            freshly augmented crops; ``"lbfgs"`` (base fully frozen only): the frozen features of
            every training crop and of ``copies`` augmented versions of it are computed once, and the
            neuron is fitted to convergence on them by L-BFGS (class-weighted logistic loss, mean over
            photos, plus ``l2/2 * |w|^2``). Same model, same single neuron; a converged fit instead of
            240 noisy steps.
    """
    import keras

    from .data import CropBatches
    from .runs import keras_callbacks

    pos_rows = np.asarray(pos_rows, np.int64)
    neg_rows = np.asarray(neg_rows, np.int64)
    rows = np.concatenate([pos_rows, neg_rows])
    if solver == "lbfgs":
        if any(w.trainable for w in model.weights if "target_prob" not in w.path):
            raise ValueError("solver 'lbfgs' needs the base fully frozen (use 'adam' for an unfrozen block)")
        return _fit_head_lbfgs(model, crops, pos_rows, neg_rows, copies, l2, seed, batch_size,
                               os.path.join(run_dir, csv_name) if run_dir else None)
    if solver != "adam":
        raise ValueError(f"unknown solver '{solver}' (adam, lbfgs)")
    y = np.zeros(len(crops), np.float32)
    y[pos_rows] = 1.0
    seq = CropBatches(crops, y[:, None], rows, batch_size, augment=True, shuffle=True, seed=seed)
    n = len(rows)
    cw = {0: n / (2.0 * max(1, len(neg_rows))), 1: n / (2.0 * max(1, len(pos_rows)))}
    steps = max(1, len(seq) * epochs)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.05)),
                  loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    cbs = keras_callbacks(run_dir, csv_name, append) if run_dir else []
    return model.fit(seq, epochs=epochs, class_weight=cw, verbose=0, callbacks=cbs)


def _head_features(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Inputs of the ``target_prob`` neuron (frozen, inference mode) for a batch of crops."""
    import keras

    feat = keras.Model(model.inputs, model.get_layer("target_prob").input)
    out = [np.asarray(feat(x[i:i + batch_size].astype(np.float32), training=False))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def _fit_head_lbfgs(model, crops, pos_rows, neg_rows, copies: int, l2: float, seed: int, batch_size: int,
                    csv_path: Optional[str]):
    from scipy.optimize import minimize

    from .data import augment_crop

    rng = np.random.default_rng(seed)
    rows = np.concatenate([pos_rows, neg_rows])
    x0 = np.asarray(crops[np.sort(rows)])
    order = np.argsort(np.argsort(rows))  # crops[np.sort(rows)][order] == crops[rows]
    x0 = x0[order]
    n_sets = 1 + max(0, copies)
    # One set of crops (original, then each augmented copy) at a time: only features stay in RAM.
    feats = np.concatenate([_head_features(model, x0 if k == 0 else np.stack([augment_crop(im, rng) for im in x0]),
                                           batch_size * 4) for k in range(n_sets)]).astype(np.float64)
    y = np.tile(np.r_[np.ones(len(pos_rows)), np.zeros(len(neg_rows))], n_sets)
    # Each class weighs half of the loss; each photo (with its augmented copies) equally within it.
    wt = np.where(y > 0, 0.5 / len(pos_rows), 0.5 / len(neg_rows)) / n_sets
    d = feats.shape[1]
    layer = model.get_layer("target_prob")
    history = []

    def objective(p):
        z = feats @ p[:d] + p[d]
        pr = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        loss = float(-(wt * (y * np.log(pr + 1e-12) + (1 - y) * np.log(1 - pr + 1e-12))).sum()
                     + 0.5 * l2 * (p[:d] ** 2).sum())
        g = wt * (pr - y)
        return loss, np.r_[feats.T @ g + l2 * p[:d], g.sum()]

    res = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 5000},
                   callback=lambda p: history.append(objective(p)[0]))
    k, b = layer.get_weights()
    layer.set_weights([res.x[:d].reshape(k.shape).astype(k.dtype), np.array([res.x[d]], b.dtype)])
    log.debug("head L-BFGS: %d iterations, loss %.4f (%s)", res.nit, res.fun, res.message)
    if csv_path:
        os.makedirs(os.path.dirname(os.path.abspath(csv_path)), exist_ok=True)
        with open(csv_path, "w", encoding="utf-8") as fh:
            fh.write("epoch,loss\n" + "".join(f"{i},{v:.6g}\n" for i, v in enumerate(history)))
    return res


def score_rows(model, crops: np.ndarray, rows: Sequence[int], batch_size: int = 256) -> np.ndarray:
    """``(len(rows),)`` target probabilities, in the order of ``rows``."""
    rows = np.asarray(rows, np.int64)
    out = []
    for i in range(0, len(rows), batch_size):
        x = np.asarray(crops[rows[i:i + batch_size]]).astype(np.float32)
        out.append(np.asarray(model.predict_on_batch(x)).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


@dataclass
class TransferResult:
    """Scores of one "is it X" classifier.

    Attributes:
        target: person id.
        train_pos, train_neg, test_pos, test_neg: photo counts.
        auc: ROC AUC of held-out photos of X vs photos of unseen people.
        tar_at_far_1e2: true accept rate at 1% false accepts on the same.
        frozen_unchanged: the frozen base weights were bit-identical after training.
        head_changed: the head's weights moved.
    """

    target: str
    train_pos: int
    train_neg: int
    test_pos: int
    test_neg: int
    auc: float
    tar_at_far_1e2: float
    frozen_unchanged: bool
    head_changed: bool
    auc_phase2: Optional[float] = None
    tar_phase2: Optional[float] = None


def pick_people(people_rows: Dict[str, List[int]], candidates: Sequence[str], n_targets: int, min_photos: int,
                salt: str = "targets-v1"):
    """Deterministic choice of targets and the split of the other candidates.

    Returns:
        ``(targets, negative_people, unseen_people)``: targets are the first ``n_targets``
        candidates (in hash order) with at least ``min_photos`` usable photos; the remaining
        candidates go by hash half to training negatives, half to never-seen evaluation negatives.
    """
    order = sorted(candidates, key=lambda p: hash_fraction(p, salt))
    targets = [p for p in order if len(people_rows.get(p, [])) >= min_photos][:n_targets]
    rest = [p for p in candidates if p not in targets]
    neg = sorted(p for p in rest if hash_fraction(p, salt + "-neg") < 0.5)
    unseen = sorted(p for p in rest if hash_fraction(p, salt + "-neg") >= 0.5)
    return targets, neg, unseen


def split_target_rows(keys: Sequence[str], rows: Sequence[int], test_frac: float = 1 / 3):
    """Split one person's photo rows into (train, test) by a hash of the photo key."""
    tr = [r for r in rows if split_of(keys[r], test_frac, 0.0, "target-photos-v1") == "train"]
    te = [r for r in rows if split_of(keys[r], test_frac, 0.0, "target-photos-v1") == "test"]
    return tr, te


def run_target(attribute_model, crops, keys, target: str, pos_rows, neg_rows, unseen_rows, epochs: int = 30,
               lr: float = 0.05, phase2_epochs: int = 0, phase2_lr: float = 1e-4, run_dir: Optional[str] = None,
               seed: int = 0, normalize: bool = True, head: Optional[dict] = None):
    """Train and evaluate one "is it ``target``" classifier (see :class:`TransferResult`).

    ``head``: options of the head, ``pooling`` (:func:`build_transfer_model`) and ``solver``,
    ``copies``, ``l2`` (:func:`train_transfer_head`); the defaults are :data:`DEFAULT_HEAD`.

    Returns:
        ``(result, model)``.
    """
    from .model import conv_base_of

    tr, te = split_target_rows(keys, pos_rows)
    head = {**DEFAULT_HEAD, **(head or {})}
    model = build_transfer_model(attribute_model, normalize=normalize, pooling=head["pooling"])
    base = conv_base_of(model)
    before_base = [w.copy() for w in base.get_weights()]
    neuron = model.get_layer("target_prob")
    before_head = [w.copy() for w in neuron.get_weights()]
    train_transfer_head(model, crops, tr, neg_rows, epochs, lr, seed=seed, run_dir=run_dir,
                        csv_name=f"metrics_{target}.csv", solver=head["solver"], copies=head["copies"],
                        l2=head["l2"])
    frozen_ok = weights_equal(before_base, base.get_weights())
    head_changed = not weights_equal(before_head, neuron.get_weights())
    y = np.r_[np.ones(len(te)), np.zeros(len(unseen_rows))]
    s = score_rows(model, crops, list(te) + list(unseen_rows))
    res = TransferResult(target, len(tr), len(neg_rows), len(te), len(unseen_rows), roc_auc(y, s),
                         tar_at_far(y, s, 1e-2), frozen_ok, head_changed)
    if phase2_epochs > 0:
        unfreeze_top_block(model)
        train_transfer_head(model, crops, tr, neg_rows, phase2_epochs, phase2_lr, seed=seed + 1, run_dir=run_dir,
                            csv_name=f"metrics_{target}.csv", append=True)
        s2 = score_rows(model, crops, list(te) + list(unseen_rows))
        res.auc_phase2, res.tar_phase2 = roc_auc(y, s2), tar_at_far(y, s2, 1e-2)
    log.info("target %s: %d/%d train, %d/%d test: AUC %.3f, TAR@FAR=1e-2 %.3f, frozen unchanged %s%s", target,
             len(tr), len(neg_rows), len(te), len(unseen_rows), res.auc, res.tar_at_far_1e2, frozen_ok,
             "" if res.auc_phase2 is None else f", phase 2 AUC {res.auc_phase2:.3f}")
    if run_dir:
        os.makedirs(run_dir, exist_ok=True)
    return res, model


def transfer_benchmark(model_path: str, identity_root: str, run_dir: str, n_targets: int = 5, min_photos: int = 12,
                       epochs: int = 30, lr: float = 0.05, phase2_epochs: int = 0, cache_root: Optional[str] = None,
                       holdout: float = 0.35, people_salt: str = "people-v1", cropper=None, seed: int = 0,
                       normalize: bool = True, head: Optional[dict] = None) -> dict:
    """"Is it person X" for ``n_targets`` people of a folder of person folders.

    Only people the conv base never saw are used: those held out by the attribute model's identity
    pre-training (read from its sidecar), or a hash split with ``holdout`` when it had none. Among
    them, ``n_targets`` targets are picked deterministically; the other held-out people are split in
    two halves: training negatives and *unseen* people, whose photos are the evaluation negatives.
    Each target's photos are split by hash (2/3 train, 1/3 test).

    Returns:
        Summary dict (also written to ``run_dir/summary.json`` with ``results.csv``).
    """
    from .crops import FaceCropper
    from .model import load_model
    from .runs import write_json, write_rows_csv
    from .training import identity_data

    attr_model, meta = load_model(model_path)
    crop = meta.get("crop", {"margin": 0.4, "size": int(attr_model.input_shape[1]), "color": "rgb"})
    pre = meta.get("pretrain") or {}
    cropper = cropper or FaceCropper("default", margin=crop["margin"], size=crop["size"], color=crop["color"])
    cache, person, people = identity_data(identity_root, cropper, cache_root or os.path.join("runs", "cache",
                                          "attributes"), pre.get("holdout", holdout), pre.get("people_salt", people_salt))
    heldout = list(pre.get("people_heldout") or people["heldout"])
    rows_of: Dict[str, List[int]] = {}
    for i, p in enumerate(person):
        if cache.usable[i]:
            rows_of.setdefault(p, []).append(i)
    candidates = [p for p in heldout if p in rows_of]
    targets, neg_people, unseen_people = pick_people(rows_of, candidates, n_targets, min_photos)
    if len(targets) < n_targets:
        log.warning("only %d held-out people have >= %d usable photos", len(targets), min_photos)
    neg_rows = [r for p in neg_people for r in rows_of[p]]
    unseen_rows = [r for p in unseen_people for r in rows_of[p]]
    log.info("transfer: %d targets, %d negative people (%d photos), %d unseen people (%d photos)", len(targets),
             len(neg_people), len(neg_rows), len(unseen_people), len(unseen_rows))
    os.makedirs(run_dir, exist_ok=True)
    results = []
    for t in targets:
        res, model = run_target(attr_model, cache.crops, cache.keys, t, rows_of[t], neg_rows, unseen_rows, epochs, lr,
                                phase2_epochs, run_dir=run_dir, seed=seed, normalize=normalize, head=head)
        results.append(res)
    rows = [vars(r) for r in results]
    write_rows_csv(os.path.join(run_dir, "results.csv"), rows)
    summary = {
        "model": model_path, "identity_root": identity_root, "targets": targets,
        "negative_people": len(neg_people), "unseen_people": len(unseen_people),
        "mean_auc": float(np.mean([r.auc for r in results])) if results else float("nan"),
        "mean_tar_at_far_1e2": float(np.mean([r.tar_at_far_1e2 for r in results])) if results else float("nan"),
        "all_frozen_unchanged": all(r.frozen_unchanged for r in results),
        "all_heads_changed": all(r.head_changed for r in results), "results": rows,
        "head": {**DEFAULT_HEAD, **(head or {}), "normalize": normalize},
    }
    if phase2_epochs:
        summary["mean_auc_phase2"] = float(np.mean([r.auc_phase2 for r in results]))
        summary["mean_tar_phase2"] = float(np.mean([r.tar_phase2 for r in results]))
    write_json(os.path.join(run_dir, "summary.json"), summary)
    return summary


def train_person_classifier(model_path: str, positives: str, negatives: str, run_dir: str,
                            unseen: Optional[str] = None, epochs: int = 30, lr: float = 0.05, phase2_epochs: int = 0,
                            cache_root: Optional[str] = None, cropper=None, seed: int = 0,
                            normalize: bool = True, head: Optional[dict] = None) -> dict:
    """Train "is it this person" from a folder of their photos vs a folder of other people.

    Photos may be in any format OpenCV reads (``.jpg``, ``.jfif``, ``.png``...); unreadable ones
    are logged with their path and skipped. Positives are split 2/3 train, 1/3 test by hash. The
    evaluation negatives are the photos of ``unseen`` when given; otherwise ``negatives`` is split:
    by person sub-folder (half of the people never seen in training) when it has sub-folders, by
    photo otherwise.

    Writes ``run_dir/person.keras`` (+ ``.json`` with the threshold at FAR=1e-2) and
    ``summary.json``.
    """
    from .crops import FaceCropper, build_crop_cache, items_from_folder
    from .model import load_model, save_model
    from .runs import plot_history, write_json
    from ..errors import DataError

    attr_model, meta = load_model(model_path)
    crop = meta.get("crop", {"margin": 0.4, "size": int(attr_model.input_shape[1]), "color": "rgb"})
    cropper = cropper or FaceCropper("default", margin=crop["margin"], size=crop["size"], color=crop["color"])
    cache_root = cache_root or os.path.join("runs", "cache", "attributes")
    os.makedirs(run_dir, exist_ok=True)

    def load(folder: str, prefix: str):
        if not os.path.isdir(folder):
            raise DataError(f"{folder}: folder not found")
        items = items_from_folder(folder)
        if not items:
            raise DataError(f"{folder}: no image files")
        return build_crop_cache(items, cropper, cache_root, prefix)

    pos = load(positives, "person")
    neg = load(negatives, "others")
    crops = np.concatenate([np.asarray(pos.crops), np.asarray(neg.crops)])  # small folders: fits in RAM
    keys = [f"pos/{k}" for k in pos.keys] + [f"neg/{k}" for k in neg.keys]
    usable = np.r_[pos.usable, neg.usable]
    pos_rows = [i for i in range(len(pos)) if usable[i]]
    off = len(pos)
    neg_all = [off + i for i in range(len(neg)) if usable[off + i]]
    if unseen:
        un = load(unseen, "unseen")
        off2 = len(crops)
        crops = np.concatenate([crops, np.asarray(un.crops)])
        keys += [f"unseen/{k}" for k in un.keys]
        neg_rows, unseen_rows = neg_all, [off2 + i for i in range(len(un)) if un.usable[i]]
    elif any("/" in neg.keys[r - off] for r in neg_all):
        who = {r: neg.keys[r - off].split("/")[0] for r in neg_all}
        neg_rows = [r for r in neg_all if hash_fraction(who[r], "unseen-people-v1") < 0.5]
        unseen_rows = [r for r in neg_all if hash_fraction(who[r], "unseen-people-v1") >= 0.5]
    else:
        neg_rows = [r for r in neg_all if hash_fraction(keys[r], "unseen-photos-v1") < 0.5]
        unseen_rows = [r for r in neg_all if hash_fraction(keys[r], "unseen-photos-v1") >= 0.5]
    if len(pos_rows) < 3 or not neg_rows or not unseen_rows:
        raise DataError(f"need >= 3 usable photos of the person and some of others (got {len(pos_rows)} in "
                        f"{positives}, {len(neg_rows)} training / {len(unseen_rows)} evaluation negatives)")
    name = os.path.basename(os.path.normpath(positives))
    res, model = run_target(attr_model, crops, keys, name, pos_rows, neg_rows, unseen_rows, epochs, lr, phase2_epochs,
                            run_dir=run_dir, seed=seed, normalize=normalize, head=head)
    # Operating threshold: at most 1% of the evaluation negatives accepted.
    s_neg = np.sort(score_rows(model, crops, unseen_rows))[::-1]
    thr = float(s_neg[int(np.floor(0.01 * len(s_neg)))]) if len(s_neg) else 0.5
    save_model(model, os.path.join(run_dir, "person.keras"),
               {"target": name, "crop": crop, "threshold": thr, "threshold_rule": "FAR=1e-2 on evaluation negatives",
                "base_model": model_path, "result": vars(res)})
    plot_history(os.path.join(run_dir, f"metrics_{name}.csv"), os.path.join(run_dir, "loss.png"), f"is it {name}")
    summary = {"target": name, "threshold": thr, **vars(res)}
    write_json(os.path.join(run_dir, "summary.json"), summary)
    return summary
