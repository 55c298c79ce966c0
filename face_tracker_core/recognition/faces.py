"""Finding THE face of a photo for enrolment and evaluation: our detector plus retries.

Enrolment photos and evaluation pairs are single photos of one person, where a missed face costs
a whole sample. :class:`FaceFinder` runs the project's detector (``make_detector``; whatever
``default`` is at the time) and, only when it finds nothing, retries on an upscaled copy (small
faces) and on copies rotated by +-20 degrees (tilted heads), mapping the boxes back. Live video
does not need the retries: the tracker sees the face again in the next frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..types import BBox, Detection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundFaces:
    """Faces of one photo.

    Attributes:
        detections: every face found, the photo's subject first (see ``FaceFinder.main``), pixels
            of the original photo.
        attempt: which pass found them: ``"plain"``, ``"upscale"``, ``"rotate+20"``,
            ``"rotate-20"``, ``"weak"`` (the fallback: the best box below the operating
            threshold), or ``"none"``.
    """

    detections: Tuple[Detection, ...]
    attempt: str

    @property
    def count(self) -> int:
        return len(self.detections)

    @property
    def main(self) -> Optional[Detection]:
        """The photo's subject (first of :attr:`detections`), or ``None``."""
        return self.detections[0] if self.detections else None


#: share of a rotated-pass box that must lie on the photo's own pixels (not the filled corners).
MIN_REAL_PIXELS = 0.8


def _rotate(bgr: np.ndarray, degrees: float) -> Tuple[np.ndarray, np.ndarray]:
    h, w = bgr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    return cv2.warpAffine(bgr, m, (w, h), borderMode=cv2.BORDER_REPLICATE), m


class FaceFinder:
    """Detector with retries for single photos.

    Args:
        detector: a :class:`~face_tracker_core.infer.base.FaceDetector`, or a backend name for
            :func:`~face_tracker_core.infer.base.make_detector`.
        retry: run the upscale/rotation passes when the plain pass finds nothing.
        min_score: ignore detections below this score.
        main: which face is the photo's subject: ``"score"`` (the most confident detection:
            on in-the-wild photos the largest box is too often a false or background face;
            measured on CelebA pairs with dlib: 0.895 vs 0.869 10-fold accuracy) or
            ``"largest"``.
        fallback_score: when every pass finds nothing at the detector's operating threshold, the
            most confident box of the plain pass scoring at least this is taken as the photo's
            face (a photo given for enrolment or evaluation is known to show someone; the
            weakest real faces, e.g. strongly lit or turned, score 0.2-0.5). ``None`` disables.
            Only used with a detector built here (``detector`` given by name) that has a
            ``score_threshold``.
        **detector_kw: options for ``make_detector`` when ``detector`` is a name.
    """

    #: changes whenever what ``find`` returns for the same detector output changes (caches key on it).
    VERSION = 2  # 2: rotated passes ignore boxes on the filled-in corners

    def __init__(self, detector="default", retry: bool = True, min_score: float = 0.0, main: str = "score",
                 fallback_score: Optional[float] = None, **detector_kw) -> None:
        if main not in ("score", "largest"):
            raise ValueError("main must be 'score' or 'largest'")
        self.main = main
        self.fallback_score: Optional[float] = None
        if isinstance(detector, str):
            from ..infer import make_detector

            detector = make_detector(detector, **detector_kw)
            op = getattr(detector, "score_threshold", None)
            if fallback_score is not None and op is not None and fallback_score < op:
                # The detector returns boxes down to the fallback score; the finder itself keeps
                # only those at the operating threshold, except in the last-resort pass.
                self.fallback_score = float(fallback_score)
                self._threshold = float(op)
                detector.score_threshold = self.fallback_score
        self.detector = detector
        self.retry = bool(retry)
        self.min_score = float(min_score)

    def describe(self) -> str:
        desc = self.detector.describe()
        if self.fallback_score is not None:
            desc = desc.replace(f"threshold {self.fallback_score:.2f}", f"threshold {self._threshold:.2f}")
        fb = f"+fallback {self.fallback_score:g}" if self.fallback_score is not None else ""
        return f"{desc}{'+retry' if self.retry else ''}{fb}, main={self.main}"

    def _detect(self, bgr: np.ndarray, weak: bool = False) -> List[Detection]:
        floor = self.min_score
        if self.fallback_score is not None:
            floor = max(floor, self.fallback_score if weak else self._threshold)
        return [d for d in self.detector.detect(bgr) if d.score >= floor]

    def find(self, bgr: np.ndarray) -> FoundFaces:
        """All faces of ``bgr`` (``(H, W, 3)`` ``uint8``), main face first."""
        h, w = bgr.shape[:2]
        dets = self._detect(bgr)
        attempt = "plain"
        if not dets and self.retry:
            for attempt, fn in (("upscale", self._upscaled), ("rotate+20", lambda im: self._rotated(im, 20.0)),
                                ("rotate-20", lambda im: self._rotated(im, -20.0))):
                dets = fn(bgr)
                if dets:
                    break
        if not dets and self.fallback_score is not None:
            weak = self._detect(bgr, weak=True)
            if weak:
                dets, attempt = [max(weak, key=lambda d: d.score)], "weak"
        if not dets:
            return FoundFaces((), "none")
        dets = [Detection(d.box.clip(w, h), d.score, d.label, d.landmarks) for d in dets]
        dets = [d for d in dets if d.box.area > 0]
        if self.main == "score":
            dets.sort(key=lambda d: (d.score, d.box.area), reverse=True)
        else:
            dets.sort(key=lambda d: d.box.area, reverse=True)
        return FoundFaces(tuple(dets), attempt if dets else "none")

    def _upscaled(self, bgr: np.ndarray) -> List[Detection]:
        h, w = bgr.shape[:2]
        f = min(2.0, 1280.0 / max(h, w))
        if f <= 1.2:
            return []
        big = cv2.resize(bgr, (int(w * f), int(h * f)), interpolation=cv2.INTER_CUBIC)
        return [Detection(d.box.scale(1.0 / f), d.score, d.label) for d in self._detect(big)]

    def _rotated(self, bgr: np.ndarray, degrees: float) -> List[Detection]:
        rot, m = _rotate(bgr, degrees)
        inv = cv2.invertAffineTransform(m)
        h, w = bgr.shape[:2]
        # Which pixels of the rotated copy are the photo's own (not the replicated border streaks
        # that fill its corners): a box mostly on those streaks is not a face of the photo.
        valid = cv2.warpAffine(np.ones((h, w), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out = []
        for d in self._detect(rot):
            x1, y1, x2, y2 = (int(round(v)) for v in d.box.clip(w, h).as_xyxy())
            if x2 <= x1 or y2 <= y1 or valid[y1:y2, x1:x2].mean() < MIN_REAL_PIXELS:
                continue
            cx, cy = d.box.center
            # Same-size box around the face centre mapped back: the landmark predictor copes
            # with the +-20 degree tilt left in it.
            ox, oy = inv @ np.array([cx, cy, 1.0])
            out.append(Detection(BBox.from_cxcywh(ox, oy, d.box.width, d.box.height), d.score, d.label))
        return out

    def find_many(self, images: Sequence[np.ndarray]) -> List[FoundFaces]:
        return [self.find(im) for im in images]
