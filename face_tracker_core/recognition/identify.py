"""Open-set identification: nearest enrolled person within a threshold, else ``"unknown"``.

:class:`Identifier` compares vectors with a :class:`~.gallery.Gallery`; :class:`TrackIdentifier`
runs it per tracked face the way a robot needs it: once when a track is confirmed, then only
every ``refresh_s`` seconds (recognition costs far more than detection), averaging the vectors
seen so far for that track (steadier than any single frame), caching the answer under the track
id and forgetting tracks that died.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..types import Track
from .embedders import Embedder, l2_normalize

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


class Identifier:
    """Gallery matcher.

    Args:
        embedder: the :class:`~.embedders.Embedder` whose vectors the gallery holds (its
            ``model_id`` must match the gallery's).
        gallery: an open :class:`~.gallery.Gallery`.
        threshold: same-person score in [0, 1]; ``None``: the gallery's calibrated threshold,
            else the embedder's default.
        match: ``"centroid"`` (score against each person's mean vector: robust to one odd
            enrolment photo) or ``"max"`` (best single vector).

    Raises:
        GalleryModelError: the gallery holds another model's vectors.
    """

    def __init__(self, embedder: Embedder, gallery, threshold: Optional[float] = None,
                 match: str = "centroid") -> None:
        if match not in ("centroid", "max"):
            raise ValueError("match must be 'centroid' or 'max'")
        self.embedder = embedder
        self.gallery = gallery
        self.match = match
        self._explicit_threshold = threshold
        if not gallery.readonly:
            gallery.bind_model(embedder.model_id, embedder.dim)  # tags a new gallery, refuses a mismatch
        elif gallery.model_id not in (None, embedder.model_id):
            from .gallery import GalleryModelError

            raise GalleryModelError(f"{gallery.path}: gallery holds model '{gallery.model_id}', "
                                    f"embedder is '{embedder.model_id}'")
        self.reload()

    @property
    def threshold(self) -> float:
        if self._explicit_threshold is not None:
            return float(self._explicit_threshold)
        t = self.gallery.threshold
        return float(t) if t is not None else float(self.embedder.default_threshold)

    def reload(self) -> None:
        """Re-read the gallery's people and vectors."""
        names, vecs = self.gallery.vectors()
        self._revision = self.gallery.revision
        self.names: List[str] = sorted(set(names))
        idx = {n: i for i, n in enumerate(self.names)}
        self._row_person = np.array([idx[n] for n in names], np.int64)
        self._vecs = l2_normalize(vecs) if len(vecs) else np.zeros((0, self.embedder.dim), np.float32)
        if self.names:
            cents = np.stack([self._vecs[self._row_person == i].mean(0) for i in range(len(self.names))])
            self._centroids = l2_normalize(cents)
        else:
            self._centroids = np.zeros((0, self.embedder.dim), np.float32)
        log.debug("identifier: %d people, %d vectors, threshold %.3f", len(self.names), len(self._vecs),
                  self.threshold)

    def reload_if_changed(self) -> bool:
        """Reload when the gallery was edited (e.g. by the CLI while a node runs)."""
        if self.gallery.revision != self._revision:
            self.reload()
            return True
        return False

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """``(N, P)`` scores in [0, 1] of each vector against each enrolled person."""
        e = l2_normalize(np.atleast_2d(np.asarray(embeddings, np.float32)))
        if not self.names:
            return np.zeros((len(e), 0), np.float32)
        if self.match == "centroid":
            return np.clip((1.0 + e @ self._centroids.T) / 2.0, 0.0, 1.0)
        s = np.clip((1.0 + e @ self._vecs.T) / 2.0, 0.0, 1.0)
        out = np.full((len(e), len(self.names)), 0.0, np.float32)
        for i in range(len(self.names)):
            out[:, i] = s[:, self._row_person == i].max(axis=1)
        return out

    def identify(self, embeddings: np.ndarray) -> List[Tuple[str, float]]:
        """Name each vector.

        Args:
            embeddings: ``(N, D)`` vectors from the same embedder.

        Returns:
            ``[(name or "unknown", score)]``: the best person's score in [0, 1] (for ``unknown``,
            the best score found, below the threshold; 0 with an empty gallery).
        """
        s = self.scores(embeddings)
        out: List[Tuple[str, float]] = []
        t = self.threshold
        for row in s:
            if row.size == 0:
                out.append((UNKNOWN, 0.0))
                continue
            j = int(np.argmax(row))
            out.append((self.names[j], float(row[j])) if row[j] >= t else (UNKNOWN, float(row[j])))
        return out

    def identify_faces(self, bgr: np.ndarray, boxes) -> List[Tuple[str, float]]:
        """Embed the faces in ``boxes`` of frame ``bgr`` and name them."""
        return self.identify(self.embedder.embed(bgr, boxes))


@dataclass
class _TrackState:
    last: float
    name: str = UNKNOWN
    score: float = 0.0
    history: List[np.ndarray] = field(default_factory=list)


class TrackIdentifier:
    """Per-track identification with caching.

    Args:
        identifier: the :class:`Identifier`.
        refresh_s: seconds between re-identifications of a track (first one as soon as it is
            confirmed).
        min_face_px: skip faces smaller than this (pixels, shorter box side): too few pixels to
            recognise anyone, they would only pollute the track's average.
        max_samples: the track's vector is the mean of its last ``max_samples`` vectors.
        check_gallery_s: how often to look for gallery edits (0 = never).
        worker: a :class:`~.worker.ProcessEmbedder` (normally the identifier's own embedder) to
            embed asynchronously: the faces that are due are sent to it and :meth:`update`
            returns at once; their names appear on a later frame, when the vectors are back.
            One request is in flight at a time, so a slow embedder makes refreshes rarer
            instead of frames later. ``None``: embed inline (the frame waits).
    """

    def __init__(self, identifier: Identifier, refresh_s: float = 2.0, min_face_px: float = 24.0,
                 max_samples: int = 8, check_gallery_s: float = 2.0, worker=None) -> None:
        self.identifier = identifier
        self.worker = worker
        self._inflight: Optional[Tuple[int, List[str], float]] = None  # (job, track ids, time)
        self._pause_until = float("-inf")  # after a worker failure: no requests until then
        self.worker_errors = 0
        self.refresh_s = float(refresh_s)
        self.min_face_px = float(min_face_px)
        self.max_samples = int(max_samples)
        self.check_gallery_s = float(check_gallery_s)
        self._tracks: Dict[str, _TrackState] = {}
        self._last_check = 0.0
        self.embed_calls = 0  # faces embedded so far (for diagnostics/tests)

    def due(self, track: Track, now: float) -> bool:
        """Whether ``track`` should be (re)identified on this frame."""
        if not track.confirmed or track.time_since_update > 0:
            return False  # unconfirmed, or coasting on a prediction: no fresh face crop
        if min(track.box.width, track.box.height) < self.min_face_px:
            return False
        st = self._tracks.get(track.track_id)
        return st is None or now - st.last >= self.refresh_s

    def update(self, bgr: np.ndarray, tracks: Sequence[Track], now: Optional[float] = None) -> List[Track]:
        """Identify the tracks that are due, forget dead ones, return tracks with identities.

        Args:
            bgr: the frame the tracks' boxes refer to.
            tracks: every live track of this frame (a missing id means that track died).
            now: time in seconds (``time.monotonic()`` by default; pass the frame stamp).

        Returns:
            ``tracks`` with ``identity``/``identity_score`` filled from the cache (``identity``
            stays ``None`` for tracks never identified yet).
        """
        now = time.monotonic() if now is None else float(now)
        alive = {t.track_id for t in tracks}
        for tid in list(self._tracks):
            if tid not in alive:
                del self._tracks[tid]
        if self.check_gallery_s > 0 and now - self._last_check >= self.check_gallery_s:
            self._last_check = now
            if self.identifier.reload_if_changed():
                for st in self._tracks.values():  # names may have changed: re-match cached vectors
                    st.name, st.score = self.identifier.identify(self._mean(st)[None])[0]
        if self.worker is not None:
            self._collect(alive, now)
            if self._inflight is None and now >= self._pause_until:
                due = [t for t in tracks if self.due(t, now)]
                if due:
                    try:
                        job = self.worker.submit(bgr, [t.box for t in due])
                    except Exception as exc:  # worker down: frames go on, identification pauses
                        self._worker_failed(exc, now)
                    else:
                        self._inflight = (job, [t.track_id for t in due], now)
                        self.embed_calls += len(due)
        else:
            due = [t for t in tracks if self.due(t, now)]
            if due:
                vecs = self.identifier.embedder.embed(bgr, [t.box for t in due])
                self.embed_calls += len(due)
                for t, v in zip(due, vecs):
                    self._add(t.track_id, v, now)
        out = []
        for t in tracks:
            st = self._tracks.get(t.track_id)
            out.append(dataclasses.replace(t, identity=st.name, identity_score=st.score) if st else t)
        return out

    def _add(self, track_id: str, vec: np.ndarray, when: float) -> None:
        """One more vector of a track (taken at time ``when``): re-name it from its mean."""
        st = self._tracks.get(track_id)
        if st is None:
            st = self._tracks[track_id] = _TrackState(when)
        st.history.append(vec)
        st.history = st.history[-self.max_samples:]
        st.last = when
        st.name, st.score = self.identifier.identify(self._mean(st)[None])[0]

    def _collect(self, alive, now: float) -> None:
        """Apply the worker's answer, if it came (tracks that died meanwhile are skipped)."""
        if self._inflight is None:
            return
        job, ids, sent = self._inflight
        for got, out in self.worker.poll():
            if got != job:
                continue  # an answer to a request of another user of the worker (e.g. enrolment)
            self._inflight = None
            if isinstance(out, Exception):
                self._worker_failed(out, now)
            else:
                for tid, v in zip(ids, out):
                    if tid in alive:
                        self._add(tid, v, sent)

    def _worker_failed(self, exc: Exception, now: float) -> None:
        self.worker_errors += 1
        self._pause_until = now + self.refresh_s
        if self.worker_errors == 1 or self.worker_errors % 100 == 0:
            log.warning("identification paused for %.1f s: %s (%d worker errors so far)", self.refresh_s,
                        exc, self.worker_errors)

    @staticmethod
    def _mean(st: _TrackState) -> np.ndarray:
        return l2_normalize(np.mean(st.history, axis=0)[None])[0]

    def identity(self, track_id: str) -> Optional[Tuple[str, float]]:
        """Cached ``(name, score)`` of a track, or ``None``."""
        st = self._tracks.get(track_id)
        return (st.name, st.score) if st else None

    def embedding(self, track_id: str) -> Optional[np.ndarray]:
        """The track's mean vector (e.g. for the tracker's appearance hook), or ``None``."""
        st = self._tracks.get(track_id)
        return self._mean(st) if st else None

    def forget(self, track_id: str) -> None:
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        self._tracks.clear()
        self._inflight = None
