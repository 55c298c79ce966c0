"""Capture writer and the desk commands: unique names, resume, never overwrite, clear disk errors."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

from face_tracker_core.cli.main import main as cli_main
from face_tracker_core.data.capture import CaptureError, CaptureWriter, IntervalGate, list_captured, parse_capture_name
from face_tracker_core.data.dataset import import_folder
from face_tracker_core.data.labelme import REVIEW_FLAG, read_labelme
from face_tracker_core.sources import SyntheticCamera
from face_tracker_core.types import BBox, Detection


def _writable(path: str) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=path)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


@contextlib.contextmanager
def read_only_dir(path: str):
    """A folder nobody can write into: chmod, and ``chattr +i`` when running as root."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o555)
    immutable = False
    if _writable(path):  # root ignores permission bits
        immutable = subprocess.run(["chattr", "+i", path], capture_output=True).returncode == 0
        if not immutable or _writable(path):
            os.chmod(path, 0o755)
            pytest.skip("cannot make a read-only folder here (root without chattr)")
    try:
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", path], capture_output=True)
        os.chmod(path, 0o755)


def frames(n, w=320, h=240):
    cam = SyntheticCamera(w, h, num_frames=n)
    return list(cam)


def test_names_are_unique_sortable_and_resume_keeps_earlier_files(tmp_path):
    a = CaptureWriter(str(tmp_path), jpeg_quality=80)
    first = [a.save(f) for f in frames(3)]
    before = {p: open(p, "rb").read() for p in first}
    b = CaptureWriter(str(tmp_path))  # second run in the same folder
    assert b.existing == (3, 3) and b.next_seq == 4
    second = [b.save(f) for f in frames(2)]
    assert all(open(p, "rb").read() == data for p, data in before.items())
    names = list_captured(str(tmp_path))
    assert names == sorted(first + second) == first + second
    assert [parse_capture_name(p)[2] for p in names] == [1, 2, 3, 4, 5]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temp files left behind


def test_never_overwrites_a_file_that_took_the_next_name(tmp_path):
    w = CaptureWriter(str(tmp_path))
    squatter = tmp_path / f"face_{w.session}_000001.jpg"
    squatter.write_bytes(b"someone else's file")
    path = w.save(frames(1)[0])
    assert squatter.read_bytes() == b"someone else's file"
    assert parse_capture_name(path)[2] == 2


def test_max_frames_and_interval_gate(tmp_path):
    w = CaptureWriter(str(tmp_path), max_frames=2)
    w.save(frames(1)[0])
    w.save(frames(1)[0])
    assert w.full
    with pytest.raises(CaptureError, match="max_frames=2"):
        w.save(frames(1)[0])
    g = IntervalGate(0.5)
    accepted = []
    for t in np.arange(0, 2.0, 0.1):
        if g.ready(t):
            g.mark(t)
            accepted.append(round(t, 1))
    assert accepted == [0.0, 0.5, 1.0, 1.5]


def test_write_labels_writes_labelme_for_review(tmp_path):
    w = CaptureWriter(str(tmp_path), write_labels=True)
    dets = [Detection(BBox(10, 20, 60, 80), 0.9), Detection(BBox(300, 200, 400, 300), 0.5)]  # 2nd sticks out
    path = w.save(frames(1)[0], dets, stamp=12.5, frame_id="cam", detector="haar")
    rec, warnings = read_labelme(os.path.splitext(path)[0] + ".json")
    assert rec.boxes == (BBox(10, 20, 60, 80), BBox(300, 200, 320, 240))
    assert rec.extra["flags"] == {REVIEW_FLAG: True} and rec.extra["stamp"] == 12.5
    assert os.path.samefile(rec.image_path, path)


def test_read_only_folder_is_a_clear_error(tmp_path):
    with read_only_dir(str(tmp_path / "ro")) as ro:
        with pytest.raises(CaptureError, match="not writable"):
            CaptureWriter(ro)
        with pytest.raises(CaptureError, match="not writable"):
            CaptureWriter(os.path.join(ro, "sub"))  # cannot even be created


def test_disk_full_stops_with_a_clear_message(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        w = CaptureWriter(str(mnt), jpeg_quality=80)
        with pytest.raises(CaptureError, match="disk full"):
            for f in frames(10):
                w.save(f)
        assert 0 < w.saved < 10
        assert not [n for n in os.listdir(mnt) if n.startswith(".tmp")]  # partial file cleaned up
        for p in list_captured(str(mnt)):
            assert os.path.getsize(p) > 1000  # every file that exists is complete
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_cli_capture_twice_keeps_earlier_files(tmp_path, capsys):
    out = str(tmp_path / "cap")
    assert cli_main(["capture", "--source", "synthetic", "--out", out, "--count", "3", "--interval", "0.1"]) == 0
    first = {p: os.path.getmtime(p) for p in list_captured(out)}
    assert cli_main(["capture", "--source", "synthetic", "--out", out, "--count", "2", "--interval", "1"]) == 0
    after = list_captured(out)
    assert len(after) == 5 and all(os.path.getmtime(p) == t for p, t in first.items())
    assert "2 frames saved" in capsys.readouterr().out


def test_cli_label_writes_review_files_and_keeps_hand_labels(shared_data, tmp_path, capsys):
    src = shared_data("detection", "dlib_faces")
    stems = sorted(os.path.splitext(n)[0] for n in os.listdir(src) if n.endswith(".jpg"))[:3]
    for s in stems:
        shutil.copy(os.path.join(src, s + ".jpg"), tmp_path / (s + ".jpg"))
    shutil.copy(os.path.join(src, stems[0] + ".json"), tmp_path / (stems[0] + ".json"))  # a hand label
    hand = (tmp_path / (stems[0] + ".json")).read_bytes()
    assert cli_main(["label", str(tmp_path), "--detector", "haar"]) == 0
    assert (tmp_path / (stems[0] + ".json")).read_bytes() == hand
    for s in stems[1:]:
        doc = json.load(open(tmp_path / (s + ".json")))
        assert doc["flags"] == {REVIEW_FLAG: True} and doc["auto_label"]["detector"]
    assert "2 label files written" in capsys.readouterr().out
    rep = import_folder(str(tmp_path))
    assert rep.ok and len(rep.samples) == 3
    assert sum("not reviewed" in str(w) for w in rep.warnings) == 2
    # A second run changes nothing (and the former spelling --backend still selects the detector).
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    assert cli_main(["label", str(tmp_path), "--backend", "haar"]) == 0
    assert before == {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
