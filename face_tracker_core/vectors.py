"""Vector maths shared by recognition and tracking (plain numpy)."""

from __future__ import annotations

import numpy as np

__all__ = ["l2_normalize"]


def l2_normalize(x: np.ndarray, eps: float = 1e-10, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit L2 norm.

    Args:
        x: ``(..., D)`` vectors.
        eps: norms below this are treated as ``eps`` (a zero row stays zero; a NaN row stays NaN).
        dtype: output dtype (``float32`` for stored embeddings, ``float64`` for the tracker's sums).

    Returns:
        ``(..., D)`` array of ``dtype``.
    """
    x = np.asarray(x, dtype)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)
