"""Detection metrics in plain numpy: greedy matching, AP, recall, false faces, mean IoU.

Boxes are ``[K, 4]`` float arrays ``(x1, y1, x2, y2)`` in pixels of the image they belong to.
IoU, NMS and post-processing live in :mod:`face_tracker_core.boxes` (re-exported here for the
evaluation and training code that imports them from this module).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

from ..boxes import iou_matrix, nms, postprocess  # noqa: F401  (re-exported)


def match(boxes: np.ndarray, scores: np.ndarray, gts: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy matching by descending score (COCO/VOC rule): a detection is a true positive when
    its best still-unmatched ground truth overlaps by ``>= iou_threshold``.

    Returns:
        ``[K]`` bool, true-positive flag of each detection in the given order.
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.zeros(len(scores), bool)
    if not len(gts) or not len(scores):
        return tp
    ious = iou_matrix(boxes, gts)
    taken = np.zeros(len(gts), bool)
    for d in order:
        cand = np.where(taken, -1.0, ious[d])
        g = int(np.argmax(cand))
        if cand[g] >= iou_threshold:
            taken[g] = True
            tp[d] = True
    return tp


def precision_recall(results: Sequence[Tuple[np.ndarray, np.ndarray, np.ndarray]], iou_threshold: float = 0.5
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PR curve over a set of images.

    Args:
        results: per image ``(boxes [K, 4], scores [K], gts [G, 4])``.

    Returns:
        ``(precision [M], recall [M], scores [M])`` with detections sorted by descending score.
    """
    all_scores, all_tp = [], []
    n_gt = 0
    for boxes, scores, gts in results:
        all_tp.append(match(boxes, scores, gts, iou_threshold))
        all_scores.append(np.asarray(scores, np.float64))
        n_gt += len(gts)
    if not all_scores:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    scores = np.concatenate(all_scores)
    tp = np.concatenate(all_tp)
    order = np.argsort(-scores, kind="stable")
    tp, scores = tp[order], scores[order]
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(tp) + 1)
    recall = ctp / max(n_gt, 1)
    return precision, recall, scores


def average_precision(results, iou_threshold: float = 0.5) -> float:
    """Area under the interpolated PR curve (VOC "all points"; COCO uses 101 samples of it)."""
    precision, recall, _ = precision_recall(results, iou_threshold)
    if not len(precision):
        return 0.0
    mrec = np.concatenate([[0.0], recall, [recall[-1]]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def ap_range(results, thresholds: Sequence[float] = tuple(np.arange(0.5, 0.96, 0.05))) -> float:
    """Mean AP over IoU thresholds 0.50:0.05:0.95 (COCO's AP)."""
    return float(np.mean([average_precision(results, t) for t in thresholds]))


def recall_at(results, iou_threshold: float = 0.4, score_threshold: float = 0.0) -> float:
    """Fraction of ground-truth faces found by a detection scoring ``>= score_threshold``."""
    found = total = 0
    for boxes, scores, gts in results:
        keep = np.asarray(scores) >= score_threshold
        found += int(match(np.asarray(boxes)[keep], np.asarray(scores)[keep], gts, iou_threshold).sum())
        total += len(gts)
    return found / total if total else float("nan")


def false_faces_per_image(results, score_threshold: float = 0.0) -> float:
    """Mean number of detections scoring ``>= score_threshold`` per image (for face-free scenes)."""
    if not results:
        return float("nan")
    return float(np.mean([int((np.asarray(s) >= score_threshold).sum()) for _, s, _ in results]))


def mean_best_iou(results, score_threshold: float = 0.0) -> float:
    """Mean over ground-truth faces of the best IoU of any kept detection (0 when missed)."""
    vals = []
    for boxes, scores, gts in results:
        keep = np.asarray(scores) >= score_threshold
        m = iou_matrix(gts, np.asarray(boxes)[keep])
        vals += list(m.max(axis=1)) if m.shape[1] else [0.0] * len(gts)
    return float(np.mean(vals)) if vals else float("nan")


def summarize(results, kind: str, score_threshold: float) -> Dict[str, float]:
    """Metrics of one set.

    Args:
        results: per image ``(boxes, scores, gts)``; detections at a low threshold (for AP).
        kind: ``"all_faces"`` (AP, recall, IoU), ``"one_face"`` (recall@0.4, IoU) or ``"no_face"``.
        score_threshold: the detector's operating threshold, used for recall / false faces / IoU.
    """
    out: Dict[str, float] = {"images": float(len(results)), "faces": float(sum(len(g) for _, _, g in results))}
    if kind == "all_faces":
        out["ap50"] = average_precision(results, 0.5)
        out["ap50_95"] = ap_range(results)
    if kind in ("all_faces", "one_face"):
        out["recall40"] = recall_at(results, 0.4, score_threshold)
        out["mean_iou"] = mean_best_iou(results, score_threshold)
    out["faces_per_image"] = false_faces_per_image(results, score_threshold)
    if kind == "no_face":
        out["false_per_image"] = out["faces_per_image"]
    return out


def choose_threshold(one_face, no_face, min_recall: float = 0.97, max_false: float = 0.05,
                     iou_threshold: float = 0.4) -> Dict[str, float]:
    """Lowest operating threshold meeting a recall target on one-face photos and a false-face
    budget on face-free scenes (the rule behind the shipped detector's threshold).

    Args:
        one_face: per image ``(boxes, scores, gts)`` of photos with one labelled face.
        no_face: per image ``(boxes, scores, gts)`` of face-free scenes.
        min_recall: required recall@``iou_threshold`` on ``one_face``.
        max_false: allowed detections per face-free scene.

    Returns:
        ``{"threshold", "recall", "false_per_image", "feasible"}``; when no threshold meets both,
        the lowest one meeting the false-face budget, with ``feasible`` 0.
    """
    scores = {float(s) for _, sc, _ in list(one_face) + list(no_face) for s in np.asarray(sc)} | {0.0, 1.0}
    # Scores just above each score too: "<= max_false" is met strictly above a false face's score.
    for t in sorted(scores | {float(np.nextafter(c, 2.0)) for c in scores}):
        fp = false_faces_per_image(no_face, t) if len(no_face) else 0.0
        if fp <= max_false:
            rec = recall_at(one_face, iou_threshold, t) if len(one_face) else 1.0
            return {"threshold": t, "recall": rec, "false_per_image": fp, "feasible": float(rec >= min_recall)}
    return {"threshold": 1.0, "recall": 0.0, "false_per_image": 0.0, "feasible": 0.0}
