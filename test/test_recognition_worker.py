"""Embedding in a child process (recognition/worker.py) and asynchronous per-track identification.

Real dlib embedder in a real child process; every wait is bounded in time."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from face_tracker_core.errors import ModelLoadError
from face_tracker_core.recognition import Gallery, Identifier, TrackIdentifier, make_embedder
from face_tracker_core.recognition.worker import EmbedWorkerError, ProcessEmbedder
from face_tracker_core.sources import SyntheticCamera, embedded_photo
from face_tracker_core.types import BBox, Track


@pytest.fixture(scope="module")
def local():
    return make_embedder("dlib")


@pytest.fixture(scope="module")
def remote():
    with ProcessEmbedder("dlib", restart_s=0.0) as pe:
        yield pe


def _face(cam, t):
    return BBox(*cam.face_in_frame(t))


def _answers(pe, n=1, timeout=60.0):
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += pe.poll(timeout=0.5)
    assert len(got) >= n, f"no answer from the embedding process in {timeout} s"
    return got


def test_same_vectors_as_in_process_and_answers_never_mix(local, remote):
    cam = SyntheticCamera(640, 480, fps=10.0)
    frames = [cam.render(t) for t in (0.0, 0.5)]
    boxes = [_face(cam, t) for t in (0.0, 0.5)]
    assert remote.model_id == local.model_id and remote.dim == 128 and "own process" in remote.describe()
    np.testing.assert_allclose(remote.embed(frames[0], [boxes[0]]), local.embed(frames[0], [boxes[0]]), atol=1e-5)
    # An asynchronous request is answered through poll(), also when a blocking call of another
    # user (enrolment, the appearance hook) reads the pipe first.
    job = remote.submit(frames[1], [boxes[1], boxes[1]])
    assert remote.pending == 1
    v0 = remote.embed(frames[0], [boxes[0]])
    assert v0.shape == (1, 128)
    (got, vecs), = _answers(remote)
    assert got == job and vecs.shape == (2, 128) and remote.pending == 0
    np.testing.assert_allclose(vecs[0], local.embed(frames[1], [boxes[1]])[0], atol=1e-5)
    assert remote.embed(frames[0], []).shape == (0, 128)


def test_a_killed_process_is_reported_then_restarted(remote):
    cam = SyntheticCamera(640, 480, fps=10.0)
    frame, box = cam.render(0.0), _face(cam, 0.0)
    before = remote.restarts
    job = remote.submit(frame, [box] * 6)  # a few seconds of work: still running when killed
    os.kill(remote.pid, signal.SIGKILL)
    (got, err), = _answers(remote)
    assert got == job and isinstance(err, EmbedWorkerError) and "lost" in str(err)
    assert remote.embed(frame, [box]).shape == (1, 128)  # a fresh process took over
    assert remote.restarts == before + 1 and remote.alive


def test_sigint_to_the_process_group_leaves_the_embedder_to_its_parent(remote):
    """Ctrl-C reaches every process of the terminal's group: the embedding process ignores SIGINT
    (its parent stops it), so it neither dies nor loses an answer."""
    cam = SyntheticCamera(640, 480, fps=10.0)
    frame, box = cam.render(0.0), _face(cam, 0.0)
    assert remote.embed(frame, [box]).shape == (1, 128)  # ready (a restarted process has loaded)
    pid, restarts = remote.pid, remote.restarts
    job = remote.submit(frame, [box] * 3)
    os.kill(pid, signal.SIGINT)
    (got, vecs), = _answers(remote)
    assert got == job and vecs.shape == (3, 128)
    assert remote.alive and remote.pid == pid and remote.restarts == restarts


def test_missing_weights_give_one_clear_error(tmp_path):
    bad = str(tmp_path / "no_such_model.dat")
    with pytest.raises(ModelLoadError, match="no_such_model.dat"):
        ProcessEmbedder("dlib", model_path=bad)


def test_async_track_identifier_names_the_track_without_holding_the_frames(local, remote, tmp_path):
    cam = SyntheticCamera(640, 480, fps=10.0, num_frames=0)
    photo = embedded_photo()
    with Gallery(str(tmp_path / "g.db"), model_id=local.model_id, dim=128) as g:
        g.add("eileen", local.embed(cam.render(0.0), [_face(cam, 0.0)]))
        ti = TrackIdentifier(Identifier(remote, g), refresh_s=1.0, worker=remote)
        first = ti.update(cam.render(0.0), [Track("7", _face(cam, 0.0), 0.9, confirmed=True, hits=5)], now=0.0)
        # The frame came back at once: the vector is still being computed in the other process.
        assert first[0].identity is None and remote.pending == 1
        named, t, deadline, most = None, 0.0, time.monotonic() + 60.0, 1
        while named is None and time.monotonic() < deadline:
            t += 0.1
            out = ti.update(cam.render(t), [Track("7", _face(cam, t), 0.9, confirmed=True, hits=5)], now=t)
            named = out[0].identity
            most = max(most, remote.pending)
            time.sleep(0.02)
        assert named == "eileen"
        # One request in flight at a time, none sent while waiting (a refresh may leave with the
        # answer's frame when the answer took longer than refresh_s of frame time).
        assert most == 1 and ti.embed_calls <= 2
        # A track that died while its request was in flight is not brought back.
        ti.update(photo, [Track("8", BBox(165.0, 50.0, 260.0, 165.0), 0.9, confirmed=True, hits=5)], now=t + 5)
        assert remote.pending == 1
        deadline = time.monotonic() + 60.0
        while remote.pending and time.monotonic() < deadline:
            ti.update(photo, [], now=t + 5.1)
            time.sleep(0.05)
        ti.update(photo, [], now=t + 5.2)
        assert ti.identity("8") is None and ti.identity("7") is None


def test_async_identification_pauses_while_the_process_is_down(local, tmp_path):
    cam = SyntheticCamera(640, 480, fps=10.0, num_frames=0)
    with ProcessEmbedder("dlib", restart_s=3600.0) as pe, \
            Gallery(str(tmp_path / "g.db"), model_id=local.model_id, dim=128) as g:
        ti = TrackIdentifier(Identifier(pe, g), refresh_s=1.0, worker=pe)
        track = [Track("7", _face(cam, 0.0), 0.9, confirmed=True, hits=5)]
        ti.update(cam.render(0.0), track, now=0.0)
        os.kill(pe.pid, signal.SIGKILL)
        deadline, t = time.monotonic() + 30.0, 0.0
        while ti.worker_errors == 0 and time.monotonic() < deadline:
            t += 0.1
            ti.update(cam.render(t), track, now=t)  # frames keep flowing, nothing raises
            time.sleep(0.02)
        assert ti.worker_errors == 1 and ti.identity("7") is None
        # Down and not restartable yet: further frames pass, errors are counted, not raised.
        for k in range(30):
            ti.update(cam.render(t + 1.0 + k * 0.1), track, now=t + 1.0 + k * 0.1)
        assert ti.worker_errors >= 2
        with pytest.raises(EmbedWorkerError):
            pe.embed(cam.render(0.0), [_face(cam, 0.0)])
