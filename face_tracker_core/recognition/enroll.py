"""Enrolment: photos, a folder per person, a video or a camera -> vectors in the gallery.

Every photo (or sampled frame) must show exactly one face: a photo with no face, with several
faces (whose face would we store?) or that cannot be read is **reported** in the
:class:`EnrollReport` and not used, unless asked otherwise: ``several="match"`` uses, in a photo with
several faces, the face that clearly matches the person's one-face photos of the same batch (a
bystander is never stored; an unclear case is reported and skipped), and ``several="main"`` the
photo's main face (the most confident detection). Such photos are still listed as warnings.
Nothing is written when no usable face was found.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

import cv2
import numpy as np

from ..imaging import read_image
from .dataset import list_identities
from .embedders import l2_normalize, similarity
from .faces import FaceFinder

log = logging.getLogger(__name__)


@dataclass
class EnrollIssue:
    """A photo/frame not used (or used with a caveat): ``source`` and a human ``reason``."""

    source: str
    reason: str
    used: bool = False


@dataclass
class EnrollReport:
    """Outcome of enrolling one person."""

    name: str
    added: int = 0
    used: List[str] = field(default_factory=list)
    issues: List[EnrollIssue] = field(default_factory=list)

    def summary(self) -> str:
        skipped = sum(not i.used for i in self.issues)
        return f"{self.name}: {self.added} face(s) enrolled, {skipped} photo(s) skipped"


def _encode(crop: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes()


def _collect(embedder, finder: FaceFinder, bgr: np.ndarray, source: str, several: str,
             report: EnrollReport, vecs: list, sources: list, crops: list, pending: Optional[list] = None) -> None:
    found = finder.find(bgr)
    if found.count == 0:
        report.issues.append(EnrollIssue(source, "no face found"))
        return
    if found.count > 1:
        if several == "match" and pending is not None:
            boxes = [d.box for d in found.detections]
            crop = embedder.aligner.align(bgr, boxes)
            pending.append((source, embedder.embed_aligned(crop), crop))
            return
        if several != "main":
            report.issues.append(EnrollIssue(source, f"{found.count} faces found (which one is the person?)"))
            return
        report.issues.append(EnrollIssue(source, f"{found.count} faces found, used the main one", used=True))
    box = found.main.box
    crop = embedder.aligner.align(bgr, [box])
    vecs.append(embedder.embed_aligned(crop)[0])
    crops.append(crop[0])
    sources.append(source)


def enroll_images(embedder, gallery, name: str, paths: Sequence[str], finder: Optional[FaceFinder] = None,
                  several: str = "reject", store_images: bool = False) -> EnrollReport:
    """Enrol ``name`` from photo files.

    Args:
        embedder: the gallery's embedder.
        gallery: an open :class:`~.gallery.Gallery` (tagged with ``embedder.model_id``).
        name: person name.
        paths: photo files.
        finder: face finder (our ``default`` detector with retries when ``None``).
        several: photos with several faces: ``"reject"`` them, use the face that ``"match"``-es the
            person's one-face photos of ``paths`` (:func:`_resolve_several`), or the ``"main"`` face.
        store_images: also keep the aligned face crops (JPEG) in the gallery.
    """
    if several not in SEVERAL:
        raise ValueError(f"several must be one of {SEVERAL}, got {several!r}")
    finder = finder or FaceFinder("default")
    report = EnrollReport(name)
    vecs: list = []
    sources: list = []
    crops: list = []
    pending: list = []
    for p in paths:
        try:
            img = read_image(p)
        except Exception as exc:  # one bad file must not stop the others
            report.issues.append(EnrollIssue(p, f"unreadable: {exc}"))
            continue
        _collect(embedder, finder, img, os.path.basename(p), several, report, vecs, sources, crops, pending)
    _resolve_several(pending, report, vecs, sources, crops)
    _store(embedder, gallery, report, vecs, sources, crops, store_images)
    return report


#: how photos with several faces are handled during enrolment
SEVERAL = ("reject", "match", "main")
#: ``several="match"``: the chosen face must beat the photo's next best face by this much score
#: ((1 + cos) / 2; dlib strangers score about 0.92-0.95, the same person about 0.97-0.99).
MATCH_MARGIN = 0.01


def _resolve_several(pending: list, report: EnrollReport, vecs: list, sources: list, crops: list) -> None:
    """Pick, in each photo with several faces, the face matching the person's one-face photos.

    The reference is the mean vector of the batch's one-face photos; a face is used only when it is
    the closest one by at least :data:`MATCH_MARGIN`, so a bystander or an unclear photo is never
    stored (it is reported instead).
    """
    if not pending:
        return
    if not vecs:
        for source, v, _ in pending:
            report.issues.append(EnrollIssue(source, f"{len(v)} faces found and no one-face photo of the person "
                                                     "to tell which is theirs"))
        return
    ref = l2_normalize(np.mean(np.stack(vecs), axis=0))
    for source, v, crop in pending:
        s = similarity(v, ref)
        order = np.argsort(-s)
        best, second = float(s[order[0]]), float(s[order[1]])
        if best - second < MATCH_MARGIN:
            report.issues.append(EnrollIssue(source, f"{len(v)} faces found, none clearly the person's "
                                                     f"(scores {best:.3f} and {second:.3f}): skipped"))
            continue
        report.issues.append(EnrollIssue(source, f"{len(v)} faces found, used face {int(order[0]) + 1} (the one "
                                                 f"matching the person's other photos: {best:.3f} vs {second:.3f})",
                                         used=True))
        vecs.append(v[order[0]])
        crops.append(crop[order[0]])
        sources.append(source)


def enroll_folder(embedder, gallery, root: str, finder: Optional[FaceFinder] = None, several: str = "reject",
                  store_images: bool = False, people: Optional[Iterable[str]] = None) -> List[EnrollReport]:
    """Enrol every sub-folder of ``root`` as one person (folder name = person name)."""
    tree: Dict[str, List[str]] = list_identities(root)
    finder = finder or FaceFinder("default")
    wanted = set(people) if people is not None else None
    return [enroll_images(embedder, gallery, n, ps, finder, several, store_images)
            for n, ps in tree.items() if wanted is None or n in wanted]


def enroll_frames(embedder, gallery, name: str, frames: Iterable[np.ndarray], source: str = "video",
                  every: int = 5, max_faces: int = 20, finder: Optional[FaceFinder] = None,
                  store_images: bool = False) -> EnrollReport:
    """Enrol from a frame stream (video file or camera): every ``every``-th frame with exactly one
    face is used, up to ``max_faces`` faces. Frames with none/several faces are counted as issues."""
    finder = finder or FaceFinder("default", retry=False)
    report = EnrollReport(name)
    vecs: list = []
    sources: list = []
    crops: list = []
    for i, frame in enumerate(frames):
        if i % max(1, every):
            continue
        _collect(embedder, finder, frame, f"{source}#{i}", "reject", report, vecs, sources, crops)
        if len(vecs) >= max_faces:
            break
    _store(embedder, gallery, report, vecs, sources, crops, store_images)
    return report


def _store(embedder, gallery, report: EnrollReport, vecs, sources, crops, store_images: bool) -> None:
    for issue in report.issues:
        (log.warning if not issue.used else log.info)("%s: %s: %s", report.name, issue.source, issue.reason)
    if not vecs:
        log.warning("%s: no usable face: nothing enrolled", report.name)
        return
    report.added = gallery.add(report.name, np.stack(vecs), model_id=embedder.model_id, sources=sources,
                               images=[_encode(c) for c in crops] if store_images else None)
    report.used = list(sources)


class LiveEnroller:
    """Enrol the largest confirmed tracked face over the next frames (for the ROS ``enroll`` topic).

    Feed it every frame's tracks; it follows the track that was the largest confirmed one when
    it started, embeds it on frames where that track has a fresh detection, and writes
    ``frames`` vectors to the gallery at once. If that track is lost first, :attr:`error` says so
    and nothing is written.

    Args:
        embedder, gallery: as for :func:`enroll_images`.
        name: person name.
        frames: vectors to collect.
        min_face_px: ignore the face on frames where its box is smaller (pixels).
    """

    def __init__(self, embedder, gallery, name: str, frames: int = 10, min_face_px: float = 40.0) -> None:
        from .gallery_store import check_name

        self.embedder, self.gallery = embedder, gallery
        self.name = check_name(name)
        self.frames = int(frames)
        self.min_face_px = float(min_face_px)
        self.track_id: Optional[str] = None
        self._vecs: List[np.ndarray] = []
        self.done = False
        self.error: Optional[str] = None
        self.report = EnrollReport(self.name)

    def update(self, bgr: np.ndarray, tracks) -> bool:
        """Process one frame; returns ``True`` once finished (enrolled, or failed: see ``error``)."""
        if self.done:
            return True
        if self.track_id is None:
            cands = [t for t in tracks if t.confirmed and t.time_since_update == 0]
            if not cands:
                return False
            self.track_id = max(cands, key=lambda t: t.box.area).track_id
        track = next((t for t in tracks if t.track_id == self.track_id), None)
        if track is None:
            self.done, self.error = True, f"track {self.track_id} lost after {len(self._vecs)} frame(s): nothing enrolled"
            return True
        if track.time_since_update == 0 and min(track.box.width, track.box.height) >= self.min_face_px:
            self._vecs.append(self.embedder.embed(bgr, [track.box])[0])
        if len(self._vecs) >= self.frames:
            self.report.added = self.gallery.add(self.name, np.stack(self._vecs), model_id=self.embedder.model_id,
                                                 sources=[f"live:{self.track_id}"] * len(self._vecs))
            self.done = True
        return self.done
