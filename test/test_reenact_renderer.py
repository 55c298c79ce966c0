"""Run-time reenactment with the shipped generator: camera frame -> target face."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from face_tracker_core.errors import ModelLoadError
from face_tracker_core.reenact.renderer import DEFAULT_MODEL, Generator, Reenactor, meta_path, side_by_side

pytestmark = pytest.mark.skipif(not os.path.isfile(DEFAULT_MODEL), reason="shipped reenactment generator missing")


@pytest.fixture(scope="module")
def generator():
    return Generator(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def driver_frames():
    from conftest import shared_path

    cap = cv2.VideoCapture(shared_path("video", "talking_face_2.mp4"))
    frames = []
    for i in range(40):
        ok, f = cap.read()
        if not ok:
            break
        if i % 10 == 0:
            frames.append(f)
    cap.release()
    return frames


def test_shipped_generator_metadata(generator):
    assert generator.resolution == 256
    assert generator.reference.shape == (68, 2)
    assert os.path.getsize(DEFAULT_MODEL) < 10e6, "shipped weights must stay under 10 MB"
    assert generator.model.count_params() < 2.5e6


@pytest.mark.parametrize("mode", ["relative", "similarity"])
def test_another_speaker_drives_the_target(generator, driver_frames, mode):
    from face_tracker_core.reenact.evaluate import landmark_error

    rea = Reenactor(generator=generator, normalise=mode)
    results = [rea.process(f) for f in driver_frames]
    assert all(r is not None for r in results), "a face in every frame of talking_face_2"
    outs = np.stack([r.output for r in results])
    assert outs.shape == (len(driver_frames), 256, 256, 3) and outs.dtype == np.uint8
    assert outs.std() > 20, "a real image, not a flat one"
    # The output face follows the sketch: dlib finds the sketched landmarks on it again.
    err = landmark_error(outs, np.stack([r.placed for r in results]))["landmark_error"]
    assert err < 4.0, f"output landmarks {err:.1f} px from the sketch"
    sbs = side_by_side(driver_frames[0], results[0].sketch, results[0].output)
    assert sbs.shape[0] == 256 and sbs.shape[1] > 3 * 256 - 1


def test_no_face_gives_none(generator):
    rea = Reenactor(generator=generator)
    assert rea.process(np.zeros((240, 320, 3), np.uint8)) is None


def test_bad_models_are_clear_errors(tmp_path, generator):
    with pytest.raises(ModelLoadError, match="not found"):
        Generator(str(tmp_path / "nope.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip" * 100)
    with pytest.raises(ModelLoadError, match="metadata"):
        Generator(str(bad))  # no sidecar yet
    shutil.copyfile(meta_path(DEFAULT_MODEL), meta_path(str(bad)))
    with pytest.raises(ModelLoadError, match="bad.keras"):
        Generator(str(bad))
    # A sidecar that disagrees with the network.
    other = tmp_path / "other.keras"
    shutil.copyfile(DEFAULT_MODEL, other)
    meta = dict(generator.meta, resolution=128)
    with open(meta_path(str(other)), "w") as f:
        json.dump(meta, f)
    with pytest.raises(ModelLoadError, match="128"):
        Generator(str(other))
    with pytest.raises(ValueError):
        Reenactor(generator=generator, normalise="sideways")
