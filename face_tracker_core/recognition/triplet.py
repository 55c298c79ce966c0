"""Triplet loss with online semi-hard negative mining (Schroff et al., *FaceNet*, 2015), and the
P x K batch sampler it needs.

Every batch holds ``P`` people with ``K`` photos each. Every (anchor, positive) pair of the batch
is used; its negative is mined inside the batch: the *semi-hard* one, i.e. the closest negative
that is still farther than the positive (``d_ap < d_an``), which gives a useful gradient without
the collapse that always taking the hardest negative causes early in training. When no negative
is farther than the positive, the farthest negative is used (as in FaceNet's reference code).
Distances are squared Euclidean between L2-normalised vectors (in [0, 4]).

:func:`triplet_semihard_loss` uses ``keras.ops`` only, so it runs on the TensorFlow, JAX or
PyTorch backend; :func:`triplet_semihard_loss_np` is the same computation in NumPy, as a
readable reference for the tests.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np


def _pairwise_sqdist(x):
    from keras import ops

    dot = ops.matmul(x, ops.transpose(x))
    sq = ops.diagonal(dot)
    d = ops.expand_dims(sq, 1) - 2.0 * dot + ops.expand_dims(sq, 0)
    return ops.maximum(d, 0.0)


def triplet_semihard_loss(labels, embeddings, margin: float = 0.2):
    """Batch triplet loss with semi-hard mining.

    Args:
        labels: ``(B,)`` or ``(B, 1)`` integer person ids.
        embeddings: ``(B, D)`` L2-normalised vectors.
        margin: required gap between ``d_an`` and ``d_ap`` (squared distance units).

    Returns:
        Scalar: mean hinge ``max(d_ap - d_an + margin, 0)`` over all valid anchor-positive pairs.
    """
    from keras import ops

    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    emb = ops.cast(embeddings, "float32")
    d = _pairwise_sqdist(emb)
    n = ops.shape(labels)[0]
    same = ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0))
    eye = ops.eye(n, dtype="bool")
    pos_mask = ops.logical_and(same, ops.logical_not(eye))          # (a, p)
    neg_mask = ops.logical_not(same)                                 # (a, n)
    big = 1e6
    # For every anchor a and positive p: among negatives n with d[a, n] > d[a, p] take the
    # smallest d[a, n]; shapes (a, p, n).
    d_ap = ops.expand_dims(d, 2)                                     # (a, p, 1)
    d_an = ops.expand_dims(d, 1)                                     # (a, 1, n)
    neg3 = ops.expand_dims(neg_mask, 1)                              # (a, 1, n)
    outside = ops.logical_and(neg3, ops.greater(d_an, d_ap))         # semi-hard candidates
    semi = ops.min(ops.where(outside, d_an, big), axis=2)            # (a, p)
    has_semi = ops.any(outside, axis=2)
    farthest = ops.max(ops.where(neg_mask, d, -big), axis=1, keepdims=True)  # (a, 1)
    d_neg = ops.where(has_semi, semi, farthest)
    hinge = ops.maximum(d - d_neg + margin, 0.0)
    valid = ops.logical_and(pos_mask, ops.any(neg_mask, axis=1, keepdims=True))
    validf = ops.cast(valid, "float32")
    return ops.sum(hinge * validf) / ops.maximum(ops.sum(validf), 1.0)


def triplet_semihard_loss_np(labels: np.ndarray, emb: np.ndarray, margin: float = 0.2) -> float:
    """Loop-based NumPy reference of :func:`triplet_semihard_loss`."""
    labels = np.asarray(labels).reshape(-1)
    emb = np.asarray(emb, np.float64)
    d = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    total, count = 0.0, 0
    for a in range(len(labels)):
        negs = [j for j in range(len(labels)) if labels[j] != labels[a]]
        if not negs:
            continue
        for p in range(len(labels)):
            if p == a or labels[p] != labels[a]:
                continue
            farther = [d[a, j] for j in negs if d[a, j] > d[a, p]]
            dn = min(farther) if farther else max(d[a, j] for j in negs)
            total += max(d[a, p] - dn + margin, 0.0)
            count += 1
    return total / max(count, 1)


class PKSampler:
    """Endless P x K batches of indices: ``P`` people, ``K`` photos each.

    People with fewer than ``K`` photos are sampled with replacement (their photos repeat, the
    augmentation makes the copies differ); people with fewer than 2 photos are dropped since
    they cannot give a positive pair.

    Args:
        labels: ``(N,)`` integer person id per sample.
        p: people per batch.
        k: photos per person.
        seed: RNG seed.
    """

    def __init__(self, labels: Sequence[int], p: int = 32, k: int = 4, seed: int = 0) -> None:
        labels = np.asarray(labels)
        self.by_person: Dict[int, np.ndarray] = {}
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            if len(idx) >= 2:
                self.by_person[int(lab)] = idx
        if len(self.by_person) < 2:
            raise ValueError("PKSampler needs at least 2 people with 2 or more photos each")
        self.people = np.array(sorted(self.by_person))
        self.p = min(int(p), len(self.people))
        self.k = int(k)
        self.rng = np.random.default_rng(seed)

    @property
    def batch_size(self) -> int:
        return self.p * self.k

    def batch(self) -> np.ndarray:
        """``(P * K,)`` sample indices, grouped by person."""
        out: List[np.ndarray] = []
        for person in self.rng.choice(self.people, self.p, replace=False):
            idx = self.by_person[int(person)]
            out.append(self.rng.choice(idx, self.k, replace=len(idx) < self.k))
        return np.concatenate(out)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.batch()


def pair_targets(labels) -> Tuple[object, object]:
    """Same-person matrix and off-diagonal mask for a batch (``keras.ops`` tensors, ``(B, B)``)."""
    from keras import ops

    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    same = ops.cast(ops.equal(ops.expand_dims(labels, 1), ops.expand_dims(labels, 0)), "float32")
    off = 1.0 - ops.eye(ops.shape(labels)[0], dtype="float32")
    return same, off
