"""The enrolment gallery: one SQLite file of people and their face vectors.

* **One model per gallery**: the file is tagged with the embedder's ``model_id`` on first use;
  vectors of another model live in another space, so opening or adding with another model is
  refused (:class:`GalleryModelError`).
* **Durable**: WAL journal, ``synchronous=FULL``, and every change in one ``BEGIN IMMEDIATE``
  transaction, so a process killed mid-write (``kill -9``) leaves the previous consistent state.
  Readers (the running node) never block the writer (the CLI) and vice versa.
* **Private**: the file (and its ``-wal``/``-shm`` companions, which SQLite creates with the same
  mode) is created ``0600``; face images are stored only when asked; deleting a person deletes
  all of their rows, with ``secure_delete`` overwriting the freed pages and a WAL checkpoint so no
  copy lingers in the journal.
* **Clear failures**: a file that is not a gallery, is corrupt, or stays locked by another writer
  raises :class:`GalleryError` naming the file.

Scores and thresholds are in [0, 1] (see :func:`~.embedders.similarity`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import FaceTrackerError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
EXPORT_FORMAT = "face_tracker_gallery"
_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    source TEXT,
    image BLOB,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_person ON embeddings(person_id);
"""


class GalleryError(FaceTrackerError):
    """The gallery file is unusable (not a gallery, corrupt, wrong schema...)."""


class GalleryLockedError(GalleryError):
    """Another process holds the write lock for longer than the timeout."""


class GalleryModelError(GalleryError):
    """Vectors of another embedder model than the gallery's."""


@dataclass(frozen=True)
class PersonInfo:
    """One enrolled person: ``name``, number of vectors, creation time (Unix seconds), images kept."""

    name: str
    count: int
    created: float
    images: int = 0


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or name.lower() == "unknown" or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ValueError(f"invalid person name {name!r} (non-empty, printable, not 'unknown', <= 200 chars)")
    return name


