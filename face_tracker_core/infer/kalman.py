"""Batched constant-velocity Kalman filter for face boxes, with the time step taken from stamps.

State per track (8 numbers, pixels and pixels/second)::

    x = [cx, cy, w, h, vcx, vcy, vw, vh]

``(cx, cy)`` is the box centre, ``(w, h)`` its width and height; the measurement is
``z = [cx, cy, w, h]`` of a detection. We filter width and height directly rather than SORT's
area/aspect ``(s, r)``: face boxes keep a near-constant aspect, so ``w`` and ``h`` move together
and stay linear in the motion (``s = w * h`` is quadratic in a zoom), and the noise of a detector's
box is roughly proportional to its height in both coordinates.

Noise is expressed relative to the box height ``h`` so that one setting works for a face of 30 px
and one of 300 px:

* measurement noise: ``std = measurement_std * h`` pixels for each of ``cx, cy, w, h``;
* process noise: continuous white-noise acceleration of spectral density ``(accel_std * h)²``
  for the centre and ``(size_accel_std * h)²`` for the size, integrated exactly over ``dt``. In
  words: after coasting ``T`` seconds the velocity is uncertain by ``accel_std * h * sqrt(T)``
  pixels/s and the position by ``accel_std * h * sqrt(T³/3)`` pixels.

Irregular frame rates are handled exactly: :meth:`BoxKalman.predict` takes ``dt`` in seconds and
builds the transition ``F(dt)`` and noise ``Q(dt)`` for it, so a dropped frame is just a longer step.

All functions work on a *batch* of ``N`` tracks at once (``mean`` ``(N, 8)``, ``cov``
``(N, 8, 8)``) so the tracker's cost per frame is a handful of numpy calls, not ``N`` of them.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

#: index of the height in the state; noise scales with it.
_H = 3
#: smallest width/height (pixels) the filter lets a box shrink to while coasting.
MIN_SIZE = 1.0
_POS = np.arange(4)
_EYE4 = np.eye(4)
# (cx, cy, w, h) <-> (x1, y1, x2, y2) as matrix products (one numpy call instead of four).
_Z2XYXY = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [-0.5, 0.0, 0.5, 0.0], [0.0, -0.5, 0.0, 0.5]])
_XYXY2Z = np.linalg.inv(_Z2XYXY)


class BoxKalman:
    """Constant-velocity Kalman filter over ``(cx, cy, w, h)`` boxes (batched, dt-aware).

    Args:
        measurement_std: detector noise of the box centre, as a fraction of the box height.
            Larger = smoother output boxes, slower to follow sudden moves.
        size_measurement_std: same for the width/height (0 = ``measurement_std``); detectors'
            box sizes are noisier than their centres, and a face partly hidden shows a smaller box.
        accel_std: white-noise acceleration of the centre, box heights per s^(3/2) (square root
            of the spectral density). Larger = follows manoeuvres faster, more jitter.
        size_accel_std: same for width/height (a face approaching the camera).
        init_velocity_std: prior std of the velocity of a new track, box heights per second.
        max_size_rate: the size velocity is clipped to this fraction of the size per second (a
            face does not double in size in a fraction of a second; a box shrinking that fast is
            a face going behind something). 0 = no limit.
        robust_chi2: measurements with a squared Mahalanobis innovation above this (chi-square,
            4 dof) get their noise inflated in proportion, so one odd box (a half-hidden face)
            cannot derail the state; 0 = plain Kalman update.
    """

    def __init__(self, measurement_std: float = 0.05, accel_std: float = 2.0, size_accel_std: float = 1.0,
                 init_velocity_std: float = 2.0, robust_chi2: float = 0.0, max_size_rate: float = 2.0,
                 size_measurement_std: float = 0.0) -> None:
        self.measurement_std = float(measurement_std)
        self.accel_std = float(accel_std)
        self.size_accel_std = float(size_accel_std)
        self.init_velocity_std = float(init_velocity_std)
        self.robust_chi2 = float(robust_chi2)
        self.max_size_rate = float(max_size_rate)
        self.size_measurement_std = float(size_measurement_std) or self.measurement_std
        m, ms = self.measurement_std, self.size_measurement_std
        self._meas_row = np.array([m, m, ms, ms])
        a, sa = self.accel_std, self.size_accel_std
        self._accel_row = np.array([a, a, sa, sa, a, a, sa, sa])

    # -- construction -------------------------------------------------------------------------
    def initiate(self, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """New tracks from measurements.

        Args:
            z: ``(N, 4)`` measurements ``(cx, cy, w, h)`` in pixels.

        Returns:
            ``mean`` ``(N, 8)`` (zero velocity) and ``cov`` ``(N, 8, 8)``.
        """
        z = np.asarray(z, dtype=np.float64).reshape(-1, 4)
        n = z.shape[0]
        mean = np.zeros((n, 8))
        mean[:, :4] = z
        h = np.maximum(z[:, _H], MIN_SIZE)
        std = np.empty((n, 8))
        std[:, :4] = 2.0 * self._meas_row * h[:, None]
        std[:, 4:] = self.init_velocity_std * h[:, None]
        cov = np.zeros((n, 8, 8))
        idx = np.arange(8)
        cov[:, idx, idx] = std ** 2
        return mean, cov

    # -- time update --------------------------------------------------------------------------
    def predict(self, mean: np.ndarray, cov: np.ndarray, dt: float) -> Tuple[np.ndarray, np.ndarray]:
        """Propagate ``N`` tracks by ``dt`` seconds (returns new arrays; ``dt <= 0`` is a no-op).

        Args:
            mean: ``(N, 8)`` states.
            cov: ``(N, 8, 8)`` covariances.
            dt: time step in seconds.

        Returns:
            Predicted ``(mean, cov)``; widths/heights are kept >= :data:`MIN_SIZE` pixels.
        """
        if dt <= 0.0 or mean.shape[0] == 0:
            return mean, cov
        mean = mean.copy()
        self._clip_size_rate(mean)
        mean[:, :4] += dt * mean[:, 4:]
        np.maximum(mean[:, 2:4], MIN_SIZE, out=mean[:, 2:4])
        f = np.eye(8)
        f[_POS, _POS + 4] = dt
        # Continuous white-noise acceleration, integrated exactly over dt:
        # Q = q * [[dt^3/3, dt^2/2], [dt^2/2, dt]] per axis. Unlike the per-frame "piecewise
        # constant acceleration" model, n steps of dt/n add up to one step of dt, so a dropped
        # frame or a 60 fps camera gives the same uncertainty after the same time.
        pattern = np.zeros((8, 8))
        pattern[_POS, _POS] = dt ** 3 / 3.0
        pattern[_POS, _POS + 4] = pattern[_POS + 4, _POS] = dt ** 2 / 2.0
        pattern[_POS + 4, _POS + 4] = dt
        sig = mean[:, _H:_H + 1] * self._accel_row            # (N, 8)
        new = f @ cov @ f.T + sig[:, :, None] * sig[:, None, :] * pattern
        return mean, new

    # -- measurement update -------------------------------------------------------------------
    def update(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Correct ``N`` tracks with one measurement each.

        Args:
            mean: ``(N, 8)`` predicted states.
            cov: ``(N, 8, 8)`` predicted covariances.
            z: ``(N, 4)`` measurements ``(cx, cy, w, h)`` in pixels.

        Returns:
            Posterior ``(mean, cov)``.
        """
        if mean.shape[0] == 0:
            return mean, cov
        z = np.asarray(z, dtype=np.float64).reshape(-1, 4)
        r = (np.maximum(z[:, _H:_H + 1], MIN_SIZE) * self._meas_row) ** 2          # (N, 4)
        s = cov[:, :4, :4] + r[:, :, None] * _EYE4
        s_inv = np.linalg.inv(s)
        innov = z - mean[:, :4]
        if self.robust_chi2 > 0.0:
            # Robust update: a measurement far outside the predicted spread (squared Mahalanobis
            # distance d2 above robust_chi2) is down-weighted by inflating its noise by
            # d2 / robust_chi2. Typical culprit: the box of a face half hidden behind something,
            # much smaller and off-centre, which would otherwise shrink and stop the track.
            d2 = np.einsum("ni,nij,nj->n", innov, s_inv, innov)
            out = d2 > self.robust_chi2
            if out.any():
                r = r[out] * (d2[out] / self.robust_chi2)[:, None]
                s_inv[out] = np.linalg.inv(cov[out, :4, :4] + r[:, :, None] * _EYE4)
        pht = cov[:, :, :4]                                   # P H^T, (N, 8, 4)
        gain = np.matmul(pht, s_inv)                          # K = P H^T S^-1, (N, 8, 4)
        mean = mean + np.matmul(gain, innov[:, :, None])[:, :, 0]
        cov = cov - np.matmul(gain, np.swapaxes(pht, 1, 2))
        # Keep the covariance symmetric against round-off over long runs.
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        np.maximum(mean[:, 2:4], MIN_SIZE, out=mean[:, 2:4])
        self._clip_size_rate(mean)
        return mean, cov

    def _clip_size_rate(self, mean: np.ndarray) -> None:
        if self.max_size_rate > 0.0:
            lim = self.max_size_rate * mean[:, 2:4]
            np.minimum(mean[:, 6:8], lim, out=mean[:, 6:8])
            np.maximum(mean[:, 6:8], -lim, out=mean[:, 6:8])


    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, z: np.ndarray, dims: int = 4) -> np.ndarray:
        """Squared Mahalanobis distance of every measurement to every track's predicted box.

        Args:
            mean: ``(N, 8)`` predicted states.
            cov: ``(N, 8, 8)`` predicted covariances.
            z: ``(M, 4)`` measurements ``(cx, cy, w, h)``.
            dims: 4 = centre and size; 2 = centre only (for a face re-appearing from behind
                something, whose first boxes are much smaller than the whole face).

        Returns:
            ``(N, M)`` distances; chi-square with ``dims`` degrees of freedom for a correct pair
            (95 % below 9.49 for 4, 5.99 for 2).
        """
        z = np.asarray(z, dtype=np.float64).reshape(-1, 4)
        if mean.shape[0] == 0 or z.shape[0] == 0:
            return np.zeros((mean.shape[0], z.shape[0]))
        r = (np.maximum(mean[:, _H:_H + 1], MIN_SIZE) * self._meas_row) ** 2
        s_inv = np.linalg.inv(cov[:, :dims, :dims] + r[:, :dims, None] * _EYE4[:dims, :dims])   # (N, d, d)
        d = z[None, :, :dims] - mean[:, None, :dims]                                           # (N, M, d)
        return np.einsum("nmi,nij,nmj->nm", d, s_inv, d)


def xyxy_to_z(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` corner boxes ``(x1, y1, x2, y2)`` -> measurements ``(cx, cy, w, h)``."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) @ _XYXY2Z


def z_to_xyxy(z: np.ndarray) -> np.ndarray:
    """``(N, >=4)`` states or measurements ``(cx, cy, w, h, ...)`` -> corner boxes ``(N, 4)``."""
    z = np.asarray(z, dtype=np.float64)
    return z.reshape(-1, z.shape[-1])[:, :4] @ _Z2XYXY
