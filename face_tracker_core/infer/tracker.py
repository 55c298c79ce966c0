"""Multi-face tracker: Kalman motion, two-stage ByteTrack association, optional appearance re-id.

Per call of :meth:`Tracker.update` (one frame, stamp in seconds):

1. **Predict** every track to the frame's stamp with a constant-velocity Kalman filter over
   ``(cx, cy, w, h)`` (:mod:`.kalman`); ``dt`` comes from the stamps, so irregular frame rates and
   dropped frames are a longer step, not a miss. Matched tracks are corrected with a *robust*
   update (a box far from the prediction, such as that of a face half hidden behind something,
   is trusted less); coasting tracks keep their size.
2. **Associate** detections to tracks with the Hungarian algorithm
   (:func:`scipy.optimize.linear_sum_assignment`) on IoU, ByteTrack-style in stages:

   a. confirmed tracks matched on the previous update  <->  *high-score* detections
      (``score >= high_score``), gate ``iou_threshold``;
   b. confirmed tracks that are coasting (missed recently)  <->  the remaining high-score
      detections, on a *buffered* IoU (both boxes grown by ``lost_buffer`` of their size, so a face
      that re-appears a little off its predicted position is still caught), gate ``iou_threshold``;
      then, for those still unmatched, the Kalman *Mahalanobis* distance of the box centre
      (gate ``lost_gate``, chi-square 2 dof; the uncertainty grows while a track coasts, so a
      face that turned back behind an occluder is still found) capped at ``lost_max_dist`` box
      heights (so a long-lost track cannot grab someone else in a crowd);
   c. still-unmatched confirmed tracks that were matched on the previous update  <->  *low-score*
      detections (``low_score <= score < high_score``), gate ``low_iou_threshold``: a face that
      turned or blurred keeps its track instead of being dropped;
   d. tentative tracks  <->  the remaining high-score detections, gate ``iou_threshold``.

   Tracked faces pick first (a then b), so a face coming out of an occlusion cannot steal the
   detection of the face that hid it. A *bridge* (a high-score box two stronger detections each
   cover by at least ``bridge_overlap`` of its area: a detector's box on the gap between two
   touching heads) counts as a low-score detection: stage c only, and it starts no track.
3. **Birth and death.** Left-over detections with ``score >= new_track_score`` start *tentative*
   tracks; a tentative track is *confirmed* after ``min_hits`` matched updates and dies at its first
   unmatched update. A confirmed track dies when ``max_age_s`` **seconds** (not frames) have passed
   since its last detection, so frame drops do not break tracks.
4. **Output**: :meth:`Tracker.update` returns the confirmed tracks matched in this frame, plus
   those coasting for at most ``report_lost_s`` seconds (with their predicted box, bridging a
   detector's blinks). Output boxes are the Kalman estimate passed through a One-Euro filter
   (a low-pass whose cut-off rises with the track's speed): a still face gets a steady box, a
   moving one little lag. The Kalman state itself, not the smoothed box, drives association.

Ids are short decimal strings (``"1"``, ``"2"``, ...) that are never reused within a tracker's
lifetime (also not across :meth:`Tracker.reset` unless asked), so a consumer keeping per-id state is
never confused by a recycled id.

Appearance re-identification (optional, off unless a hook is set or embeddings are passed)
-----------------------------------------------------------------------------------------
Motion alone cannot tell that a face which left the view (or stayed hidden longer than
``max_age_s``) and came back is the same person. With an *appearance hook* the tracker keeps one
L2-normalised embedding per confirmed track (a running average refreshed at most every
``appearance_interval_s`` seconds) and remembers the embeddings of removed tracks for
``appearance_memory_s`` seconds. A track born in the last ``appearance_window_s`` seconds is
compared (cosine), on its first *good* view, with the coasting and the remembered tracks; the best
match above ``appearance_threshold`` gives it the old id (and confirms it at once). A good view is
a high-score detection that overlaps no other high-score detection and is not cut by the image
border (when the frame is given): a face walking in, or half hidden, embeds poorly, so the
decision waits for a clean look instead of being taken at birth. Meanwhile (at most
``appearance_hold_s``) the young track is not reported, so a returning face is never shown under
a new id first. Embeddings are only ever computed from good views.

The hook interface::

    def hook(frame, detections) -> np.ndarray | None

* ``frame``: whatever was passed as ``update(..., frame=...)`` (typically the ``(H, W, 3)`` uint8
  BGR image the detections were computed on), or ``None`` when the caller passed none (a hook may
  then use its own reference to the current image);
* ``detections``: the :class:`~face_tracker_core.types.Detection` objects that need an embedding
  this frame (usually none or a few: young tracks while some face is missing, and the periodic
  refreshes; so a 10-30 ms embedder is affordable). The hook is called at most once per update;
* returns a ``(len(detections), D)`` float array, one embedding per detection in the same order
  (any scale: the tracker normalises; a row of zeros or NaNs means "no embedding for this one"), or
  ``None`` to skip appearance this frame. Exceptions are logged and treated as ``None``.

Callers that already compute embeddings for every detection (e.g. for recognition) can instead
pass ``update(..., embeddings=E)`` with ``E`` ``(len(detections), D)``; the hook is then not called.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..types import BBox, Detection, Track
from .kalman import BoxKalman, xyxy_to_z, z_to_xyxy

log = logging.getLogger(__name__)

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


class _Meta:
    """Book-keeping of one track beside its row in the Kalman arrays."""

    __slots__ = ("track_id", "hits", "confirmed", "last_update", "matched_prev", "score", "label",
                 "landmarks", "embedding", "emb_stamp", "born", "fresh_id")

    def __init__(self, track_id: str, stamp: float, det: Detection) -> None:
        self.track_id = track_id
        self.hits = 1
        self.confirmed = False
        self.last_update = stamp
        self.matched_prev = True     # matched on the latest update (set at the end of each update)
        self.score = det.score
        self.label = det.label
        self.landmarks = det.landmarks
        self.embedding: Optional[np.ndarray] = None
        self.emb_stamp = -math.inf
        self.born = stamp
        self.fresh_id = True         # a new id that appearance may still replace by a remembered one


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of corner boxes.

    Args:
        a: ``(N, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels.
        b: ``(M, 4)`` boxes.

    Returns:
        ``(N, M)`` IoU in [0, 1] (0 for empty boxes).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter, area_a, area_b = _intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0.0, inter / union, 0.0)


def _intersections(a: np.ndarray, b: np.ndarray):
    """``(N, M)`` pairwise intersection areas of corner boxes ``a`` ``(N, 4)`` and ``b`` ``(M, 4)``,
    and their areas ``(N,)``, ``(M,)`` (0 for empty boxes)."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(ix, 0.0) * np.maximum(iy, 0.0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0.0) * np.maximum(a[:, 3] - a[:, 1], 0.0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0.0) * np.maximum(b[:, 3] - b[:, 1], 0.0)
    return inter, area_a, area_b


