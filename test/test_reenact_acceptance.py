"""Issue acceptance for the shipped reenactment generator (slow: prepares the whole training video).

    python -m pytest test/test_reenact_acceptance.py -m slow -q
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from face_tracker_core.reenact.renderer import DEFAULT_MODEL, Generator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600),
              pytest.mark.skipif(not os.path.isfile(DEFAULT_MODEL), reason="shipped reenactment generator missing")]


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    from conftest import shared_path

    from face_tracker_core.reenact.prepare import load_pairs, prepare_dataset

    video = shared_path("video", "talking_face_1.mp4")
    out = str(tmp_path_factory.mktemp("reenact") / "tf1_256")
    # Exactly the shipped model's data: Haar faces, no landmark refinement (see its model card).
    prepare_dataset(video, out, resolution=256, holdout=0.2, detector="haar", refine=0)
    return load_pairs(out)


def test_split_is_the_first_80_percent(held_out):
    meta = held_out.meta
    assert meta["frames_read"] == 1021 and meta["split_frame"] == 816
    assert held_out.frame_index[held_out.split == 1].min() >= 816


def test_ssim_on_the_last_20_percent(held_out):
    from face_tracker_core.reenact.evaluate import evaluate

    res = evaluate(Generator(DEFAULT_MODEL), held_out, landmarks=True, fps=True)
    assert res["frames"] >= 200
    assert res["ssim"] >= 0.60, res
    # More than a still of the background: better than the mean training frame, on the face too.
    assert res["ssim_face"] > res["baseline_mean_frame_ssim_face"] + 0.05, res
    assert res["landmark_error"] < 3.0, res
    assert res["gen_fps"] >= 10.0, res


def test_tflite_export_matches(tmp_path, held_out):
    from face_tracker_core.reenact.export import export_generator

    written = export_generator(DEFAULT_MODEL, str(tmp_path), formats=("tflite", "saved_model"), quantize="float16")
    lite, ref = Generator(written["tflite"]), Generator(DEFAULT_MODEL)
    sk = held_out.sketches()[-4:]
    assert np.abs(lite.predict(sk).astype(int) - ref.predict(sk)).mean() < 1.0
    assert os.path.isfile(os.path.join(written["saved_model"], "saved_model.pb"))
