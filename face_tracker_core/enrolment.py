"""Live enrolment state machine: a name requested from any thread is enrolled from the next frames.

:meth:`Enrolment.request` (e.g. a ROS ``enroll`` topic callback) arms it; :meth:`Enrolment.step`,
a pipeline observer on the frame thread, then starts a
:class:`~face_tracker_core.recognition.enroll.LiveEnroller` on the largest confirmed face, feeds
it frames until it has its vectors, writes them to the gallery and reloads the identifier.
Framework-free.
"""

from __future__ import annotations

import collections
import logging
from typing import Optional, Sequence

import numpy as np

from .types import Track

_log = logging.getLogger(__name__)


class Enrolment:
    """Enrols people into the identifier's gallery from live frames, one person at a time.

    Args:
        identifier: the pipeline's :class:`~face_tracker_core.recognition.Identifier` (its
            embedder and gallery are used; it is reloaded after each enrolment).
        frames: vectors (frames) collected per person.
        log: logger (``info``/``warning``/``error``); default: this module's.
        counters: counter incremented with ``"enrolled"`` or ``"enroll_failed"`` per finished
            enrolment; default: :attr:`counts` (a new one).
    """

    def __init__(self, identifier, frames: int = 10, log=None, counters: Optional[collections.Counter] = None) -> None:
        self.identifier = identifier
        self.frames = int(frames)
        self.log = log or _log
        self.counts = collections.Counter() if counters is None else counters
        self._requested: Optional[str] = None
        self._enroller = None

    def request(self, name: str) -> bool:
        """Enrol ``name`` (stripped) from the next frames; an empty name is refused (returns ``False``)."""
        name = name.strip()
        if not name:
            self.log.warning("enroll: empty name ignored")
            return False
        self._requested = name
        self.log.info(f"enroll '{name}': collecting {self.frames} frames of the largest confirmed face")
        return True

    def step(self, bgr: np.ndarray, tracks: Sequence[Track], stamp: float) -> None:
        """Pipeline observer (frame thread): drive the enrolment in progress, if any.

        Args:
            bgr: ``(H, W, 3)`` ``uint8`` frame.
            tracks: the frame's tracks (pixel boxes).
            stamp: frame time, seconds (unused: enrolment counts frames).
        """
        if self._requested is not None:
            self._start(self._requested)
        if self._enroller is None:
            return
        try:
            finished = self._enroller.update(bgr, tracks)
        except Exception as exc:  # noqa: BLE001 - a failed enrolment never stops the frames
            self.log.error(f"enroll '{self._enroller.name}' failed: {exc}")
            self._enroller = None
            return
        if finished:
            self._finish(self._enroller)
            self._enroller = None

    def _start(self, name: str) -> None:
        from .recognition.enroll import LiveEnroller

        self._requested = None
        try:
            self._enroller = LiveEnroller(self.identifier.embedder, self.identifier.gallery, name,
                                          frames=self.frames)
        except Exception as exc:  # noqa: BLE001 - bad name etc.: report, keep running
            self.log.error(f"enroll '{name}' refused: {exc}")
            self._enroller = None

    def _finish(self, enroller) -> None:
        if enroller.error:
            self.log.error(f"enroll '{enroller.name}' failed: {enroller.error}")
        else:
            self.identifier.reload()
            self.log.info(f"enrolled '{enroller.name}' ({enroller.report.added} vectors)")
        self.counts["enrolled" if not enroller.error else "enroll_failed"] += 1
