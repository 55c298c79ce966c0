"""JSON export and import of a gallery (vectors as base64 ``float32``), for backups and moves.

Format: ``{"format": "face_tracker_gallery", "version", "model_id", "dim", "threshold",
"threshold_info", "people": [{"name", "created", "vectors", "sources", ["images"]}]}``.
"""

from __future__ import annotations

import base64
import json
import os
import time

import numpy as np

from .gallery_store import SCHEMA_VERSION, GalleryError, check_name

__all__ = ["EXPORT_FORMAT", "export_gallery", "import_gallery"]

EXPORT_FORMAT = "face_tracker_gallery"


def export_gallery(gallery, path: str, with_images: bool = False) -> int:
    """Write a JSON export of ``gallery`` (vectors base64 float32); returns people exported. File mode 0600."""
    people = []
    for p in gallery.people():
        rows = gallery._q("SELECT e.vector, e.source, e.image FROM embeddings e JOIN people p ON p.id = e.person_id "
                       "WHERE p.name=? ORDER BY e.id", (p.name,))
        people.append({"name": p.name, "created": p.created,
                       "vectors": [base64.b64encode(r[0]).decode() for r in rows],
                       "sources": [r[1] for r in rows],
                       **({"images": [base64.b64encode(r[2]).decode() if r[2] else None for r in rows]}
                          if with_images else {})})
    doc = {"format": EXPORT_FORMAT, "version": SCHEMA_VERSION, "model_id": gallery.model_id, "dim": gallery.dim,
           "threshold": gallery.threshold, "threshold_info": gallery.threshold_info(), "people": people}
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)
    return len(people)

def import_gallery(gallery, path: str, replace: bool = False) -> int:
    """Merge a JSON export into ``gallery`` in one transaction (``replace``: people in it replace same-named
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
            batch.append((check_name(p["name"]), vecs, p.get("sources") or [None] * len(vecs),
                          [base64.b64decode(i) if i else None for i in imgs]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GalleryError(f"{path}: cannot import ({exc})") from exc
    if model_id is None:
        if any(len(b[1]) for b in batch):
            raise GalleryError(f"{path}: export has vectors but no model_id")
    else:
        gallery.bind_model(model_id, doc.get("dim"))
    n = 0
    now = time.time()
    with gallery._write() as c:
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
        if gallery.threshold is None and doc.get("threshold") is not None:
            gallery._set_meta("threshold", repr(float(doc["threshold"])))
            gallery._set_meta("threshold_info", json.dumps(doc.get("threshold_info") or {}))
        gallery._bump()
    return n
