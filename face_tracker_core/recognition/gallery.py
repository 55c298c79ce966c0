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

import json
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .gallery_io import EXPORT_FORMAT, export_gallery, import_gallery
from .gallery_store import (SCHEMA_VERSION, GalleryError, GalleryFile, GalleryLockedError, GalleryModelError,
                            check_name)

__all__ = ["Gallery", "PersonInfo", "GalleryError", "GalleryLockedError", "GalleryModelError", "SCHEMA_VERSION",
           "EXPORT_FORMAT", "check_name"]


@dataclass(frozen=True)
class PersonInfo:
    """One enrolled person: ``name``, number of vectors, creation time (Unix seconds), images kept."""

    name: str
    count: int
    created: float
    images: int = 0


class Gallery(GalleryFile):
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
        super().__init__(path, create=create, timeout=timeout, readonly=readonly)
        if model_id is not None:
            self.bind_model(model_id, dim)

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
        name = check_name(name)
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
        new = check_name(new)
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
        return export_gallery(self, path, with_images)

    def import_(self, path: str, replace: bool = False) -> int:
        """Merge a JSON export in one transaction (``replace``: people in it replace same-named
        ones). Returns vectors imported.

        Raises:
            GalleryError: unreadable/malformed file; GalleryModelError: other model.
        """
        return import_gallery(self, path, replace)

    def __enter__(self) -> "Gallery":
        return self

    def __repr__(self) -> str:
        return f"Gallery({self.path!r}, model_id={self.model_id!r})"
