"""Embedding in a child process, so a frame never waits for a slow embedder.

dlib's Python bindings hold the GIL for a whole forward pass (about 0.2-0.4 s per face on a small
CPU, twice that with flip averaging), so a *thread* would still freeze the frame loop whenever a
new face is identified; a child process does not. :class:`ProcessEmbedder` owns one child that
builds the real embedder (:func:`~.embedders.make_embedder`) and serves requests over a pipe:

* :meth:`ProcessEmbedder.submit` / :meth:`ProcessEmbedder.poll`: asynchronous, for the per-track
  identification of live frames (:class:`~.identify.TrackIdentifier` with ``worker=``);
* :meth:`ProcessEmbedder.embed`: blocking, so the same object also serves enrolment, galleries
  and the tracker's appearance hook (results of both kinds never get mixed up: every request
  carries a job id).

The child gets the whole frame (a 640x480 frame pickles in about a millisecond), so vectors are
exactly those of the same embedder run in-process. A child that dies (out of memory, killed) is
reported as an error for the jobs it held and restarted on the next request, at most once per
``restart_s``.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import signal
import threading
import time
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ..errors import ModelLoadError
from ..types import BBox
from .embedders import Embedder

log = logging.getLogger(__name__)

JobResult = Tuple[int, Union[np.ndarray, Exception]]


class EmbedWorkerError(RuntimeError):
    """The embedding process failed a request or died."""


def _serve(conn, name: str, kwargs: Dict) -> None:  # pragma: no cover - runs in the child
    """Child process: build the embedder, then answer ``(job, bgr, boxes)`` requests until
    ``None`` arrives or the parent goes away."""
    # Ctrl-C in a terminal signals the whole process group: the parent decides when this process
    # stops (it closes the pipe, or terminates it), so a SIGINT must not kill it mid-answer with a
    # traceback. A parent that dies closes the pipe, which ends the loop below.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from .embedders import make_embedder

        emb = make_embedder(name, **kwargs)
        conn.send(("ready", {"name": emb.name, "model_id": emb.model_id, "dim": emb.dim,
                             "default_threshold": emb.default_threshold, "describe": emb.describe()}))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # parent closed the pipe or died
        if msg is None:
            return
        job, bgr, boxes = msg
        try:
            out: Union[np.ndarray, str] = emb.embed(bgr, [BBox(*b) for b in boxes])
        except Exception as exc:  # one bad request must not end the service
            out = f"{type(exc).__name__}: {exc}"
        try:
            conn.send((job, out))
        except (BrokenPipeError, OSError):
            return


class ProcessEmbedder(Embedder):
    """An embedder running in its own process (same vectors, no GIL shared with the caller).

    Args:
        name: embedder name (``"dlib"``, ``"facenet"``, ``"siamese"``).
        start_timeout_s: how long to wait for the child to load its model (seconds).
        restart_s: minimum seconds between restarts of a dead child.
        **kwargs: passed to :func:`~.embedders.make_embedder` in the child (``model_path``,
            ``flip``...).

    Raises:
        ModelLoadError: the child could not build the embedder (missing/corrupt weights: the
            child's own message), or did not answer within ``start_timeout_s``.
    """

    def __init__(self, name: str = "dlib", start_timeout_s: float = 180.0, restart_s: float = 10.0,
                 **kwargs) -> None:
        super().__init__(aligner=None)
        self._spec = (name, dict(kwargs))
        self.start_timeout_s = float(start_timeout_s)
        self.restart_s = float(restart_s)
        self._lock = threading.Lock()  # one conversation on the pipe at a time
        self._ids = itertools.count(1)
        self._waiting: Set[int] = set()      # async jobs sent, not yet answered
        self._done: List[JobResult] = []     # async answers read while waiting for a blocking one
        self._proc = None
        self._conn = None
        self._last_start = 0.0
        self.restarts = 0
        self._start()

    # -- process management -----------------------------------------------------------------
    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs DDS/TF threads
        parent, child = ctx.Pipe()
        name, kwargs = self._spec
        proc = ctx.Process(target=_serve, args=(child, name, kwargs), daemon=True, name=f"embed-{name}")
        self._last_start = time.monotonic()
        proc.start()
        child.close()
        if not parent.poll(self.start_timeout_s):
            proc.kill()
            raise ModelLoadError(f"embedder '{name}': the embedding process did not start within "
                                 f"{self.start_timeout_s:.0f} s")
        try:
            kind, info = parent.recv()
        except (EOFError, OSError) as exc:
            raise ModelLoadError(f"embedder '{name}': the embedding process died while loading "
                                 f"(exit code {proc.exitcode})") from exc
        if kind != "ready":
            proc.join(5.0)
            raise ModelLoadError(f"embedder '{name}' (in its process): {info}")
        self._proc, self._conn = proc, parent
        self.name, self.model_id, self.dim = info["name"], info["model_id"], int(info["dim"])
        self.default_threshold = float(info["default_threshold"])
        self._describe = info["describe"]
        log.info("embedding process %d: %s", proc.pid, self._describe)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    def _lost(self, why: str) -> None:
        """The child is gone: fail its pending jobs (they come back from :meth:`poll`)."""
        err = EmbedWorkerError(f"embedding process lost ({why})")
        self._done.extend((j, err) for j in self._waiting)
        self._waiting.clear()
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def _ensure(self) -> None:
        if self.alive:
            return
        if self._proc is not None:
            self._lost(f"exit code {self._proc.exitcode}")
        if time.monotonic() - self._last_start < self.restart_s:
            raise EmbedWorkerError("embedding process is down (restart pending)")
        self.restarts += 1
        log.warning("restarting the embedding process (restart %d)", self.restarts)
        try:
            self._start()
        except ModelLoadError as exc:
            raise EmbedWorkerError(str(exc)) from exc

    def _send(self, job: int, bgr: np.ndarray, boxes: Sequence[BBox]) -> None:
        self._ensure()
        payload = [tuple(float(v) for v in (b.x1, b.y1, b.x2, b.y2)) for b in boxes]
        try:
            self._conn.send((job, np.ascontiguousarray(bgr), payload))
        except (BrokenPipeError, OSError) as exc:
            self._lost(f"{type(exc).__name__}")
            raise EmbedWorkerError("embedding process lost while sending a frame") from exc

    def _read(self, timeout: Optional[float]) -> Optional[JobResult]:
        """One answer from the child, or ``None`` if none came within ``timeout`` (0: don't wait)."""
        try:
            if not self._conn.poll(timeout):
                if not self.alive:
                    self._lost(f"exit code {self._proc.exitcode}")
                return None
            job, out = self._conn.recv()
        except (EOFError, OSError):
            self._lost("pipe closed")
            return None
        return job, (EmbedWorkerError(out) if isinstance(out, str) else np.asarray(out, np.float32))

    # -- asynchronous API --------------------------------------------------------------------
    def submit(self, bgr: np.ndarray, boxes: Sequence[BBox]) -> int:
        """Queue the faces of one frame; returns a job id (answer from :meth:`poll`).

        Raises:
            EmbedWorkerError: the child is down and cannot be restarted yet.
        """
        with self._lock:
            job = next(self._ids)
            self._send(job, bgr, boxes)
            self._waiting.add(job)
            return job

    def poll(self, timeout: float = 0.0) -> List[JobResult]:
        """Answers that arrived: ``[(job, (N, D) vectors or an exception)]`` (never blocks
        longer than ``timeout`` seconds)."""
        with self._lock:
            if self._conn is not None and self._waiting:
                got = self._read(timeout)
                while got is not None:
                    self._waiting.discard(got[0])
                    self._done.append(got)
                    if not self._waiting:
                        break
                    got = self._read(0.0)
            out, self._done = self._done, []
            return out

    @property
    def pending(self) -> int:
        """Jobs submitted and not answered yet."""
        return len(self._waiting)

    # -- Embedder API (blocking) -------------------------------------------------------------
    def embed(self, bgr: np.ndarray, boxes: Sequence[BBox],
              points: Optional[Sequence[Optional[np.ndarray]]] = None, timeout: float = 60.0) -> np.ndarray:
        """Blocking :meth:`Embedder.embed` through the child (``points`` are ignored: the child
        finds the landmarks itself).

        Raises:
            EmbedWorkerError: the child failed the request, died, or did not answer in ``timeout``.
        """
        if len(boxes) == 0:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            job = next(self._ids)
            self._send(job, bgr, boxes)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise EmbedWorkerError(f"embedding process gave no answer within {timeout:.0f} s")
                if self._conn is None:
                    raise EmbedWorkerError("embedding process lost during a request")
                got = self._read(min(left, 1.0))
                if got is None:
                    continue
                if got[0] == job:
                    if isinstance(got[1], Exception):
                        raise got[1]
                    return got[1]
                self._waiting.discard(got[0])  # an asynchronous answer: keep it for poll()
                self._done.append(got)

    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError("ProcessEmbedder embeds faces in frames (embed); it has no aligner here")

    def describe(self) -> str:
        return f"{self._describe} [own process]"

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child (idempotent)."""
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc, self._conn = None, None
            if conn is not None:
                try:
                    conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
                conn.close()
            if proc is not None:
                proc.join(timeout)
                if proc.is_alive():
                    proc.kill()
                    proc.join(timeout)

    def __enter__(self) -> "ProcessEmbedder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            self.close(timeout=0.5)
        except Exception:
            pass
