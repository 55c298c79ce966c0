"""The gallery's SQLite file: opening and checking it, durable transactions, metadata, errors.

:class:`GalleryFile` is the storage layer under :class:`~.gallery.Gallery` (see its module
docstring for the guarantees: one model per file, WAL + ``synchronous=FULL``, mode 0600,
``secure_delete``, clear errors).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import time
from typing import Iterator, List, Optional, Sequence

from ..errors import FaceTrackerError

log = logging.getLogger("face_tracker_core.recognition.gallery")

__all__ = ["SCHEMA_VERSION", "GalleryError", "GalleryLockedError", "GalleryModelError", "GalleryFile", "check_name"]

SCHEMA_VERSION = 1
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


def check_name(name: str) -> str:
    """``name`` stripped, or ``ValueError`` (empty, 'unknown', over 200 characters, control characters)."""
    name = (name or "").strip()
    if not name or name.lower() == "unknown" or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise ValueError(f"invalid person name {name!r} (non-empty, printable, not 'unknown', <= 200 chars)")
    return name


class GalleryFile:
    """An open gallery database (storage only; the people and vectors API is :class:`~.gallery.Gallery`).

    Args:
        path: the SQLite file (created, mode 0600, when missing and ``create``).
        create: create a missing file (else :class:`GalleryError`).
        timeout: seconds to wait for another writer's lock before :class:`GalleryLockedError`.
        readonly: open without ever writing (e.g. a node that only identifies).

    Raises:
        GalleryError: not a gallery / corrupt / unreadable.
    """

    def __init__(self, path: str, create: bool = True, timeout: float = 5.0, readonly: bool = False) -> None:
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

    # -- lifetime -------------------------------------------------------------------------------

    def checkpoint(self) -> None:
        """Copy the WAL into the main file and truncate it (best effort while readers are active)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_check(self) -> str:
        """SQLite's full ``integrity_check`` result (``"ok"`` when sound)."""
        return str(self._q("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        self._close_quietly()

    def __enter__(self) -> "GalleryFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