def _grow(boxes: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Grow corner boxes by ``frac`` (broadcast) of their width/height on every side."""
    w = (boxes[..., 2] - boxes[..., 0]) * frac
    h = (boxes[..., 3] - boxes[..., 1]) * frac
    return np.stack([boxes[..., 0] - w, boxes[..., 1] - h, boxes[..., 2] + w, boxes[..., 3] + h], axis=-1)


def _bridges(boxes: np.ndarray, scores: np.ndarray, high: np.ndarray, min_overlap: float) -> np.ndarray:
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
    inter, area, _ = _intersections(boxes, boxes)
    covered = inter / np.maximum(area[:, None], 1e-9)   # fraction of the row's box
    neighbour = covered >= min_overlap
    neighbour &= high[None, :] & (scores[None, :] > scores[:, None])
    np.fill_diagonal(neighbour, False)
    return high & (neighbour.sum(axis=1) >= 2)


def _assign(score: np.ndarray, threshold: float):
    """Hungarian maximisation of ``score`` (``(N, M)``), pairs below ``threshold`` dropped."""
    if score.size == 0:
        return np.empty(0, dtype=int), np.empty(0, dtype=int)
    rows, cols = linear_sum_assignment(score, maximize=True)
    keep = score[rows, cols] >= threshold
    return rows[keep], cols[keep]


class Tracker:
    """Tracks faces across frames; see the module docstring for the algorithm and the hook.

    Args:
        appearance: optional appearance hook ``fn(frame, detections) -> (N, D) array | None``.
        **config: :class:`TrackerConfig` settings (``high_score=0.5``, ``low_score=0.1``,
            ``min_hits=2``, ``max_age_s=1.0``, ``iou_threshold=0.3``, ...).

    Raises:
        ValueError: an unknown or out-of-range setting.

    Example::

        tracker = Tracker(min_hits=2, max_age_s=1.0)
        for stamp, frame in frames:
            tracks = tracker.update(detector.detect(frame), stamp)   # confirmed tracks
    """

    def __init__(self, appearance: Optional[AppearanceHook] = None, **config) -> None:
        self.config = TrackerConfig.from_dict(config)
        self._appearance = appearance
        self._next_id = 1
        self.reset()

    # -- configuration ------------------------------------------------------------------------
    def configure(self, **changes) -> None:
        """Change settings in place (tracks are kept); raises ``ValueError`` and changes nothing
        when a value is invalid."""
        merged = dataclasses.asdict(self.config)
        merged.update(changes)
        self.config = TrackerConfig.from_dict(merged)
        self._kf = self._make_filter()

    def set_appearance_hook(self, fn: Optional[AppearanceHook]) -> None:
        """Install (or with ``None`` remove) the appearance hook; see the module docstring."""
        self._appearance = fn

    def _make_filter(self) -> BoxKalman:
        c = self.config
        return BoxKalman(measurement_std=c.measurement_std, accel_std=c.accel_std,
                         size_accel_std=c.size_accel_std, init_velocity_std=c.init_velocity_std,
                         robust_chi2=c.robust_chi2, size_measurement_std=c.size_measurement_std)

    def reset(self, restart_ids: bool = False) -> None:
        """Forget all tracks, the appearance memory and the clock.

        Args:
            restart_ids: also restart ids at ``"1"``. Off by default so that an id is never
                reused for a different face by the same tracker.
        """
        self._kf = self._make_filter()
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._out = np.zeros((0, 4))           # smoothed output boxes (cx, cy, w, h)
        self._meta: List[_Meta] = []
        self._gallery: Dict[str, tuple] = {}   # id -> (embedding, last seen stamp), insertion = age order
        self._stamp: Optional[float] = None
        self._known_missing = False            # some remembered face is absent (appearance on)
        if restart_ids:
            self._next_id = 1

    # -- queries ------------------------------------------------------------------------------
    @property
    def stamp(self) -> Optional[float]:
        """Stamp (seconds) of the latest update, ``None`` before the first."""
        return self._stamp

    @property
    def tracks(self) -> List[Track]:
        """All live tracks (tentative, confirmed, coasting) at the latest stamp."""
        return self._as_tracks(range(len(self._meta)))

    def __len__(self) -> int:
        return len(self._meta)

    def _as_tracks(self, rows) -> List[Track]:
        # One vectorised box conversion for all rows, then plain-float dataclasses.
        rows = list(rows)
        if not rows:
            return []
        now = self._stamp if self._stamp is not None else 0.0
        boxes = z_to_xyxy(self._out[rows]).tolist()
        out = []
        for i, (x1, y1, x2, y2) in zip(rows, boxes):
            m = self._meta[i]
            tsu = now - m.last_update
            fresh = tsu == 0.0
            out.append(Track(track_id=m.track_id, box=BBox(x1, y1, x2, y2), score=m.score if fresh else 0.0,
                             label=m.label, confirmed=m.confirmed, hits=m.hits, time_since_update=tsu,
                             landmarks=m.landmarks if fresh else None))
        return out

    # -- the per-frame step -------------------------------------------------------------------
    def update(self, detections: Sequence[Detection], stamp: float, frame: Optional[np.ndarray] = None,
               embeddings: Optional[np.ndarray] = None) -> List[Track]:
        """Advance to ``stamp`` and fold in one frame's detections.

        Args:
            detections: faces found in the frame (any order; invalid boxes, i.e. non-finite or
                empty, are ignored).
            stamp: capture time of the frame in seconds (monotonic within a stream; irregular
                spacing is fine). A stamp earlier than the previous one by less than
                ``max_age_s`` is treated as the same instant (out-of-order frame); by more, the
                stream is taken to have restarted (e.g. a looped bag) and all tracks are dropped.
            frame: optional image passed through to the appearance hook.
            embeddings: optional ``(len(detections), D)`` appearance embeddings (replaces the hook).

        Returns:
            Confirmed tracks matched in this frame (plus those coasting at most ``report_lost_s``),
            oldest track first.
        """
        cfg = self.config
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"tracker: stamp must be a finite number of seconds, got {stamp!r}")
        dt = 0.0
        if self._stamp is not None:
            dt = stamp - self._stamp
            if dt < -cfg.max_age_s:
                log.warning("tracker: stamp went back %.3f s (stream restarted?); dropping all tracks", -dt)
                self.reset()
                dt = 0.0
            elif dt < 0.0:
                stamp, dt = self._stamp, 0.0
        self._stamp = stamp

        # 1. predict, then drop confirmed tracks too long without a detection.
        self._mean, self._cov = self._kf.predict(self._mean, self._cov, dt)
        self._expire(stamp)

        # Detections as arrays (invalid ones skipped: a broken detector must not break tracking).
        dets, boxes, scores, emb_rows = self._parse(detections, embeddings)
        n_trk, n_det = len(self._meta), len(dets)
        trk_boxes = z_to_xyxy(self._mean[:, :4]) if n_trk else np.zeros((0, 4))
        det_track = np.full(n_det, -1, dtype=int)         # det index -> track row
        trk_det = np.full(n_trk, -1, dtype=int)           # track row -> det index

        # Bridges (boxes on the gap between two faces) are demoted to the low-score tier.
        bridge = _bridges(boxes, scores, scores >= cfg.high_score, cfg.bridge_overlap)
        if n_trk and n_det:
            high = (scores >= cfg.high_score) & ~bridge
            confirmed = np.array([m.confirmed for m in self._meta], dtype=bool)
            recent = np.array([m.matched_prev for m in self._meta], dtype=bool)
            iou = iou_matrix(trk_boxes, boxes)
            # a. tracked faces vs high-score detections.
            self._match(iou, confirmed & recent, high, cfg.iou_threshold, trk_det, det_track)
            # b. coasting faces vs the rest, on buffered IoU.
            lost = confirmed & ~recent
            if lost.any():
                biou = iou
                if cfg.lost_buffer > 0.0:
                    # Only the coasting rows are used by this stage, so only they are recomputed.
                    biou = iou.copy()
                    rows = np.flatnonzero(lost)
                    biou[rows] = iou_matrix(_grow(trk_boxes[rows], cfg.lost_buffer), _grow(boxes, cfg.lost_buffer))
                self._match(biou, lost, high, cfg.iou_threshold, trk_det, det_track)
                # b2. still-unmatched coasting faces: Mahalanobis gate on the Kalman prediction,
                # whose uncertainty has grown while coasting (a face that turned back behind an
                # occluder re-appears far from a constant-velocity guess, but within it).
                rows = np.flatnonzero(lost & (trk_det < 0))
                cols = np.flatnonzero(high & (det_track < 0))
                if cfg.lost_gate > 0.0 and rows.size and cols.size:
                    zc = xyxy_to_z(boxes[cols])
                    # Centre only: a face coming out from behind something shows a small box first.
                    md = self._kf.gating_distance(self._mean[rows], self._cov[rows], zc, dims=2)
                    # ...but never farther than lost_max_dist box heights: after a long coast the
                    # covariance alone would let the track grab someone else in a crowd.
                    pm = self._mean[rows]
                    dist = np.hypot(zc[None, :, 0] - pm[:, None, 0], zc[None, :, 1] - pm[:, None, 1])
                    md[dist > cfg.lost_max_dist * np.maximum(pm[:, 3:4], 1.0)] = 1e9
                    r, c = _assign(cfg.lost_gate - md, 1e-9)
                    trk_det[rows[r]] = cols[c]
                    det_track[cols[c]] = rows[r]
            # c. tracked faces vs low-score detections.
            self._match(iou, confirmed & recent, ~high, cfg.low_iou_threshold, trk_det, det_track)
            # d. tentative tracks vs the remaining high-score detections.
            self._match(iou, ~confirmed, high, cfg.iou_threshold, trk_det, det_track)

        # Coasting tracks keep their size: a face does not shrink while unseen, and the last boxes
        # before a miss are often those of a face half gone behind something.
        if n_trk:
            self._mean[trk_det < 0, 6:8] = 0.0
        # Kalman correction of all matched tracks at once.
        rows = np.flatnonzero(trk_det >= 0)
        if rows.size:
            z = xyxy_to_z(boxes[trk_det[rows]])
            self._mean[rows], self._cov[rows] = self._kf.update(self._mean[rows], self._cov[rows], z)
            for r in rows:
                m, d = self._meta[r], dets[trk_det[r]]
                m.hits += 1
                m.last_update = stamp
                m.score, m.label, m.landmarks = d.score, d.label, d.landmarks
                if m.hits >= cfg.min_hits:
                    m.confirmed = True
        self._smooth(dt)

        # 3. deaths of unmatched tentative tracks, births, then appearance re-identification.
        keep = np.array([m.confirmed or trk_det[i] >= 0 for i, m in enumerate(self._meta)], dtype=bool)
        if not keep.all():
            self._remove(np.flatnonzero(~keep), stamp, archive=False)
            trk_det = trk_det[keep]
        new_score = cfg.high_score if cfg.new_track_score is None else cfg.new_track_score
        births = [j for j in range(n_det) if det_track[j] < 0 and scores[j] >= new_score and not bridge[j]]
        self._birth(dets, boxes, births, stamp)
        self._known_missing = False
        if self._appearance is not None or emb_rows is not None:
            row_det = np.concatenate([trk_det, np.asarray(births, dtype=int)])   # row -> det now
            self._appearance_step(dets, boxes, scores, emb_rows, row_det, stamp, frame)

        for i, m in enumerate(self._meta):
            m.matched_prev = m.last_update == stamp
        return self._report(stamp)

    # -- steps --------------------------------------------------------------------------------
    @staticmethod
    def _match(score: np.ndarray, trk_mask: np.ndarray, det_mask: np.ndarray, threshold: float,
               trk_det: np.ndarray, det_track: np.ndarray) -> None:
        rows = np.flatnonzero(trk_mask & (trk_det < 0))
        cols = np.flatnonzero(det_mask & (det_track < 0))
        if rows.size == 0 or cols.size == 0:
            return
        r, c = _assign(score[np.ix_(rows, cols)], threshold)
        trk_det[rows[r]] = cols[c]
        det_track[cols[c]] = rows[r]

    def _parse(self, detections: Sequence[Detection], embeddings: Optional[np.ndarray]):
        cfg = self.config
        detections = list(detections)
        arr = np.array([(d.box.x1, d.box.y1, d.box.x2, d.box.y2, d.score) for d in detections],
                       dtype=np.float64).reshape(-1, 5)
        with np.errstate(invalid="ignore"):
            ok = (np.isfinite(arr).all(axis=1) & (arr[:, 4] >= cfg.low_score)
                  & (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1]))
        if not ok.all() and log.isEnabledFor(logging.DEBUG):
            log.debug("tracker: ignoring %d detection(s) below low_score or with invalid boxes", int((~ok).sum()))
        rows = np.flatnonzero(ok)
        dets: List[Detection] = [detections[k] for k in rows]
        boxes, scores = arr[rows, :4], arr[rows, 4]
        emb = None
        if embeddings is not None:
            e = np.asarray(embeddings, dtype=np.float64)
            if e.ndim != 2 or e.shape[0] != len(detections):
                raise ValueError(f"tracker: embeddings must be (len(detections)={len(detections)}, D), got {e.shape}")
            emb = _normalise(e[rows]) if rows.size else np.zeros((0, e.shape[1]))
        return dets, boxes, scores, emb

    def _expire(self, stamp: float) -> None:
        if not self._meta:
            return
        age = np.array([stamp - m.last_update for m in self._meta])
        old = np.flatnonzero(age > self.config.max_age_s)
        if old.size:
            self._remove(old, stamp, archive=True)

    def _remove(self, rows: np.ndarray, stamp: float, archive: bool) -> None:
        drop = set(int(r) for r in rows)
        if archive and self.config.max_gallery > 0:
            for r in sorted(drop):
                m = self._meta[r]
                if m.confirmed and m.embedding is not None:
                    self._gallery.pop(m.track_id, None)
                    self._gallery[m.track_id] = (m.embedding, m.last_update)
            while len(self._gallery) > self.config.max_gallery:
                self._gallery.pop(next(iter(self._gallery)))
        keep = np.array([i not in drop for i in range(len(self._meta))], dtype=bool)
        self._mean, self._cov, self._out = self._mean[keep], self._cov[keep], self._out[keep]
        self._meta = [m for i, m in enumerate(self._meta) if keep[i]]

    def _birth(self, dets: List[Detection], boxes: np.ndarray, births: List[int], stamp: float) -> None:
        if not births:
            return
        self._append_rows(*self._kf.initiate(xyxy_to_z(boxes[births])))
        for j in births:
            m = _Meta(str(self._next_id), stamp, dets[j])
            self._next_id += 1
            m.confirmed = self.config.min_hits <= 1
            self._meta.append(m)

    def _append_rows(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._out = np.concatenate([self._out, mean[:, :4]])

    def _smooth(self, dt: float) -> None:
        """Output smoothing: a One-Euro filter on the Kalman boxes whose cut-off frequency rises
        with the (Kalman) speed, so a still face is steady and a moving one does not lag."""
        cfg = self.config
        if cfg.smooth_min_cutoff_hz <= 0.0:
            self._out = self._mean[:, :4].copy()
            return
        if dt <= 0.0 or not len(self._out):
            return
        h = np.maximum(self._mean[:, 3:4], 1.0)
        cutoff = cfg.smooth_min_cutoff_hz + cfg.smooth_beta * np.abs(self._mean[:, 4:]) / h   # Hz
        alpha = 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))
        self._out += alpha * (self._mean[:, :4] - self._out)

    def _report(self, stamp: float) -> List[Track]:
        lim = self.config.report_lost_s
        hold = self.config.appearance_hold_s if self._known_missing else 0.0
        return self._as_tracks(
            i for i, m in enumerate(self._meta)
            if m.confirmed and stamp - m.last_update <= lim
            # a new face that may turn out to be a missing one waits for its appearance check
            and not (hold > 0.0 and m.fresh_id and m.embedding is None and stamp - m.born < hold))

    # -- appearance ---------------------------------------------------------------------------
    def _appearance_step(self, dets, boxes, scores, emb_rows, row_det: np.ndarray, stamp: float, frame) -> None:
        """Refresh track embeddings; give a young track the id of the face it turns out to be.

        A track born in the last ``appearance_window_s`` seconds is compared, on its *first good*
        embedding, with the coasting tracks and the remembered removed ones; on a match it takes
        that id (and is confirmed at once). Waiting for a good view instead of deciding at birth
        matters: a face walking in is cut by the border, and a cut face embeds poorly.

        Args:
            row_det: for each track row, the index of its detection in this frame or -1.
        """
        cfg = self.config
        if self._gallery:  # forget what is too old to trust
            for tid in [t for t, (_, seen) in self._gallery.items() if stamp - seen > cfg.appearance_memory_s]:
                del self._gallery[tid]
        known = bool(self._gallery) or any(m.confirmed and m.embedding is not None and row_det[i] < 0
                                           for i, m in enumerate(self._meta))
        self._known_missing = known
        if not len(dets):
            return
        # A "good" view: a high-score detection that overlaps no other high-score detection and is
        # not cut by the image border. (Weak boxes are left out on both sides: a detector run at a
        # low threshold for ByteTrack scatters them over faces and background alike.)
        strong = scores >= cfg.high_score
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
        young, due = [], []
        for i, m in enumerate(self._meta):
            j = row_det[i]
            if j < 0 or not good[j]:
                continue
            if known and m.fresh_id and m.embedding is None and stamp - m.born <= cfg.appearance_window_s:
                young.append(i)
            elif m.confirmed and stamp - m.emb_stamp >= cfg.appearance_interval_s:
                due.append(i)
        rows = young + due
        if not rows:
            return
        emb = self._embed(dets, [int(row_det[i]) for i in rows], emb_rows, frame)
        if emb is None:
            return
        valid = np.isfinite(emb).all(axis=1) & (np.abs(emb).sum(axis=1) > 0)
        mom = cfg.appearance_momentum
        for k, i in enumerate(rows):
            if valid[k]:
                m = self._meta[i]
                m.embedding = emb[k] if m.embedding is None else _normalise(mom * m.embedding + (1 - mom) * emb[k])
                m.emb_stamp = stamp
        cand = [i for k, i in enumerate(young) if valid[k]]
        if not cand:
            return
        for i in cand:
            self._meta[i].fresh_id = False          # one chance: judged on its first good view
        lost = [i for i, m in enumerate(self._meta)
                if m.confirmed and m.embedding is not None and row_det[i] < 0 and i not in cand]
        gal = list(self._gallery)
        if not lost and not gal:
            return
        bank = np.stack([self._meta[i].embedding for i in lost] + [self._gallery[t][0] for t in gal])
        sim = np.stack([self._meta[i].embedding for i in cand]) @ bank.T
        r, c = _assign(sim, cfg.appearance_threshold)
        drop = []
        for ri, ci in zip(r, c):
            m = self._meta[cand[ri]]
            if ci < len(lost):        # a coasting track re-found away from its prediction
                old = self._meta[lost[ci]]
                old_id, old_emb, old_hits = old.track_id, old.embedding, old.hits
                drop.append(lost[ci])
            else:                     # a removed track is back
                old_id = gal[ci - len(lost)]
                old_emb, _ = self._gallery.pop(old_id)
                old_hits = 0
            log.debug("tracker: new track %s is %s again (appearance, cos %.2f)", m.track_id, old_id, sim[ri, ci])
            m.track_id, m.confirmed, m.hits = old_id, True, m.hits + old_hits
            m.embedding = _normalise(mom * old_emb + (1 - mom) * m.embedding)
        if drop:
            self._remove(np.asarray(drop), stamp, archive=False)

    def _embed(self, dets, need: List[int], emb_rows, frame) -> Optional[np.ndarray]:
        if emb_rows is not None:
            return emb_rows[need]
        try:
            out = self._appearance(frame, [dets[j] for j in need])
        except Exception as exc:  # a failing recogniser must not stop tracking
            log.warning("tracker: appearance hook failed (%s: %s); continuing without it", type(exc).__name__, exc)
            return None
        if out is None:
            return None
        out = np.asarray(out, dtype=np.float64)
        if out.ndim != 2 or out.shape[0] != len(need):
            log.warning("tracker: appearance hook returned shape %s for %d detections; ignored", out.shape, len(need))
            return None
        return _normalise(out)


def embedder_hook(embedder) -> AppearanceHook:
    """Appearance hook from a face embedder with ``embed(bgr, boxes) -> (N, D)`` (e.g. the
    recognition embedders of :mod:`face_tracker_core.recognition`).

    The hook needs the frame, so pass it: ``tracker.update(dets, stamp, frame=bgr)``; without a
    frame it returns ``None`` (appearance skipped for that update).
    """

    def hook(frame, detections):
        if frame is None or not len(detections):
            return None
        return embedder.embed(frame, [d.box for d in detections])

    return hook


def _normalise(e: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero/NaN rows stay zero/NaN)."""
    e = np.asarray(e, dtype=np.float64)
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    return e / np.where(n > 0, n, 1.0)
