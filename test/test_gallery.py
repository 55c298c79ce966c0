"""Gallery file: model tagging, transactions, privacy, corrupt/locked files, kill -9 mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from face_tracker_core.errors import FaceTrackerError
from face_tracker_core.recognition.gallery import (Gallery, GalleryError, GalleryLockedError,
                                                   GalleryModelError)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _vecs(n, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_list_rename_and_private_mode(tmp_path):
    db = tmp_path / "g.db"
    with Gallery(str(db), model_id="m:1", dim=8) as g:
        assert g.add("alice", _vecs(3), sources=["a1", "a2", "a3"]) == 3
        g.add("bob", _vecs(2, seed=1))
        g.add("alice", _vecs(1, seed=2))
        assert [(p.name, p.count) for p in g.people()] == [("alice", 4), ("bob", 2)]
        g.rename("bob", "robert")
        assert "robert" in g and "bob" not in g
        with pytest.raises(GalleryError):
            g.rename("alice", "robert")
        with pytest.raises(ValueError):
            g.add("unknown", _vecs(1))  # the word the identifier answers for strangers
        for f in (db, tmp_path / "g.db-wal"):
            if f.exists():
                assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    with Gallery(str(db)) as g:  # reopened: everything is there, model kept
        assert g.model_id == "m:1" and g.dim == 8 and len(g) == 2
        names, v = g.vectors("alice")
        assert v.shape == (4, 8) and names == ["alice"] * 4


def test_mixing_models_is_refused(tmp_path):
    db = str(tmp_path / "g.db")
    with Gallery(db, model_id="dlib:aaa", dim=8) as g:
        g.add("alice", _vecs(2))
        with pytest.raises(GalleryModelError):
            g.add("bob", _vecs(2), model_id="facenet:bbb")
        with pytest.raises(GalleryModelError):
            g.add("bob", _vecs(2, d=16))
    with pytest.raises(GalleryModelError, match="refusing model 'facenet:bbb'"):
        Gallery(db, model_id="facenet:bbb")


def test_delete_removes_every_row_and_the_bytes(tmp_path):
    db = str(tmp_path / "g.db")
    secret = _vecs(5, seed=7)
    with Gallery(db, model_id="m", dim=8) as g:
        g.add("alice", secret, images=[b"JPEGDATA-alice-%d" % i for i in range(5)])
        g.add("bob", _vecs(2, seed=3))
        assert g.delete("alice") == 5
        assert "alice" not in g and len(g.vectors()[0]) == 2
        with pytest.raises(KeyError):
            g.delete("alice")
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM embeddings e LEFT JOIN people p ON p.id = e.person_id "
                       "WHERE p.id IS NULL").fetchone()[0] == 0
    con.close()
    blob = b"".join(open(f, "rb").read() for f in (db, db + "-wal") if os.path.exists(f))
    for row in secret:  # neither the vectors nor the image survive anywhere in the files
        assert row.tobytes() not in blob
    assert b"JPEGDATA-alice" not in blob


def test_threshold_and_export_import(tmp_path):
    a, b = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with Gallery(a, model_id="m", dim=8) as g:
        g.add("alice", _vecs(3))
        g.set_threshold(0.83, far=1e-3, source="test")
        rev = g.revision
        g.add("bob", _vecs(1, seed=4))
        assert g.revision > rev
        g.export(str(tmp_path / "x.json"))
    assert stat.S_IMODE(os.stat(tmp_path / "x.json").st_mode) == 0o600
    with Gallery(b) as g:
        assert g.import_(str(tmp_path / "x.json")) == 4
        assert g.model_id == "m" and g.threshold == pytest.approx(0.83)
        assert g.threshold_info()["far"] == 1e-3
        np.testing.assert_array_equal(g.vectors("alice")[1], Gallery(a).vectors("alice")[1])
    with Gallery(str(tmp_path / "c.db"), model_id="other", dim=8) as g:
        with pytest.raises(GalleryModelError):
            g.import_(str(tmp_path / "x.json"))


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(GalleryError, match="not a gallery database"):
        Gallery(str(junk))
    # A real SQLite file whose pages were damaged.
    db = str(tmp_path / "g.db")
    with Gallery(db, model_id="m", dim=8) as g:
        for i in range(60):
            g.add(f"p{i}", _vecs(4, seed=i))
        g.checkpoint()
    data = bytearray(open(db, "rb").read())
    data[4096:len(data) - 100] = os.urandom(len(data) - 4196)
    open(db, "wb").write(bytes(data))
    with pytest.raises(GalleryError, match=str(tmp_path)) as e:
        Gallery(db).vectors()
    assert isinstance(e.value, FaceTrackerError)
    other = str(tmp_path / "other.sqlite")
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(GalleryError, match="not a face gallery"):
        Gallery(other, readonly=True)
    with pytest.raises(GalleryError, match="no such gallery"):
        Gallery(str(tmp_path / "missing.db"), create=False)


def test_locked_gallery_gives_clear_error(tmp_path):
    db = str(tmp_path / "g.db")
    Gallery(db, model_id="m", dim=8).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys, time
        c = sqlite3.connect({db!r}, isolation_level=None)
        c.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        g = Gallery(db, timeout=0.3)
        assert len(g) == 0  # readers still work under WAL
        with pytest.raises(GalleryLockedError, match="locked by another process"):
            g.add("alice", _vecs(1))
        g.close()
    finally:
        holder.kill()
        holder.wait()


WRITER = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from face_tracker_core.recognition.gallery import Gallery
    g = Gallery({db!r}, model_id="m", dim=64)
    i = 0
    while True:
        v = np.random.default_rng(i).normal(size=(5, 64)).astype(np.float32)
        g.add(f"{prefix}p{{i}}", v)          # one person = one transaction of 5 rows
        if i == 3:
            print("writing", flush=True)
        if i % 7 == 0:
            g.add(f"{prefix}p{{i}}", np.ones((500, 64), np.float32))  # a big transaction too
        i += 1
""")


def test_gallery_survives_kill_9_during_writes(tmp_path):
    db = str(tmp_path / "g.db")
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=ROOT, db=db, prefix=f"a{attempt}")], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.2 + 0.3 * attempt)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Gallery(db) as g:
            assert g.integrity_check() == "ok"
            for p in g.people():
                i = int(p.name.split("p")[1])
                # every transaction is all-or-nothing: 5, or 5 + 500 for the big ones
                assert p.count in ((5, 505) if i % 7 == 0 else (5,)), (p.name, p.count)
            assert len(g) >= 4
