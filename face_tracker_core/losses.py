"""Losses of the two detectors, written with ``keras.ops`` only (run on TensorFlow or JAX).

Box format everywhere here: ``(x1, y1, x2, y2)``. The multi-face detector works in pixels of its
input; the classic FaceTracker in coordinates normalised to [0, 1].
"""

from __future__ import annotations

from keras import ops

_EPS = 1e-7


# --------------------------------------------------------------------------- multi-face detector
def box_iou_giou(pred, target):
    """Element-wise IoU and generalised IoU of two box tensors.

    Args:
        pred: ``[..., 4]`` boxes ``(x1, y1, x2, y2)``.
        target: ``[..., 4]`` boxes, same shape.

    Returns:
        ``(iou [...], giou [...])``; ``giou`` is in ``[-1, 1]``.
    """
    px1, py1, px2, py2 = [pred[..., i] for i in range(4)]
    tx1, ty1, tx2, ty2 = [target[..., i] for i in range(4)]
    pa = ops.maximum(px2 - px1, 0.0) * ops.maximum(py2 - py1, 0.0)
    ta = ops.maximum(tx2 - tx1, 0.0) * ops.maximum(ty2 - ty1, 0.0)
    iw = ops.maximum(ops.minimum(px2, tx2) - ops.maximum(px1, tx1), 0.0)
    ih = ops.maximum(ops.minimum(py2, ty2) - ops.maximum(py1, ty1), 0.0)
    inter = iw * ih
    union = pa + ta - inter
    iou = inter / (union + _EPS)
    cw = ops.maximum(px2, tx2) - ops.minimum(px1, tx1)
    ch = ops.maximum(py2, ty2) - ops.minimum(py1, ty1)
    hull = cw * ch + _EPS
    return iou, iou - (hull - union) / hull


def detector_loss_terms(y_true, y_pred, box_weight: float = 2.0):
    """Quality focal loss on the face score + GIoU loss on the boxes of positive points.

    The score target of a positive point is the IoU of its own predicted box with its face
    (Generalized Focal Loss, Li et al. 2020): the score then ranks boxes by localisation quality,
    which is what AP and NMS need. Negative points have target 0. Both terms are normalised by
    the number of positive points in the batch.

    Args:
        y_true: ``[B, N, 5]``: channel 0 is 1 for a positive point (assigned a face), 0 for
            background, -1 for an ignored point; channels 1..4 the assigned face box in input
            pixels (anything where channel 0 is not 1).
        y_pred: ``[B, N, 5]`` from the detector: logit, then the decoded box in input pixels.
        box_weight: weight of the GIoU term.

    Returns:
        ``(cls_loss, box_loss)`` scalars.
    """
    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    # Channel 0 is 1 (face), 0 (background) or -1 (ignore: a face too small or mostly cropped):
    # ignored points count in neither term.
    pos = ops.cast(ops.equal(y_true[..., 0], 1.0), "float32")
    valid = ops.cast(ops.greater_equal(y_true[..., 0], 0.0), "float32")
    logits = y_pred[..., 0]
    iou, giou = box_iou_giou(y_pred[..., 1:5], y_true[..., 1:5])
    num_pos = ops.maximum(ops.sum(pos), 1.0)
    quality = ops.stop_gradient(ops.clip(iou, 0.0, 1.0)) * pos
    prob = ops.sigmoid(logits)
    bce = ops.maximum(logits, 0.0) - logits * quality + ops.log1p(ops.exp(-ops.abs(logits)))
    cls_loss = ops.sum(bce * ops.square(quality - prob) * valid) / num_pos
    box_loss = box_weight * ops.sum((1.0 - giou) * pos) / num_pos
    return cls_loss, box_loss


def detector_loss(y_true, y_pred):
    """Total detector loss (``cls + box``, see :func:`detector_loss_terms`)."""
    cls_loss, box_loss = detector_loss_terms(y_true, y_pred)
    return cls_loss + box_loss


def detector_cls_loss(y_true, y_pred):
    """The score term alone (logged as ``class_loss``)."""
    return detector_loss_terms(y_true, y_pred)[0]


def detector_box_loss(y_true, y_pred):
    """The box term alone (logged as ``box_loss``)."""
    return detector_loss_terms(y_true, y_pred)[1]


# --------------------------------------------------------------------------- classic FaceTracker
def localization_loss(y_true, yhat, mask=None):
    """The tutorials' localisation loss, per sample, optionally masked.

    ``(x1 - x1')^2 + (y1 - y1')^2 + (w - w')^2 + (h - h')^2`` on normalised ``(x1, y1, x2, y2)``
    boxes. The tutorials summed this over the batch including photos *without* a face, whose box
    label is meaningless (zeros), which pulled every box towards the corner; ``mask`` (1 for a
    face, 0 for none) removes those samples.

    Args:
        y_true: ``[B, 4]`` true boxes.
        yhat: ``[B, 4]`` predicted boxes.
        mask: ``[B]`` or ``[B, 1]`` face indicator, or None for the tutorials' unmasked sum.

    Returns:
        Scalar: the sum over the batch divided by the number of faces (the tutorials' plain
        ``reduce_sum`` when ``mask`` is None).
    """
    y_true = ops.cast(y_true, "float32")
    yhat = ops.cast(yhat, "float32")
    delta_coord = ops.sum(ops.square(y_true[:, :2] - yhat[:, :2]), axis=1)
    h_true = y_true[:, 3] - y_true[:, 1]
    w_true = y_true[:, 2] - y_true[:, 0]
    h_pred = yhat[:, 3] - yhat[:, 1]
    w_pred = yhat[:, 2] - yhat[:, 0]
    delta_size = ops.square(w_true - w_pred) + ops.square(h_true - h_pred)
    per_sample = delta_coord + delta_size
    if mask is None:
        return ops.sum(per_sample)
    mask = ops.reshape(ops.cast(mask, "float32"), (-1,))
    return ops.sum(per_sample * mask) / ops.maximum(ops.sum(mask), 1.0)


def binary_crossentropy(y_true, y_prob):
    """Mean binary cross-entropy of probabilities (``[B, 1]`` each)."""
    y_true = ops.cast(y_true, "float32")
    p = ops.clip(ops.cast(y_prob, "float32"), _EPS, 1.0 - _EPS)
    return -ops.mean(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))


def facetracker_losses(y_class, y_box, pred_class, pred_box, cls_weight: float = 0.5):
    """``(total, class, box)`` losses of the classic FaceTracker: ``total = box + 0.5 * class``."""
    cls = binary_crossentropy(y_class, pred_class)
    box = localization_loss(y_box, pred_box, mask=y_class)
    return box + cls_weight * cls, cls, box
