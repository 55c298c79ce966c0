"""Per-frame face pipeline: detect -> track -> (identify, attributes) -> draw.

One object shared by the tracker node, the demo and offline tools, so that every entry point
behaves the same; :func:`face_tracker_core.pipeline_build.build_pipeline` assembles it from a
:class:`~face_tracker_core.pipeline_config.PipelineConfig`. Framework-free: frames are BGR
arrays, stamps are seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .draw import draw
from .infer.base import FaceDetector, make_detector
from .pipeline_config import DetectorConfig, PipelineConfig, TrackingConfig
from .types import Detection, Track

log = logging.getLogger(__name__)


@dataclass
class FrameResult:
    """What the pipeline made of one frame.

    Attributes:
        items: confirmed tracks (tracking on) or raw detections (tracking off), pixels.
        detections: the detector's raw output for the frame.
        annotated: the frame with boxes drawn (``None`` when not requested).
        timings_ms: ``{"detect": ..., "track": ..., "identify": ..., "total": ...}`` milliseconds.
    """

    items: List[Union[Track, Detection]]
    detections: List[Detection]
    annotated: Optional[np.ndarray] = None
    timings_ms: Dict[str, float] = field(default_factory=dict)


class FacePipeline:
    """Detector + tracker (+ optional recognition and attributes) with hot-swappable detector.

    Args:
        detector: a ready detector, or ``None`` to build one from ``backend``/``detector_kwargs``.
        backend: detector backend for :func:`~face_tracker_core.infer.make_detector`.
        detector_kwargs: options of that backend (``model_path``, ``score_threshold``...).
        tracking: follow faces with the tracker (stable ids) instead of reporting raw detections.
        tracker_kwargs: options of :class:`~face_tracker_core.infer.tracker.Tracker`.
        min_score: drop detections below this score before tracking.
    """

    def __init__(self, detector: Optional[FaceDetector] = None, backend: str = "default",
                 detector_kwargs: Optional[Dict[str, Any]] = None, tracking: bool = True,
                 tracker_kwargs: Optional[Dict[str, Any]] = None, min_score: float = 0.0) -> None:
        self._lock = threading.Lock()
        self.detector = detector or make_detector(backend, **(detector_kwargs or {}))
        self.min_score = float(min_score)
        self.tracker = None
        if tracking:
            self.tracker = _make_tracker(tracker_kwargs or {})
        # Per-track stages after tracking, in order: name -> fn(bgr, tracks, stamp) -> tracks
        # (recognition: TrackIdentifier.update; attributes: PerTrackCache.annotate).
        self.stages: Dict[str, Callable[[np.ndarray, List[Track], float], List[Track]]] = {}
        self.observers: List[Callable[[np.ndarray, List[Track], float], None]] = []
        # Set by face_tracker_core.pipeline_build.build_pipeline: the config, the threshold in
        # force, the recognition / enrolment / attribute parts and what a new tracker gets.
        self.config = PipelineConfig()
        self.score = float(min_score)
        self.recognition = None
        self.enrolment = None
        self.attributes: Optional["PerTrackCache"] = None
        self.on_new_tracker: Optional[Callable[[Any], None]] = None
        self._parked_tracker = None  # the tracker while tracking is off (its ids are never reused)

    def swap_detector(self, detector: FaceDetector, detector_config: Optional[DetectorConfig] = None) -> FaceDetector:
        """Replace the detector atomically between frames; returns the old one.

        ``detector_config``: the ``detector`` section it was loaded from (kept in :attr:`config`).
        """
        with self._lock:
            old, self.detector = self.detector, detector
        if detector_config is not None:
            self.config = replace(self.config, detector=detector_config)
        return old

    def set_threshold(self, score: float) -> None:
        """Make ``score`` the operating threshold (detection floor, tracker score tiers)."""
        self.score = float(score)
        tracking = self.config.tracking
        self.min_score = tracking.score_floor(self.score)
        if self.tracker is not None:
            self.tracker.configure(high_score=self.score, low_score=min(tracking.low_score, self.score))

    def reconfigure_tracking(self, tracking: TrackingConfig) -> None:
        """Follow ``tracking.enabled/min_hits/max_age_s`` (call between frames, on the frame thread).

        ``min_hits``/``max_age_s`` keep the current tracks; disabling parks the tracker, enabling
        restores it emptied, so a track id is never given to a second face.
        """
        self.config = replace(self.config, tracking=tracking)
        self.min_score = tracking.score_floor(self.score)
        if not tracking.enabled:
            if self.tracker is not None:
                self._parked_tracker, self.tracker = self.tracker, None
            return
        if self.tracker is None:
            if self._parked_tracker is not None:
                self._parked_tracker.reset()
                self.tracker, self._parked_tracker = self._parked_tracker, None
            else:
                from .infer.tracker import Tracker

                self.tracker = Tracker(**tracking.tracker_kwargs(self.score))
                if self.on_new_tracker is not None:
                    self.on_new_tracker(self.tracker)
        self.tracker.configure(min_hits=int(tracking.min_hits), max_age_s=float(tracking.max_age_s))

    def health(self) -> Tuple[Dict[str, str], Optional[str]]:
        """``(key/values, problem)`` of the parts that run beside the frames (the embedder process):
        values to report and, when one is down, a short text saying so (else ``None``)."""
        if self.recognition is None:
            return {}, None
        return self.recognition.health()

    def close(self) -> None:
        """Stop what runs beside the frames (the embedder process)."""
        if self.recognition is not None:
            self.recognition.close()

    def process(self, bgr: np.ndarray, stamp: Optional[float] = None, annotate: bool = True) -> FrameResult:
        """Run the pipeline on one frame.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` BGR frame.
            stamp: capture time in seconds (drives the tracker's time-based logic); defaults to now.
            annotate: also return an annotated copy of the frame.
        """
        stamp = time.monotonic() if stamp is None else float(stamp)
        t0 = time.perf_counter()
        with self._lock:
            detector = self.detector
        dets = [d for d in detector.detect(bgr) if d.score >= self.min_score]
        t1 = time.perf_counter()
        items: List[Union[Track, Detection]]
        if self.tracker is not None:
            items = list(self.tracker.update(dets, stamp, frame=bgr))
        else:
            items = list(dets)
        t2 = time.perf_counter()
        if self.tracker is not None:
            for stage in list(self.stages.values()):
                items = list(stage(bgr, items, stamp))
            for obs in list(self.observers):
                obs(bgr, items, stamp)
        t3 = time.perf_counter()
        annotated = draw(bgr, items) if annotate else None
        t4 = time.perf_counter()
        return FrameResult(items, dets, annotated, {
            "detect": (t1 - t0) * 1e3, "track": (t2 - t1) * 1e3, "identify": (t3 - t2) * 1e3,
            "draw": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3})


def _make_tracker(kwargs: Dict[str, Any]):
    try:
        from .infer.tracker import Tracker
    except ImportError:
        log.warning("tracker unavailable: reporting per-frame detections without track ids")
        return None
    return Tracker(**kwargs)


def summarize(items: Sequence[Union[Track, Detection]]) -> str:
    """One short line describing the faces of a frame (for console summaries)."""
    parts = []
    for it in items:
        tag = f"#{it.track_id}" if isinstance(it, Track) else "face"
        parts.append(f"{tag}({it.box.x1:.0f},{it.box.y1:.0f},{it.box.width:.0f}x{it.box.height:.0f} {it.score:.2f})")
    return " ".join(parts) or "no face"


class PerTrackCache:
    """Runs an expensive per-face model once per confirmed track, then only every ``refresh_s``.

    Recognition and attributes need not run on every frame: a face's identity or attributes do
    not change between frames. The first result arrives on the frame a track is confirmed; tracks
    that disappear are forgotten.

    Args:
        compute: ``compute(bgr, boxes) -> list`` with one value per box (pixels of ``bgr``).
        apply: ``apply(track, value) -> Track`` returning the track with the value attached.
        refresh_s: seconds between re-computations for one track (stamps of the frames).
        max_per_frame: most faces computed in one frame (others wait for the next frames), so a
            crowd never stalls the pipeline.
    """

    def __init__(self, compute: Callable[[np.ndarray, List], List[Any]],
                 apply: Callable[[Track, Any], Track], refresh_s: float = 2.0, max_per_frame: int = 4) -> None:
        self.compute, self.apply = compute, apply
        self.refresh_s, self.max_per_frame = float(refresh_s), int(max_per_frame)
        self._cache: Dict[str, Tuple[float, Any]] = {}

    def annotate(self, bgr: np.ndarray, tracks: Sequence[Track], stamp: float) -> List[Track]:
        live = {t.track_id for t in tracks}
        for tid in [k for k in self._cache if k not in live]:
            del self._cache[tid]
        due = [t for t in tracks if t.confirmed and t.time_since_update == 0.0 and
               (t.track_id not in self._cache or stamp - self._cache[t.track_id][0] >= self.refresh_s)]
        # never computed first, then the stalest
        due.sort(key=lambda t: self._cache.get(t.track_id, (-1e18, None))[0])
        due = due[: self.max_per_frame]
        if due:
            values = self.compute(bgr, [t.box for t in due])
            for t, v in zip(due, values):
                self._cache[t.track_id] = (stamp, v)
        return [self.apply(t, self._cache[t.track_id][1]) if t.track_id in self._cache else t for t in tracks]

    def forget(self, track_id: Optional[str] = None) -> None:
        """Drop cached results (all, or one track's) so they are computed again."""
        if track_id is None:
            self._cache.clear()
        else:
            self._cache.pop(track_id, None)


def with_attributes(track: Track, attributes: Sequence[Tuple[str, float]]) -> Track:
    """``apply`` function for :class:`PerTrackCache` computing attributes."""
    return replace(track, attributes=tuple(attributes))


def with_identity(track: Track, identity: Tuple[str, float]) -> Track:
    """``apply`` function for :class:`PerTrackCache` computing ``(name, score)`` identities."""
    return replace(track, identity=identity[0], identity_score=float(identity[1]))
