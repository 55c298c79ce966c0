"""How well an embedding network separates people: embeddings of crops, pair separability, the
selection rule of a training run's kept weights, and the pair head of a siamese card."""

from __future__ import annotations

import math
from typing import Dict

import numpy as np


def embed_crops(net, crops: np.ndarray, flip: bool = True, batch: int = 256) -> np.ndarray:
    """L2-normalised embeddings of input-size crops (optionally averaged with the mirror image).

    Args:
        net: the embedding network (input ``(B, S, S, 3)`` float pixels in [0, 255]).
        crops: ``(N, S, S, 3)`` aligned crops at the network's input size.
        flip: add the mirror image's embedding before normalising.
        batch: crops per forward pass.

    Returns:
        ``(N, D)`` float32 unit vectors.
    """
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
    pairs (genuine and impostor weighted equally) and ROC AUC.

    Args:
        emb: ``(N, D)`` unit vectors.
        labels: ``(N,)`` person ids.

    Returns:
        ``{"val_acc", "val_auc"}`` (the AUC is NaN without both genuine and impostor pairs).
    """
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
