"""Box maths in plain numpy, used by inference, tracking, training and evaluation alike.

Boxes are ``(K, 4)`` float arrays of corner coordinates ``(x1, y1, x2, y2)`` in pixels of the
image they belong to (the convention of :class:`face_tracker_core.types.BBox`). An empty box
(``x2 <= x1`` or ``y2 <= y1``) has area 0 and IoU 0 with everything.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["intersections", "iou_matrix", "grow", "nms", "postprocess"]


def intersections(a: np.ndarray, b: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas of two sets of corner boxes, and their areas.

    Args:
        a: ``(N, 4)`` ``float64`` boxes.
        b: ``(M, 4)`` ``float64`` boxes.

    Returns:
        ``(inter (N, M), area_a (N,), area_b (M,))`` in square pixels (0 for empty boxes).
    """
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(ix, 0.0) * np.maximum(iy, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    return inter, area_a, area_b


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of corner boxes.

    Args:
        a: ``(N, 4)`` boxes (anything ``reshape(-1, 4)`` accepts: one box, a list of boxes).
        b: ``(M, 4)`` boxes.

    Returns:
        ``(N, M)`` ``float64`` IoU in [0, 1] (0 where the union is empty).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter, area_a, area_b = intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0.0, inter / union, 0.0)


def grow(boxes: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Grow corner boxes by ``frac`` (broadcast against the boxes) of their width/height on every side.

    Args:
        boxes: ``(..., 4)`` boxes.
        frac: fraction of the box size added on each side (0.3: 60 % wider and taller).

    Returns:
        ``(..., 4)`` grown boxes, same centres.
    """
    w = (boxes[..., 2] - boxes[..., 0]) * frac
    h = (boxes[..., 3] - boxes[..., 1]) * frac
    return np.stack([boxes[..., 0] - w, boxes[..., 1] - h, boxes[..., 2] + w, boxes[..., 3] + h], axis=-1)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.45, max_out: int = 200) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(K, 4)`` corner boxes.
        scores: ``(K,)`` scores (ties keep the input order).
        iou_threshold: a box overlapping a kept one by more than this is dropped.
        max_out: most boxes kept.

    Returns:
        ``int64`` indices of the kept boxes, highest score first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes = np.asarray(boxes, np.float64)
    keep: List[int] = []
    while order.size and len(keep) < max_out:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        ious = iou_matrix(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_threshold]
    return np.array(keep, np.int64)


def postprocess(raw: np.ndarray, score_threshold: float = 0.05, iou_threshold: float = 0.45,
                max_out: int = 200, pre_nms: int = 1000) -> Tuple[np.ndarray, np.ndarray]:
    """Decoded detector output to final detections: sigmoid, score threshold, top-``pre_nms``, NMS.

    Args:
        raw: ``(N, 5)`` rows ``(logit, x1, y1, x2, y2)``, boxes in pixels of the network input.
        score_threshold: lowest kept probability.
        iou_threshold: NMS IoU.
        max_out: most detections returned.
        pre_nms: at most this many highest-scoring candidates enter NMS.

    Returns:
        ``(boxes (K, 4) float64, scores (K,) float64)``, highest score first.
    """
    scores = 1.0 / (1.0 + np.exp(-raw[:, 0].astype(np.float64)))
    idx = np.nonzero(scores >= score_threshold)[0]
    if idx.size > pre_nms:
        idx = idx[np.argsort(-scores[idx], kind="stable")[:pre_nms]]
    boxes, sc = raw[idx, 1:5].astype(np.float64), scores[idx]
    keep = nms(boxes, sc, iou_threshold, max_out)
    return boxes[keep], sc[keep]