class Gallery:
    """An open gallery file.

    Args:
        path: the SQLite file (created, mode 0600, when missing and ``create``).
        model_id: the embedder's ``model_id``: tags an untagged gallery, must match a tagged one.
        dim: vector length (checked like ``model_id``).
        create: create a missing file (else :class:`GalleryError`).
        timeout: seconds to wait for another writer's lock before :class:`GalleryLockedError`.
        readonly: open without ever writing (e.g. a node that only identifies).

    Raises:
        GalleryError: not a gallery / corrupt / unreadable; GalleryModelError: model mismatch.
    """

    def __init__(self, path: str, model_id: Optional[str] = None, dim: Optional[int] = None,
                 create: bool = True, timeout: float = 5.0, readonly: bool = False) -> None:
        self.path = os.path.abspath(path)
        self.timeout = float(timeout)
        self.readonly = bool(readonly)
        exists = os.path.exists(self.path)
        if not exists:
            if not create or readonly:
                raise GalleryError(f"{self.path}: no such gallery")
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        else:
            self._check_file()
        try:
            uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
            self._conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._conn.execute("PRAGMA secure_delete=ON")
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    log.warning("%s: journal mode %s (WAL unavailable on this file system)", self.path, mode)
                self._conn.execute("PRAGMA synchronous=FULL")
            ok = self._conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise GalleryError(f"{self.path}: corrupt gallery ({ok}); restore it from an export")
            if not readonly and self._meta("schema_version") is None:  # new file: create the tables
                with self._write():
                    for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                        self._conn.execute(stmt)
                    if self._meta("schema_version") is None:
                        self._set_meta("schema_version", str(SCHEMA_VERSION))
                        self._set_meta("created", str(time.time()))
                        self._set_meta("revision", "0")
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise self._translate(exc) from exc
        if self._meta("schema_version") is None:
            self._close_quietly()
            raise GalleryError(f"{self.path}: an SQLite file but not a face gallery (no schema)")
        if int(self._meta("schema_version")) > SCHEMA_VERSION:
            self._close_quietly()
            raise GalleryError(f"{self.path}: gallery schema {self._meta('schema_version')} is newer than "
                               f"this software ({SCHEMA_VERSION})")
        if model_id is not None:
            self.bind_model(model_id, dim)

    # -- file-level checks ---------------------------------------------------------------------

    def _check_file(self) -> None:
        try:
            st = os.stat(self.path)
            with open(self.path, "rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise GalleryError(f"{self.path}: cannot read gallery ({exc.strerror})") from exc
        if not stat.S_ISREG(st.st_mode):
            raise GalleryError(f"{self.path}: not a regular file")
        if head and head != _HEADER:
            raise GalleryError(f"{self.path}: not a gallery database (corrupt, or another kind of file)")
        if st.st_mode & 0o077 and not self.readonly:
            log.warning("%s: gallery readable by others (mode %o); tightening to 0600", self.path,
                        st.st_mode & 0o777)
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)

    def _translate(self, exc: sqlite3.Error) -> GalleryError:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            return GalleryLockedError(f"{self.path}: locked by another process for more than {self.timeout:g} s "
                                      "(another enrolment or import running?)")
        if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
            return GalleryError(f"{self.path}: corrupt gallery ({msg}); restore it from an export")
        if "readonly" in msg or "read-only" in msg:
            return GalleryError(f"{self.path}: gallery is read-only here ({msg})")
        return GalleryError(f"{self.path}: {msg}")

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()

    # -- transactions and metadata ----------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One all-or-nothing write transaction (takes the write lock up front)."""
        if self.readonly:
            raise GalleryError(f"{self.path}: opened read-only")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            yield self._conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise self._translate(exc) from exc

    def _q(self, sql: str, args: Sequence = ()) -> List[tuple]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _meta(self, key: str) -> Optional[str]:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise self._translate(exc) from exc
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                           (key, value))

    def _bump(self) -> None:
        self._set_meta("revision", str(int(self._meta("revision") or 0) + 1))

    # -- model binding ------------------------------------------------------------------------

    @property
    def model_id(self) -> Optional[str]:
        """The embedder model this gallery holds vectors of (``None`` until the first one)."""
        return self._meta("model_id")

    @property
    def dim(self) -> Optional[int]:
        v = self._meta("dim")
        return int(v) if v else None

    def bind_model(self, model_id: str, dim: Optional[int] = None) -> None:
        """Tag an untagged gallery with ``model_id``; refuse a different one.

        Raises:
            GalleryModelError: the gallery holds another model's vectors.
        """
        have = self.model_id
        if have is not None and have != model_id:
            raise GalleryModelError(
                f"{self.path}: gallery holds vectors of model '{have}', refusing model '{model_id}' "
                "(vectors of different models cannot be compared: use another gallery or re-enrol)")
        if dim is not None and self.dim is not None and self.dim != int(dim):
            raise GalleryModelError(f"{self.path}: gallery vectors are {self.dim}-D, got {dim}-D")
        if have is None and not self.readonly:
            with self._write():
                if self._meta("model_id") is None:
                    self._set_meta("model_id", model_id)
                    if dim is not None:
                        self._set_meta("dim", str(int(dim)))
                    self._bump()

    # -- threshold ----------------------------------------------------------------------------

    @property
    def threshold(self) -> Optional[float]:
        """Calibrated same-person score threshold in [0, 1], or ``None``."""
        v = self._meta("threshold")
        return float(v) if v is not None else None

    def threshold_info(self) -> Dict:
        """``{"threshold", "far", "source", "pairs", "set"}`` as stored by :meth:`set_threshold`."""
        v = self._meta("threshold_info")
        return json.loads(v) if v else {}

    def set_threshold(self, threshold: float, far: Optional[float] = None, **info) -> None:
        """Store the calibrated threshold (and how it was obtained) with the gallery."""
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        with self._write():
            self._set_meta("threshold", repr(float(threshold)))
            self._set_meta("threshold_info", json.dumps({"threshold": float(threshold), "far": far,
                                                         "set": time.time(), **info}))
            self._bump()

    @property
    def revision(self) -> int:
        """Counter bumped by every change (a running identifier reloads when it moves)."""
        return int(self._meta("revision") or 0)

    # -- people ---------------------------------------------------------------------------------

    def _vectors_ok(self, embeddings: np.ndarray, model_id: Optional[str]) -> np.ndarray:
        e = np.asarray(embeddings, np.float32)
        if e.ndim == 1:
            e = e[None]
        if e.ndim != 2 or e.shape[0] == 0:
            raise ValueError(f"expected (N, D) embeddings, got shape {np.shape(embeddings)}")
        if not np.all(np.isfinite(e)):
            raise ValueError("embeddings contain NaN/inf")
        if model_id is not None:
            self.bind_model(model_id, e.shape[1])
        if self.model_id is None:
            raise GalleryModelError(f"{self.path}: untagged gallery: pass the embedder's model_id")
        if self.dim is not None and e.shape[1] != self.dim:
            raise GalleryModelError(f"{self.path}: gallery vectors are {self.dim}-D, got {e.shape[1]}-D")
        return e

    def add(self, name: str, embeddings: np.ndarray, model_id: Optional[str] = None,
            sources: Optional[Sequence[Optional[str]]] = None,
            images: Optional[Sequence[Optional[bytes]]] = None) -> int:
        """Add vectors for ``name`` (created if new), all in one transaction.

        Args:
            name: person name.
            embeddings: ``(N, D)`` (or ``(D,)``) L2-normalised float vectors.
            model_id: the embedder's model id (checked/tagged); may be omitted for a tagged gallery.
            sources: per-vector provenance (file name, ``camera:0#frame``), optional.
            images: per-vector encoded face crops to keep (``None``: keep none).

        Returns:
            Number of vectors added.
        """
        name = _check_name(name)
        e = self._vectors_ok(embeddings, model_id)
        now = time.time()
        with self._write() as c:
            row = c.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
            pid = row[0] if row else c.execute("INSERT INTO people(name, created) VALUES(?, ?)", (name, now)).lastrowid
            c.executemany(
                "INSERT INTO embeddings(person_id, vector, source, image, created) VALUES(?, ?, ?, ?, ?)",
                [(pid, e[i].tobytes(), sources[i] if sources else None,
                  images[i] if images else None, now) for i in range(len(e))])
            self._bump()
        return len(e)

    def people(self) -> List[PersonInfo]:
        """Everyone enrolled, by name."""
        rows = self._q("SELECT p.name, COUNT(e.id), p.created, COUNT(e.image) FROM people p "
                       "LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name")
        return [PersonInfo(n, int(c), float(t), int(i)) for n, c, t, i in rows]

    def __contains__(self, name: str) -> bool:
        return bool(self._q("SELECT 1 FROM people WHERE name=?", (name,)))

    def __len__(self) -> int:
        return int(self._q("SELECT COUNT(*) FROM people")[0][0])

    def rename(self, old: str, new: str) -> None:
        """Rename a person (refuses an existing ``new`` name)."""
        new = _check_name(new)
        with self._write() as c:
            if c.execute("SELECT 1 FROM people WHERE name=?", (new,)).fetchone():
                raise GalleryError(f"{self.path}: '{new}' is already enrolled")
            if c.execute("UPDATE people SET name=? WHERE name=?", (new, old)).rowcount == 0:
                raise KeyError(f"'{old}' is not enrolled")
            self._bump()

    def delete(self, name: str) -> int:
        """Delete a person and every row of theirs; returns the number of vectors removed.

        The freed pages are zeroed (``secure_delete``) and the WAL is checkpointed and truncated,
        so the vectors do not survive in the file or its journal.
        """
        with self._write() as c:
            row = c.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
            if row is None:
                raise KeyError(f"'{name}' is not enrolled")
            n = c.execute("DELETE FROM embeddings WHERE person_id=?", (row[0],)).rowcount
            c.execute("DELETE FROM people WHERE id=?", (row[0],))
            self._bump()
        self.checkpoint()
        return int(n)

    def checkpoint(self) -> None:
        """Copy the WAL into the main file and truncate it (best effort while readers are active)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def vectors(self, name: Optional[str] = None) -> Tuple[List[str], np.ndarray]:
        """All vectors (or one person's): ``(names per row, (N, D) float32)``."""
        sql = "SELECT p.name, e.vector FROM embeddings e JOIN people p ON p.id = e.person_id"
        rows = self._q(sql + (" WHERE p.name=?" if name else "") + " ORDER BY p.name, e.id",
                       (name,) if name else ())
        d = self.dim or 0
        if not rows:
            return [], np.zeros((0, d), np.float32)
        return [r[0] for r in rows], np.stack([np.frombuffer(r[1], np.float32) for r in rows])

    def images(self, name: str) -> List[bytes]:
        """Stored face crops of ``name`` (empty unless enrolled with images)."""
        return [r[0] for r in self._q("SELECT e.image FROM embeddings e JOIN people p ON p.id = e.person_id "
                                       "WHERE p.name=? AND e.image IS NOT NULL ORDER BY e.id", (name,))]

    # -- export / import ------------------------------------------------------------------------

    def export(self, path: str, with_images: bool = False) -> int:
        """Write a JSON export (vectors base64 float32); returns people exported. File mode 0600."""
        people = []
        for p in self.people():
            rows = self._q("SELECT e.vector, e.source, e.image FROM embeddings e JOIN people p ON p.id = e.person_id "
                           "WHERE p.name=? ORDER BY e.id", (p.name,))
            people.append({"name": p.name, "created": p.created,
                           "vectors": [base64.b64encode(r[0]).decode() for r in rows],
                           "sources": [r[1] for r in rows],
                           **({"images": [base64.b64encode(r[2]).decode() if r[2] else None for r in rows]}
                              if with_images else {})})
        doc = {"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "model_id": self.model_id, "dim": self.dim,
               "threshold": self.threshold, "threshold_info": self.threshold_info(), "people": people}
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
        return len(people)

    def import_(self, path: str, replace: bool = False) -> int:
        """Merge a JSON export in one transaction (``replace``: people in it replace same-named
        ones). Returns vectors imported.

        Raises:
            GalleryError: unreadable/malformed file; GalleryModelError: other model.
        """
        try:
            with open(path) as f:
                doc = json.load(f)
            if doc.get("format") != EXPORT_FORMAT:
                raise ValueError("not a face_tracker gallery export")
            model_id, people = doc["model_id"], doc["people"]
            batch = []
            for p in people:
                vecs = np.stack([np.frombuffer(base64.b64decode(v), np.float32) for v in p["vectors"]]) \
                    if p["vectors"] else np.zeros((0, doc.get("dim") or 0), np.float32)
                imgs = p.get("images") or [None] * len(vecs)
                batch.append((_check_name(p["name"]), vecs, p.get("sources") or [None] * len(vecs),
                              [base64.b64decode(i) if i else None for i in imgs]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GalleryError(f"{path}: cannot import ({exc})") from exc
        if model_id is None:
            if any(len(b[1]) for b in batch):
                raise GalleryError(f"{path}: export has vectors but no model_id")
        else:
            self.bind_model(model_id, doc.get("dim"))
        n = 0
        now = time.time()
        with self._write() as c:
            for name, vecs, sources, imgs in batch:
                row = c.execute("SELECT id FROM people WHERE name=?", (name,)).fetchone()
                if row and replace:
                    c.execute("DELETE FROM embeddings WHERE person_id=?", (row[0],))
                pid = row[0] if row else c.execute("INSERT INTO people(name, created) VALUES(?, ?)",
                                                   (name, now)).lastrowid
                c.executemany("INSERT INTO embeddings(person_id, vector, source, image, created) VALUES(?, ?, ?, ?, ?)",
                              [(pid, vecs[i].astype(np.float32).tobytes(), sources[i], imgs[i], now)
                               for i in range(len(vecs))])
                n += len(vecs)
            if self.threshold is None and doc.get("threshold") is not None:
                self._set_meta("threshold", repr(float(doc["threshold"])))
                self._set_meta("threshold_info", json.dumps(doc.get("threshold_info") or {}))
            self._bump()
        return n

    # -- lifetime -------------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """SQLite's full ``integrity_check`` result (``"ok"`` when sound)."""
        return str(self._q("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        self._close_quietly()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({self.path!r}, model_id={self.model_id!r})"
