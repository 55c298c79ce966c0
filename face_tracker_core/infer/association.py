"""Association maths of the tracker: which detection belongs to which track in one frame.

The staged ByteTrack-style matching described in :mod:`face_tracker_core.infer.tracker` (step 2),
on arrays only: tracks are rows of the Kalman state, detections are rows of a box array. Boxes
are ``(K, 4)`` corner boxes ``(x1, y1, x2, y2)`` in pixels.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..boxes import grow, intersections, iou_matrix
from .kalman import BoxKalman, xyxy_to_z, z_to_xyxy
from .tracker_config import TrackerConfig

__all__ = ["bridges", "assign", "match_stage", "associate", "good_views"]


def bridges(boxes: np.ndarray, scores: np.ndarray, high: np.ndarray, min_overlap: float) -> np.ndarray:
    """Which detections are *bridges* (see ``TrackerConfig.bridge_overlap``).

    Args:
        boxes: ``(N, 4)`` corner boxes in pixels.
        scores: ``(N,)`` detector scores.
        high: ``(N,)`` bool, the high-score detections (only those count as neighbours).
        min_overlap: fraction of a box's area each of two stronger neighbours must cover; 0 = off.

    Returns:
        ``(N,)`` bool.
    """
    n = len(boxes)
    if min_overlap <= 0.0 or n < 3:
        return np.zeros(n, dtype=bool)
    inter, area, _ = intersections(boxes, boxes)
    covered = inter / np.maximum(area[:, None], 1e-9)   # fraction of the row's box
    neighbour = covered >= min_overlap
    neighbour &= high[None, :] & (scores[None, :] > scores[:, None])
    np.fill_diagonal(neighbour, False)
    return high & (neighbour.sum(axis=1) >= 2)


def assign(score: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """Hungarian maximisation of ``score`` (``(N, M)``), pairs below ``threshold`` dropped.

    Returns:
        ``(rows, cols)`` of the kept pairs.
    """
    if score.size == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    rows, cols = linear_sum_assignment(score, maximize=True)
    keep = score[rows, cols] >= threshold
    return rows[keep], cols[keep]


def match_stage(score: np.ndarray, trk_mask: np.ndarray, det_mask: np.ndarray, threshold: float,
                trk_det: np.ndarray, det_track: np.ndarray) -> None:
    """One association stage: still-free tracks of ``trk_mask`` against still-free detections of
    ``det_mask`` on ``score`` (``(tracks, detections)``); fills ``trk_det``/``det_track`` in place."""
    rows = np.flatnonzero(trk_mask & (trk_det < 0))
    cols = np.flatnonzero(det_mask & (det_track < 0))
    if rows.size == 0 or cols.size == 0:
        return
    r, c = assign(score[np.ix_(rows, cols)], threshold)
    trk_det[rows[r]] = cols[c]
    det_track[cols[c]] = rows[r]


def _match_lost_by_distance(kf: BoxKalman, mean: np.ndarray, cov: np.ndarray, boxes: np.ndarray,
                            rows: np.ndarray, cols: np.ndarray, cfg: TrackerConfig, trk_det: np.ndarray,
                            det_track: np.ndarray) -> None:
    """Stage b2: coasting tracks ``rows`` vs detections ``cols`` by the Kalman Mahalanobis distance
    of the box centre (gate ``lost_gate``), capped at ``lost_max_dist`` box heights."""
    zc = xyxy_to_z(boxes[cols])
    # Centre only: a face coming out from behind something shows a small box first.
    md = kf.gating_distance(mean[rows], cov[rows], zc, dims=2)
    # ...but never farther than lost_max_dist box heights: after a long coast the
    # covariance alone would let the track grab someone else in a crowd.
    pm = mean[rows]
    dist = np.hypot(zc[None, :, 0] - pm[:, None, 0], zc[None, :, 1] - pm[:, None, 1])
    md[dist > cfg.lost_max_dist * np.maximum(pm[:, 3:4], 1.0)] = 1e9
    r, c = assign(cfg.lost_gate - md, 1e-9)
    trk_det[rows[r]] = cols[c]
    det_track[cols[c]] = rows[r]


def associate(kf: BoxKalman, mean: np.ndarray, cov: np.ndarray, confirmed: np.ndarray, recent: np.ndarray,
              boxes: np.ndarray, high: np.ndarray, cfg: TrackerConfig) -> Tuple[np.ndarray, np.ndarray]:
    """Stages a-d of the tracker's association (module docstring of :mod:`.tracker`).

    Args:
        kf: the tracker's Kalman filter (for the Mahalanobis gate).
        mean: ``(T, 8)`` predicted Kalman means ``(cx, cy, w, h, vx, vy, vw, vh)``.
        cov: ``(T, 8, 8)`` their covariances.
        confirmed: ``(T,)`` bool, confirmed tracks.
        recent: ``(T,)`` bool, tracks matched on the previous update.
        boxes: ``(N, 4)`` detection boxes.
        high: ``(N,)`` bool, high-score detections (bridges already left out).
        cfg: the tracker settings.

    Returns:
        ``(trk_det (T,), det_track (N,))``: detection index of each track, track row of each
        detection, -1 where unmatched.
    """
    n_trk, n_det = len(mean), len(boxes)
    trk_det = np.full(n_trk, -1, dtype=int)
    det_track = np.full(n_det, -1, dtype=int)
    if not n_trk or not n_det:
        return trk_det, det_track
    trk_boxes = z_to_xyxy(mean[:, :4])
    iou = iou_matrix(trk_boxes, boxes)
    # a. tracked faces vs high-score detections.
    match_stage(iou, confirmed & recent, high, cfg.iou_threshold, trk_det, det_track)
    # b. coasting faces vs the rest, on buffered IoU.
    lost = confirmed & ~recent
    if lost.any():
        biou = iou
        if cfg.lost_buffer > 0.0:
            # Only the coasting rows are used by this stage, so only they are recomputed.
            biou = iou.copy()
            rows = np.flatnonzero(lost)
            biou[rows] = iou_matrix(grow(trk_boxes[rows], cfg.lost_buffer), grow(boxes, cfg.lost_buffer))
        match_stage(biou, lost, high, cfg.iou_threshold, trk_det, det_track)
        # b2. still-unmatched coasting faces: Mahalanobis gate on the Kalman prediction,
        # whose uncertainty has grown while coasting (a face that turned back behind an
        # occluder re-appears far from a constant-velocity guess, but within it).
        rows = np.flatnonzero(lost & (trk_det < 0))
        cols = np.flatnonzero(high & (det_track < 0))
        if cfg.lost_gate > 0.0 and rows.size and cols.size:
            _match_lost_by_distance(kf, mean, cov, boxes, rows, cols, cfg, trk_det, det_track)
    # c. tracked faces vs low-score detections.
    match_stage(iou, confirmed & recent, ~high, cfg.low_iou_threshold, trk_det, det_track)
    # d. tentative tracks vs the remaining high-score detections.
    match_stage(iou, ~confirmed, high, cfg.iou_threshold, trk_det, det_track)
    return trk_det, det_track


def good_views(boxes: np.ndarray, scores: np.ndarray, high_score: float,
               frame: Optional[np.ndarray] = None) -> np.ndarray:
    """Detections good enough to embed: high-score, overlapping no other high-score detection,
    and (when the frame is given) not cut by the image border.

    Weak boxes are left out on both sides: a detector run at a low threshold for ByteTrack
    scatters them over faces and background alike.

    Args:
        boxes: ``(N, 4)`` detection boxes.
        scores: ``(N,)`` detector scores.
        high_score: the tracker's high-score threshold.
        frame: the ``(H, W, ...)`` image the boxes are in, or ``None`` (no border check).

    Returns:
        ``(N,)`` bool.
    """
    strong = scores >= high_score
    overlap = iou_matrix(boxes, boxes)
    np.fill_diagonal(overlap, 0.0)
    good = strong & ~((overlap > 0.0) & strong[None, :]).any(axis=1)
    if frame is not None and getattr(frame, "ndim", 0) >= 2:
        # Detectors clip boxes to the image, so a face cut by the border ends exactly on it:
        # keep a margin of 5 % of the box size (at least 1 px) to the border.
        fh, fw = frame.shape[:2]
        mx = np.maximum(0.05 * (boxes[:, 2] - boxes[:, 0]), 1.0)
        my = np.maximum(0.05 * (boxes[:, 3] - boxes[:, 1]), 1.0)
        good &= ((boxes[:, 0] >= mx) & (boxes[:, 1] >= my)
                 & (boxes[:, 2] <= fw - mx) & (boxes[:, 3] <= fh - my))
    return good
