"""Metrics: per-attribute accuracy / balanced accuracy next to the majority baseline, ROC AUC, TAR@FAR."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = ["majority_classes", "attribute_report", "mean_row", "markdown_table", "roc_auc", "tar_at_far"]


def majority_classes(labels: np.ndarray) -> np.ndarray:
    """``(K,)`` 0/1: the more frequent value of each attribute in ``labels`` ``(N, K)`` (ties -> 0)."""
    return (labels.mean(axis=0) > 0.5).astype(np.uint8)


def _balanced(y: np.ndarray, p: np.ndarray) -> float:
    pos, neg = y == 1, y == 0
    rates = []
    if pos.any():
        rates.append(float((p[pos] == 1).mean()))
    if neg.any():
        rates.append(float((p[neg] == 0).mean()))
    return float(np.mean(rates)) if rates else float("nan")


def attribute_report(y_true: np.ndarray, prob: np.ndarray, majority: np.ndarray, names: Sequence[str],
                     threshold: float = 0.5) -> List[Dict[str, float]]:
    """One row per attribute.

    Args:
        y_true: ``(N, K)`` 0/1 labels of the evaluated photos.
        prob: ``(N, K)`` predicted probabilities.
        majority: ``(K,)`` majority class of each attribute **in the training set** (the baseline
            predicts it for every photo).
        names: the K attribute names.
        threshold: probability above which an attribute is predicted present.

    Returns:
        Rows ``{name, positives, accuracy, balanced_accuracy, majority_accuracy,
        majority_balanced_accuracy, gain}``; ``positives`` is the fraction of present labels and
        ``gain = accuracy - majority_accuracy``.
    """
    y_true = np.asarray(y_true).astype(np.uint8)
    pred = (np.asarray(prob) >= threshold).astype(np.uint8)
    rows = []
    for k, name in enumerate(names):
        y, p = y_true[:, k], pred[:, k]
        base = np.full_like(y, majority[k])
        acc = float((y == p).mean()) if len(y) else float("nan")
        macc = float((y == base).mean()) if len(y) else float("nan")
        rows.append({"name": name, "positives": float(y.mean()) if len(y) else float("nan"),
                     "accuracy": acc, "balanced_accuracy": _balanced(y, p), "majority_accuracy": macc,
                     "majority_balanced_accuracy": _balanced(y, base), "gain": acc - macc})
    return rows


def mean_row(rows: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Mean of every numeric column, ``name="MEAN"``."""
    keys = [k for k in rows[0] if k != "name"]
    return {"name": "MEAN", **{k: float(np.nanmean([r[k] for r in rows])) for k in keys}}


def markdown_table(rows: Sequence[Dict[str, float]]) -> str:
    """Per-attribute table (+ mean row) in Markdown, percentages with one decimal."""
    lines = ["| attribute | % positive | accuracy | balanced acc. | majority acc. | gain (points) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in list(rows) + [mean_row(rows)]:
        bold = "**" if r["name"] == "MEAN" else ""
        lines.append(f"| {bold}{r['name']}{bold} | {100 * r['positives']:.1f} | {bold}{100 * r['accuracy']:.1f}{bold} | "
                     f"{100 * r['balanced_accuracy']:.1f} | {100 * r['majority_accuracy']:.1f} | "
                     f"{bold}{100 * r['gain']:+.1f}{bold} |")
    return "\n".join(lines)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count half). NaN with one class only."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tar_at_far(y: np.ndarray, score: np.ndarray, far: float = 1e-2) -> float:
    """True accept rate at the strictest threshold whose false accept rate is <= ``far``.

    Accepting means ``score > threshold``; the threshold is the ``floor(far * n_neg) + 1``-th highest
    negative score, so at most ``floor(far * n_neg)`` negatives are accepted.
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, np.float64)
    neg = np.sort(score[~y])[::-1]
    if len(neg) == 0 or not y.any():
        return float("nan")
    k = int(np.floor(far * len(neg)))
    thr = neg[k] if k < len(neg) else -np.inf
    return float((score[y] > thr).mean())
