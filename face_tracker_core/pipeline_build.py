"""Assembly of the whole perception pipeline from a :class:`~face_tracker_core.pipeline_config.PipelineConfig`.

:func:`build_pipeline` is the one place that turns a config into a running
:class:`~face_tracker_core.pipeline.FacePipeline`: detector (with its calibrated threshold),
tracker, appearance re-identification, recognition (embedder -> gallery -> identifier -> per-track
worker), attributes and the live enrolment state machine. The tracker node, the demo and the
benchmarks all call it, so they run the same stack. Framework-free.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from typing import Any, Dict, Optional, Tuple

from .pipeline import FacePipeline, PerTrackCache, with_attributes
from .pipeline_config import PipelineConfig, load_detector

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class Recognition:
    """The recognition part of a pipeline.

    Attributes:
        embedder: the face embedder (a :class:`~face_tracker_core.recognition.worker.ProcessEmbedder`
            when ``recognition.own_process``).
        gallery: the enrolment :class:`~face_tracker_core.recognition.Gallery`.
        identifier: open-set :class:`~face_tracker_core.recognition.Identifier` over the gallery.
        per_track: the :class:`~face_tracker_core.recognition.TrackIdentifier` stage.
        worker: the embedder process, or ``None`` when embedding inline.
    """

    embedder: Any
    gallery: Any
    identifier: Any
    per_track: Any
    worker: Any = None

    def describe(self) -> str:
        """One line: embedder, gallery file, people enrolled, threshold."""
        return (f"{self.embedder.describe()}, gallery {self.gallery.path} ({len(self.identifier.names)} people, "
                f"threshold {self.identifier.threshold:.3f})")

    def health(self) -> Tuple[Dict[str, str], Optional[str]]:
        """``(key/values, problem)``: the embedder process's state and errors (nothing when inline),
        and ``"recognition process down"`` when it is not running."""
        worker = self.worker
        if worker is None:
            return {}, None
        values = {"recognition_process": (f"pid {worker.pid}" if worker.alive else "down") +
                  f", {worker.restarts} restarts",
                  "recognition_errors": str(self.per_track.worker_errors)}
        return values, (None if worker.alive else "recognition process down")

    def close(self) -> None:
        """Stop the embedder process (if any)."""
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def load_configured_detector(cfg: PipelineConfig):
    """``(detector, threshold)``: the detector of ``cfg.detector`` keeping the boxes the tracker
    needs (:meth:`TrackingConfig.score_floor`), and the operating threshold in force.

    Raises:
        ModelLoadError: the model file is missing, unreadable or its sidecar is.
    """
    score = cfg.detector.threshold()
    det = load_detector(cfg.detector.backend, cfg.detector.model_path, cfg.tracking.score_floor(score))
    return det, score


def build_pipeline(cfg: PipelineConfig, detector=None, log=None,
                   counters: Optional[collections.Counter] = None) -> FacePipeline:
    """The pipeline of ``cfg``.

    Args:
        cfg: the configuration.
        detector: a ready detector to use (several pipelines may share one) instead of loading
            ``cfg.detector``'s (which then only gives the threshold).
        log: logger for set-up lines (``info``/``warning``/``error``); default: this module's.
        counters: counter the enrolment increments (``enrolled`` / ``enroll_failed``).

    Returns:
        A :class:`FacePipeline` with ``config``, ``score`` (threshold in force), ``recognition``
        (:class:`Recognition` or ``None``), ``enrolment`` (or ``None``) and ``attributes`` (the
        :class:`PerTrackCache` or ``None``) set, recognition and attributes as ``stages``.

    Raises:
        Exception: whatever a part raises while loading; the parts already started are closed.
    """
    log = log or _log
    if detector is None:
        detector, score = load_configured_detector(cfg)
    else:
        score = cfg.detector.threshold()
    pipe = FacePipeline(detector=detector, tracking=cfg.tracking.enabled,
                        tracker_kwargs=cfg.tracking.tracker_kwargs(score), min_score=cfg.tracking.score_floor(score))
    pipe.config, pipe.score = cfg, score
    try:
        if cfg.recognition.enabled:
            _add_recognition(pipe, cfg, log, counters)
        if cfg.tracking.reid:
            pipe.on_new_tracker = lambda tracker: _attach_reid(tracker, pipe, log)
            if pipe.tracker is not None:
                pipe.on_new_tracker(pipe.tracker)
        if cfg.attributes.enabled:
            _add_attributes(pipe, cfg)
    except Exception:
        pipe.close()
        raise
    return pipe


def _add_recognition(pipe: FacePipeline, cfg: PipelineConfig, log, counters) -> None:
    from .enrolment import Enrolment
    from .recognition import Gallery, Identifier, TrackIdentifier, make_embedder

    rc = cfg.recognition
    worker = None
    if rc.own_process:
        from .recognition.worker import ProcessEmbedder

        embedder = worker = ProcessEmbedder(rc.embedder, **rc.embedder_kwargs())
    else:
        embedder = make_embedder(rc.embedder, **rc.embedder_kwargs())
    try:
        gallery = Gallery(rc.gallery_file(), model_id=embedder.model_id, dim=embedder.dim)
        identifier = Identifier(embedder, gallery, threshold=rc.threshold or None)
    except Exception:
        if worker is not None:
            worker.close()
        raise
    per_track = TrackIdentifier(identifier, refresh_s=rc.refresh_s, worker=worker)
    pipe.recognition = Recognition(embedder, gallery, identifier, per_track, worker)
    pipe.stages["recognition"] = per_track.update
    pipe.enrolment = Enrolment(identifier, frames=rc.enroll_frames, log=log, counters=counters)
    pipe.observers.append(pipe.enrolment.step)
    log.info(f"recognition: {pipe.recognition.describe()}")


def _attach_reid(tracker, pipe: FacePipeline, log) -> None:
    """Feed ``tracker``'s appearance hook with the recognition embedder (one model in memory for
    both jobs) or, without recognition, an embedder of its own."""
    from .infer.tracker import embedder_hook
    from .recognition import make_embedder

    cfg = pipe.config
    if pipe.recognition is not None:
        embedder = pipe.recognition.identifier.embedder
    else:
        embedder = make_embedder(cfg.recognition.embedder, **cfg.recognition.embedder_kwargs())
    tracker.configure(appearance_threshold=cfg.tracking.reid_threshold)
    tracker.set_appearance_hook(embedder_hook(embedder))
    log.info(f"re-identification: {embedder.describe()}, cosine >= {cfg.tracking.reid_threshold:.2f}")


def _add_attributes(pipe: FacePipeline, cfg: PipelineConfig) -> None:
    from .attributes.predictor import AttributePredictor

    ac = cfg.attributes
    predictor = AttributePredictor(model_path=ac.model_path or None, threshold=ac.threshold, top_k=ac.top_k)
    pipe.attributes = PerTrackCache(predictor.predict, with_attributes, refresh_s=ac.refresh_s)
    pipe.stages["attributes"] = pipe.attributes.annotate
