"""Binary cross-entropy over many attributes, optionally class-balanced."""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="face_tracker_attributes")
class WeightedBCE(keras.losses.Loss):
    """Mean over attributes of ``-(w_pos * y * log p + w_neg * (1 - y) * log(1 - p))``.

    With ``positive_rate`` given, ``w_pos = 1 / (2 r)`` and ``w_neg = 1 / (2 (1 - r))`` per attribute
    (``r`` clipped to ``[clip, 1 - clip]``), so a rare attribute's few positives weigh as much as
    its many negatives; without it this is plain BCE.

    Args:
        positive_rate: ``(K,)`` fraction of positives per attribute in the training set, or None.
        clip: bound on ``r`` so that an attribute with 1 positive does not get weight 200.

    ``y_true`` and ``y_pred`` are ``[B, K]``, ``y_pred`` probabilities.
    """

    def __init__(self, positive_rate: Optional[Sequence[float]] = None, clip: float = 0.02,
                 name: str = "weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.positive_rate = None if positive_rate is None else [float(v) for v in positive_rate]
        self.clip = float(clip)
        if self.positive_rate is None:
            self._wp = self._wn = None
        else:
            r = np.clip(np.asarray(self.positive_rate, np.float32), self.clip, 1 - self.clip)
            self._wp = (0.5 / r).astype(np.float32)
            self._wn = (0.5 / (1 - r)).astype(np.float32)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1 - 1e-7)
        pos = -y_true * ops.log(p)
        neg = -(1 - y_true) * ops.log(1 - p)
        if self._wp is not None:
            pos = pos * ops.convert_to_tensor(self._wp)
            neg = neg * ops.convert_to_tensor(self._wn)
        return ops.mean(pos + neg, axis=-1)

    def get_config(self):
        return {"name": self.name, "positive_rate": self.positive_rate, "clip": self.clip}
