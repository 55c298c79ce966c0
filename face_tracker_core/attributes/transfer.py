"""Transfer experiments: "is it person X?" from a trained attribute model's conv base, frozen, + one sigmoid.

The head itself (model, training, scoring) is in :mod:`.transfer_head`; this module runs it on
target people (:func:`transfer_benchmark`) or trains one person's classifier from folders
(:func:`train_person_classifier`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..engine import Run
from ..splits import hash_fraction, split_of
from .metrics import roc_auc, tar_at_far
from .transfer_head import (DEFAULT_HEAD, POOLINGS, build_transfer_model, score_rows, train_transfer_head,
                            unfreeze_top_block, weights_equal)

log = logging.getLogger(__name__)

__all__ = ["build_transfer_model", "train_transfer_head", "TransferResult", "score_rows", "weights_equal",
           "unfreeze_top_block", "pick_people", "DEFAULT_HEAD", "POOLINGS"]


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
               lr: float = 0.05, phase2_epochs: int = 0, phase2_lr: float = 1e-4, run: Optional[Run] = None,
               seed: int = 0, normalize: bool = True, head: Optional[dict] = None):
    """Train and evaluate one "is it ``target``" classifier (see :class:`TransferResult`).

    ``head``: options of the head, ``pooling`` (:func:`build_transfer_model`) and ``solver``,
    ``copies``, ``l2`` (:func:`train_transfer_head`); the defaults are :data:`DEFAULT_HEAD`.
    ``run``: where the head's training curve goes (``metrics_<target>.csv``, TensorBoard); None: nowhere.

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
    train_transfer_head(model, crops, tr, neg_rows, epochs, lr, seed=seed, run=run,
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
        train_transfer_head(model, crops, tr, neg_rows, phase2_epochs, phase2_lr, seed=seed + 1, run=run,
                            csv_name=f"metrics_{target}.csv", append=True)
        s2 = score_rows(model, crops, list(te) + list(unseen_rows))
        res.auc_phase2, res.tar_phase2 = roc_auc(y, s2), tar_at_far(y, s2, 1e-2)
    log.info("target %s: %d/%d train, %d/%d test: AUC %.3f, TAR@FAR=1e-2 %.3f, frozen unchanged %s%s", target,
             len(tr), len(neg_rows), len(te), len(unseen_rows), res.auc, res.tar_at_far_1e2, frozen_ok,
             "" if res.auc_phase2 is None else f", phase 2 AUC {res.auc_phase2:.3f}")
    return res, model


def transfer_benchmark(model_path: str, identity_root: str, run: Run, n_targets: int = 5, min_photos: int = 12,
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
        Summary dict (also written to the run folder's ``summary.json`` with ``results.csv``).
    """
    from .crops import FaceCropper
    from .model import load_model
    from .pretrain import identity_data

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
    results = []
    for t in targets:
        res, model = run_target(attr_model, cache.crops, cache.keys, t, rows_of[t], neg_rows, unseen_rows, epochs, lr,
                                phase2_epochs, run=run, seed=seed, normalize=normalize, head=head)
        results.append(res)
    rows = [vars(r) for r in results]
    run.write_rows_csv("results.csv", rows)
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
    run.write_json("summary.json", summary)
    return summary


def train_person_classifier(model_path: str, positives: str, negatives: str, run: Run,
                            unseen: Optional[str] = None, epochs: int = 30, lr: float = 0.05, phase2_epochs: int = 0,
                            cache_root: Optional[str] = None, cropper=None, seed: int = 0,
                            normalize: bool = True, head: Optional[dict] = None) -> dict:
    """Train "is it this person" from a folder of their photos vs a folder of other people.

    Photos may be in any format OpenCV reads (``.jpg``, ``.jfif``, ``.png``...); unreadable ones
    are logged with their path and skipped. Positives are split 2/3 train, 1/3 test by hash. The
    evaluation negatives are the photos of ``unseen`` when given; otherwise ``negatives`` is split:
    by person sub-folder (half of the people never seen in training) when it has sub-folders, by
    photo otherwise.

    Writes ``person.keras`` (+ ``.json`` with the threshold at FAR=1e-2) and ``summary.json`` into
    the run folder.
    """
    from .crops import FaceCropper, build_crop_cache, items_from_folder
    from ..errors import DataError
    from .model import load_model, save_model

    attr_model, meta = load_model(model_path)
    crop = meta.get("crop", {"margin": 0.4, "size": int(attr_model.input_shape[1]), "color": "rgb"})
    cropper = cropper or FaceCropper("default", margin=crop["margin"], size=crop["size"], color=crop["color"])
    cache_root = cache_root or os.path.join("runs", "cache", "attributes")

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
                            run=run, seed=seed, normalize=normalize, head=head)
    # Operating threshold: at most 1% of the evaluation negatives accepted.
    s_neg = np.sort(score_rows(model, crops, unseen_rows))[::-1]
    thr = float(s_neg[int(np.floor(0.01 * len(s_neg)))]) if len(s_neg) else 0.5
    save_model(model, run.file("person.keras"),
               {"target": name, "crop": crop, "threshold": thr, "threshold_rule": "FAR=1e-2 on evaluation negatives",
                "base_model": model_path, "result": vars(res)})
    summary = {"target": name, "threshold": thr, **vars(res)}
    run.write_json("summary.json", summary)
    return summary
