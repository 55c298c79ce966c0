"""Transfer head: "is it person X?" from a trained attribute model's conv base, frozen, + one sigmoid.

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
from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..engine import Run

log = logging.getLogger("face_tracker_core.attributes.transfer")

__all__ = ["build_transfer_model", "train_transfer_head", "score_rows", "weights_equal", "unfreeze_top_block",
           "DEFAULT_HEAD", "POOLINGS"]


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
                        run: Optional["Run"] = None, csv_name: str = "metrics.csv", append: bool = False,
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
        run: where the training curve goes (None: nowhere): ``csv_name`` in the run folder (per epoch,
            or per L-BFGS iteration) and TensorBoard scalars under ``tensorboard/<csv_name without .csv>/``.
        append: append to ``csv_name`` (a second phase of the same head).
    """
    import keras

    from ..engine.callbacks import run_callbacks
    from ..engine.tensorboard import tensorboard_callback
    from .data import CropBatches

    pos_rows = np.asarray(pos_rows, np.int64)
    neg_rows = np.asarray(neg_rows, np.int64)
    rows = np.concatenate([pos_rows, neg_rows])
    if solver == "lbfgs":
        if any(w.trainable for w in model.weights if "target_prob" not in w.path):
            raise ValueError("solver 'lbfgs' needs the base fully frozen (use 'adam' for an unfrozen block)")
        return _fit_head_lbfgs(model, crops, pos_rows, neg_rows, copies, l2, seed, batch_size, run, csv_name)
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
    cbs = []
    if run is not None:
        # One TensorBoard folder per head: several heads share the run folder.
        cbs = run_callbacks(run, tensorboard=False, save_last=False, backup=False, csv_name=csv_name, append=append)
        cbs.append(tensorboard_callback(_tensorboard_dir(run, csv_name)))
    return model.fit(seq, epochs=epochs, class_weight=cw, verbose=0, callbacks=cbs)


def _tensorboard_dir(run: "Run", csv_name: str) -> str:
    """``tensorboard/<csv_name without .csv>`` of the run: one TensorBoard run per head."""
    return os.path.join(run.tensorboard_dir, os.path.splitext(csv_name)[0])


def _head_features(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Inputs of the ``target_prob`` neuron (frozen, inference mode) for a batch of crops."""
    import keras

    feat = keras.Model(model.inputs, model.get_layer("target_prob").input)
    out = [np.asarray(feat(x[i:i + batch_size].astype(np.float32), training=False))
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out)


def _fit_head_lbfgs(model, crops, pos_rows, neg_rows, copies: int, l2: float, seed: int, batch_size: int,
                    run: Optional["Run"], csv_name: str):
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
    if run is not None:
        run.write_rows_csv(csv_name, [{"epoch": i, "loss": v} for i, v in enumerate(history)])
        from ..engine.tensorboard import EventWriter

        writer = EventWriter(os.path.join(_tensorboard_dir(run, csv_name), "train"))
        for i, v in enumerate(history):
            writer.scalar("epoch_loss", v, i)
        writer.close()
    return res


def score_rows(model, crops: np.ndarray, rows: Sequence[int], batch_size: int = 256) -> np.ndarray:
    """``(len(rows),)`` target probabilities, in the order of ``rows``."""
    rows = np.asarray(rows, np.int64)
    out = []
    for i in range(0, len(rows), batch_size):
        x = np.asarray(crops[rows[i:i + batch_size]]).astype(np.float32)
        out.append(np.asarray(model.predict_on_batch(x)).reshape(-1))
    return np.concatenate(out) if out else np.zeros(0, np.float32)
