"""Appearance re-identification of the tracker: embeddings per track, a memory of removed faces.

The rules are described in :mod:`face_tracker_core.infer.tracker` ("Appearance
re-identification"); :class:`AppearanceReid` holds their implementation and is mixed into
:class:`~face_tracker_core.infer.tracker.Tracker`, whose state it works on.
"""

from __future__ import annotations

import logging
from typing import List, Optional

import numpy as np

from ..vectors import l2_normalize
from .association import assign, good_views
from .tracker_config import AppearanceHook

log = logging.getLogger("face_tracker_core.infer.tracker")

__all__ = ["AppearanceReid", "embedder_hook", "normalise"]


def normalise(e: np.ndarray) -> np.ndarray:
    """L2-normalise rows in ``float64`` (zero/NaN rows stay zero/NaN)."""
    return l2_normalize(e, dtype=np.float64)


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


class AppearanceReid:
    """Appearance part of the tracker (a mixin).

    Works on the tracker's ``config``, ``_meta`` (per-track book-keeping with ``embedding``,
    ``emb_stamp``, ``fresh_id``...), ``_gallery`` (``id -> (embedding, last seen stamp)`` of removed
    tracks), ``_appearance`` (the hook), ``_known_missing`` and ``_remove``.
    """

    def _appearance_step(self, dets, boxes, scores, emb_rows, row_det: np.ndarray, stamp: float, frame) -> None:
        """Refresh track embeddings; give a young track the id of the face it turns out to be.

        A track born in the last ``appearance_window_s`` seconds is compared, on its *first good*
        embedding, with the coasting tracks and the remembered removed ones; on a match it takes
        that id (and is confirmed at once). Waiting for a good view instead of deciding at birth
        matters: a face walking in is cut by the border, and a cut face embeds poorly.

        Args:
            dets: this frame's valid detections; ``boxes`` ``(N, 4)`` and ``scores`` ``(N,)`` theirs.
            emb_rows: ``(N, D)`` normalised embeddings given by the caller, or ``None`` (use the hook).
            row_det: for each track row, the index of its detection in this frame or -1.
            stamp: the frame's stamp, seconds.
            frame: the image (for the hook and the border check), or ``None``.
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
        good = good_views(boxes, scores, cfg.high_score, frame)
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
                m.embedding = emb[k] if m.embedding is None else normalise(mom * m.embedding + (1 - mom) * emb[k])
                m.emb_stamp = stamp
        cand = [i for k, i in enumerate(young) if valid[k]]
        if cand:
            self._reidentify(cand, row_det, stamp)

    def _reidentify(self, cand: List[int], row_det: np.ndarray, stamp: float) -> None:
        """Young tracks ``cand`` (just embedded on a good view) against the coasting tracks and the
        remembered ones; a match above ``appearance_threshold`` takes the old id."""
        cfg = self.config
        mom = cfg.appearance_momentum
        for i in cand:
            self._meta[i].fresh_id = False          # one chance: judged on its first good view
        lost = [i for i, m in enumerate(self._meta)
                if m.confirmed and m.embedding is not None and row_det[i] < 0 and i not in cand]
        gal = list(self._gallery)
        if not lost and not gal:
            return
        bank = np.stack([self._meta[i].embedding for i in lost] + [self._gallery[t][0] for t in gal])
        sim = np.stack([self._meta[i].embedding for i in cand]) @ bank.T
        r, c = assign(sim, cfg.appearance_threshold)
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
            m.embedding = normalise(mom * old_emb + (1 - mom) * m.embedding)
        if drop:
            self._remove(np.asarray(drop), stamp, archive=False)

    def _embed(self, dets, need: List[int], emb_rows, frame) -> Optional[np.ndarray]:
        """Normalised embeddings of detections ``need``: from ``emb_rows``, else from the hook
        (``None`` when the hook fails, declines or returns a wrong shape)."""
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
        return normalise(out)
