"""Settings of the face tracker (:class:`TrackerConfig`) and the appearance hook's type.

The algorithm they parametrise is described in :mod:`face_tracker_core.infer.tracker`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from ..types import Detection

__all__ = ["TrackerConfig", "AppearanceHook"]

#: ``hook(frame, detections) -> (len(detections), D) array or None``; see the module docstring.
AppearanceHook = Callable[[Optional[np.ndarray], Sequence[Detection]], Optional[np.ndarray]]


@dataclass
class TrackerConfig:
    """Tracker settings (all optional; units in the names: ``_s`` seconds, ``_std`` see below).

    Association:
        high_score: detections at or above this score are matched first and may start tracks.
        low_score: detections below this are ignored; those in ``[low_score, high_score)`` can only
            extend an existing track (ByteTrack's second stage).
        new_track_score: minimum score to start a track; ``None`` = ``high_score``.
        iou_threshold: minimum IoU between a track's predicted box and a high-score detection.
        low_iou_threshold: minimum IoU for the low-score stage (stricter: such detections are
            less trustworthy).
        lost_buffer: for coasting tracks, both boxes are grown by this fraction of their width and
            height on each side before the IoU (buffered IoU), so a re-appearing face a bit off
            its prediction is still matched. 0 disables.
        lost_gate: squared Mahalanobis gate of the box centre in the last-chance match of coasting
            tracks (chi-square, 2 dof: 5.99 = 95 %, 13.8 = 99.9 %); 0 disables. Wide on purpose:
            the last, partly hidden boxes of a face going behind something often corrupt its
            velocity, so it re-appears off the prediction; ``lost_max_dist`` bounds the reach.
        lost_max_dist: that match never spans more than this many box heights (centre distance).
        bridge_overlap: a high-score detection that overlaps two *stronger* detections, each
            covering at least this fraction of its area, is taken for a *bridge*: the box some
            detectors put on the gap between two touching heads (half of each looks like a
            face). Bridges are treated like low-score detections: they may extend a track that
            was matched on the previous update (stage c: a real face partly hidden by two others
            stays tracked) but neither re-acquire a coasting track nor start one, so they cannot
            pull away the track of a face hidden behind one of the two, nor take its id when it
            re-appears. 0 disables.

    Life cycle:
        min_hits: matched updates before a track is confirmed (reported). 1 = report at once.
        max_age_s: seconds without a detection after which a confirmed track is removed.
        report_lost_s: confirmed tracks that missed their detection for at most this many seconds
            are still returned by :meth:`Tracker.update` with their predicted box (0 = only tracks
            matched in this frame).

    Motion model (Kalman noise, relative to the box height ``h``, see :mod:`.kalman`):
        measurement_std: detector noise of the box centre, fraction of ``h``; larger = smoother,
            more lag.
        size_measurement_std: detector noise of the box width/height, fraction of ``h``.
        accel_std: centre acceleration noise, ``h`` per s^1.5; larger = follows turns faster.
        size_accel_std: size acceleration noise, ``h`` per s^1.5.
        init_velocity_std: velocity prior of a new track, ``h`` per s.
        robust_chi2: a detection whose squared Mahalanobis distance to the prediction exceeds
            this (chi-square, 4 dof) is trusted less, in proportion (robust update): the shrunken,
            off-centre box of a face half hidden behind something cannot stop or shrink the
            track. 0 = plain Kalman update.

    Output smoothing (One-Euro filter on the reported boxes only):
        smooth_min_cutoff_hz: cut-off frequency for a still face, Hz; lower = steadier box.
            0 disables (reports the Kalman estimate).
        smooth_beta: cut-off increase per unit of speed (Hz per box height per second); higher =
            less lag on moving faces.

    Appearance (only used with a hook or ``embeddings``):
        appearance_threshold: cosine similarity needed to give a new detection an old id; set it
            to your embedder's same-person cosine. 0.92 suits dlib's ResNet (flip-averaged, on
            CelebA heads: 0.4 % of different-person pairs and 7 % of same-person pairs of
            *different photos* fall on the wrong side; different people often reach 0.85-0.9, so
            dlib's "distance 0.6" rule, a cosine of 0.82, would merge strangers).
        appearance_interval_s: refresh a track's embedding at most this often.
        appearance_momentum: weight of the old embedding in the running average (0..1).
        appearance_memory_s: how long a removed track's embedding is remembered.
        appearance_window_s: a new track may still take a remembered id during its first
            seconds (on its first good view: a high-score box not overlapping another face, not
            cut by the border).
        appearance_hold_s: while some known face is missing, a new track is not reported until
            that check is done, for at most this long (so a returning face does not show a new
            id for a few frames before getting its old one back). 0 = report at once.
        max_gallery: most removed tracks remembered (oldest forgotten first).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: Optional[float] = None
    iou_threshold: float = 0.3
    low_iou_threshold: float = 0.5
    lost_buffer: float = 0.3
    min_hits: int = 2
    max_age_s: float = 1.0
    report_lost_s: float = 0.1
    lost_gate: float = 13.8
    lost_max_dist: float = 1.5
    bridge_overlap: float = 0.05
    smooth_min_cutoff_hz: float = 1.0
    smooth_beta: float = 5.0
    measurement_std: float = 0.05
    size_measurement_std: float = 0.1
    accel_std: float = 2.0
    size_accel_std: float = 1.0
    init_velocity_std: float = 2.0
    robust_chi2: float = 6.0
    appearance_threshold: float = 0.92
    appearance_interval_s: float = 0.5
    appearance_momentum: float = 0.7
    appearance_memory_s: float = 60.0
    appearance_window_s: float = 1.0
    appearance_hold_s: float = 0.5
    max_gallery: int = 100

    def validate(self) -> "TrackerConfig":
        """Check ranges; raises ``ValueError`` naming the bad setting. Returns ``self``."""
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(f"tracker config: {msg}")

        for name in ("high_score", "low_score", "iou_threshold", "low_iou_threshold", "appearance_momentum",
                     "bridge_overlap"):
            v = getattr(self, name)
            need(isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0,
                 f"{name}={v!r} must be in [0, 1]")
        need(self.low_score <= self.high_score, f"low_score={self.low_score} must be <= high_score={self.high_score}")
        if self.new_track_score is not None:
            need(0.0 <= self.new_track_score <= 1.0, f"new_track_score={self.new_track_score!r} must be in [0, 1]")
        need(self.iou_threshold > 0.0, "iou_threshold must be > 0 (0 would match disjoint boxes)")
        need(self.low_iou_threshold > 0.0, "low_iou_threshold must be > 0")
        need(int(self.min_hits) == self.min_hits and self.min_hits >= 1,
             f"min_hits={self.min_hits!r} must be an integer >= 1")
        for name in ("max_age_s", "measurement_std", "size_measurement_std"):
            v = getattr(self, name)
            need(math.isfinite(v) and v > 0.0, f"{name}={v!r} must be > 0")
        for name in ("report_lost_s", "robust_chi2", "lost_gate", "lost_max_dist", "smooth_min_cutoff_hz",
                     "smooth_beta", "lost_buffer", "accel_std", "size_accel_std", "init_velocity_std",
                     "appearance_interval_s", "appearance_memory_s", "appearance_window_s",
                     "appearance_hold_s"):
            v = getattr(self, name)
            need(math.isfinite(v) and v >= 0.0, f"{name}={v!r} must be >= 0")
        need(-1.0 <= self.appearance_threshold <= 1.0, "appearance_threshold must be a cosine in [-1, 1]")
        need(int(self.max_gallery) == self.max_gallery and self.max_gallery >= 0, "max_gallery must be an integer >= 0")
        return self

    @classmethod
    def from_dict(cls, config: Dict[str, object]) -> "TrackerConfig":
        """Build from a mapping; unknown keys raise ``ValueError`` listing the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"tracker config: unknown setting(s) {unknown} (valid: {sorted(names)})")
        return cls(**config).validate()
