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
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..boxes import iou_matrix
from ..types import BBox, Detection, Track
from .appearance import AppearanceReid, embedder_hook, normalise
from .association import associate, bridges
from .kalman import BoxKalman, xyxy_to_z, z_to_xyxy
from .tracker_config import AppearanceHook, TrackerConfig

__all__ = ["Tracker", "TrackerConfig", "AppearanceHook", "embedder_hook", "iou_matrix"]

log = logging.getLogger(__name__)


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


class Tracker(AppearanceReid):
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
        stamp, dt = self._advance(stamp)
        # 1. predict, then drop confirmed tracks too long without a detection.
        self._mean, self._cov = self._kf.predict(self._mean, self._cov, dt)
        self._expire(stamp)

        # Detections as arrays (invalid ones skipped: a broken detector must not break tracking).
        dets, boxes, scores, emb_rows = self._parse(detections, embeddings)
        # 2. association. Bridges (boxes on the gap between two faces) are demoted to the low-score tier.
        bridge = bridges(boxes, scores, scores >= cfg.high_score, cfg.bridge_overlap)
        confirmed = np.array([m.confirmed for m in self._meta], dtype=bool)
        recent = np.array([m.matched_prev for m in self._meta], dtype=bool)
        trk_det, det_track = associate(self._kf, self._mean, self._cov, confirmed, recent, boxes,
                                       (scores >= cfg.high_score) & ~bridge, cfg)
        self._correct(trk_det, dets, boxes, stamp)
        self._smooth(dt)

        # 3. deaths of unmatched tentative tracks, births, then appearance re-identification.
        keep = np.array([m.confirmed or trk_det[i] >= 0 for i, m in enumerate(self._meta)], dtype=bool)
        if not keep.all():
            self._remove(np.flatnonzero(~keep), stamp, archive=False)
            trk_det = trk_det[keep]
        new_score = cfg.high_score if cfg.new_track_score is None else cfg.new_track_score
        births = [j for j in range(len(dets)) if det_track[j] < 0 and scores[j] >= new_score and not bridge[j]]
        self._birth(dets, boxes, births, stamp)
        self._known_missing = False
        if self._appearance is not None or emb_rows is not None:
            row_det = np.concatenate([trk_det, np.asarray(births, dtype=int)])   # row -> det now
            self._appearance_step(dets, boxes, scores, emb_rows, row_det, stamp, frame)

        for m in self._meta:
            m.matched_prev = m.last_update == stamp
        return self._report(stamp)

    # -- steps --------------------------------------------------------------------------------
    def _advance(self, stamp: float):
        """Check ``stamp`` and move the clock to it.

        Returns:
            ``(stamp, dt)``: the stamp used (an out-of-order one becomes the previous stamp) and the
            seconds since the previous update (0 for the first update or after a restart).

        Raises:
            ValueError: a non-finite stamp.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"tracker: stamp must be a finite number of seconds, got {stamp!r}")
        dt = 0.0
        if self._stamp is not None:
            dt = stamp - self._stamp
            if dt < -self.config.max_age_s:
                log.warning("tracker: stamp went back %.3f s (stream restarted?); dropping all tracks", -dt)
                self.reset()
                dt = 0.0
            elif dt < 0.0:
                stamp, dt = self._stamp, 0.0
        self._stamp = stamp
        return stamp, dt

    def _correct(self, trk_det: np.ndarray, dets: List[Detection], boxes: np.ndarray, stamp: float) -> None:
        """Kalman correction of the matched tracks (``trk_det[row] >= 0``) and their book-keeping."""
        # Coasting tracks keep their size: a face does not shrink while unseen, and the last boxes
        # before a miss are often those of a face half gone behind something.
        if len(trk_det):
            self._mean[trk_det < 0, 6:8] = 0.0
        rows = np.flatnonzero(trk_det >= 0)
        if not rows.size:
            return
        z = xyxy_to_z(boxes[trk_det[rows]])
        self._mean[rows], self._cov[rows] = self._kf.update(self._mean[rows], self._cov[rows], z)
        for r in rows:
            m, d = self._meta[r], dets[trk_det[r]]
            m.hits += 1
            m.last_update = stamp
            m.score, m.label, m.landmarks = d.score, d.label, d.landmarks
            if m.hits >= self.config.min_hits:
                m.confirmed = True

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
            emb = normalise(e[rows]) if rows.size else np.zeros((0, e.shape[1]))
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
