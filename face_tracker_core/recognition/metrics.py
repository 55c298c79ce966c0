"""Verification metrics on pairs: LFW-style 10-fold accuracy, ROC AUC, TAR at a given FAR.

Scores are similarities in [0, 1] (higher = more alike). A pair whose score is ``NaN`` (the
pipeline found no face in one of its photos) is a *wrong answer* whatever the threshold: it
counts as a rejected genuine pair or an accepted impostor pair in every metric here.
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np


def _worst_case(scores: np.ndarray, same: np.ndarray) -> np.ndarray:
    """Failed pairs (NaN) get the score that makes them wrong at any threshold."""
    s = np.asarray(scores, np.float64).copy()
    bad = ~np.isfinite(s)
    s[bad & same] = -np.inf
    s[bad & ~same] = np.inf
    return s


def best_threshold(scores: np.ndarray, same: np.ndarray) -> Tuple[float, float]:
    """Threshold maximising accuracy (``score >= t`` means same person) and that accuracy."""
    s = _worst_case(scores, same)
    finite = np.unique(s[np.isfinite(s)])
    if finite.size == 0:
        return 0.5, float(np.mean(np.zeros(len(s))))
    # Candidates halfway between neighbours, plus both ends.
    cands = np.concatenate([[finite[0] - 1e-6], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1e-6]])
    order = np.argsort(s, kind="stable")
    ss, yy = s[order], same[order]
    # accepted = score >= t: correct = positives above + negatives below.
    pos_below = np.searchsorted(ss, cands, side="left")  # indices below t
    cum_pos = np.concatenate([[0], np.cumsum(yy)])
    cum_neg = np.concatenate([[0], np.cumsum(~yy)])
    correct = (cum_pos[-1] - cum_pos[pos_below]) + cum_neg[pos_below]
    i = int(np.argmax(correct))
    return float(cands[i]), float(correct[i] / len(s))


def ten_fold_accuracy(scores: Sequence[float], same: Sequence[bool], folds: Sequence[int]) -> Dict:
    """LFW protocol: for each fold, the threshold is chosen on the other folds and applied to it.

    Returns:
        ``{"accuracy": mean, "std": std over folds, "per_fold": [...], "thresholds": [...]}``.
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    f = np.asarray(folds)
    accs, ths = [], []
    for k in np.unique(f):
        tr, te = f != k, f == k
        t, _ = best_threshold(s[tr], y[tr])
        st = _worst_case(s[te], y[te])
        accs.append(float(np.mean((st >= t) == y[te])))
        ths.append(t)
    return {"accuracy": float(np.mean(accs)), "std": float(np.std(accs)), "per_fold": accs, "thresholds": ths}


def roc_auc(scores: Sequence[float], same: Sequence[bool]) -> float:
    """Area under the ROC curve (probability a genuine pair outscores an impostor pair, ties 1/2)."""
    y = np.asarray(same, bool)
    s = _worst_case(np.asarray(scores, np.float64), y)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    # Mann-Whitney U with average ranks for ties (inf values rank like any other).
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sv = allv[order]
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))


def threshold_for_far(impostor_scores: Sequence[float], far: float) -> float:
    """Smallest threshold whose false-accept rate (``score >= t`` among impostors) is <= ``far``.

    NaN impostor scores (no face) are ignored here: a photo without a face is never accepted.
    """
    s = np.sort(np.asarray(impostor_scores, np.float64)[np.isfinite(impostor_scores)])[::-1]
    if s.size == 0:
        return 0.5
    allowed = int(np.floor(far * s.size))  # this many impostors may score >= t
    if allowed >= s.size:
        return float(s[-1])
    # Just above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(s[allowed], np.inf))


def tar_at_far(scores: Sequence[float], same: Sequence[bool], far: float = 1e-2) -> Tuple[float, float]:
    """True-accept rate at the threshold giving false-accept rate ``far``; returns ``(tar, t)``.

    A failed pair (NaN) can never be *accepted* (no face, no match), so failed impostor pairs
    count as correct rejections in the FAR denominator, while failed genuine pairs count as
    rejected genuine pairs, lowering the TAR.
    """
    y = np.asarray(same, bool)
    s = np.asarray(scores, np.float64)
    neg = s[~y]
    if neg.size == 0:
        return float("nan"), 0.5
    neg = np.where(np.isfinite(neg), neg, -np.inf)
    srt = np.sort(neg)[::-1]
    allowed = int(np.floor(far * srt.size))  # this many impostors may score >= t
    t = float(np.nextafter(srt[allowed], np.inf)) if allowed < srt.size else float(srt[-1])
    if not np.isfinite(t):
        t = 0.0
    pos = s[y]
    return float(np.mean(np.where(np.isfinite(pos), pos, -np.inf) >= t)), t
