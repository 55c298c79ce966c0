"""Reenactment pipeline on real data: prepare -> train (tiny) -> resume -> evaluate -> export.

Uses the first frames of ``talking_face_2.mp4`` at 64 px so that the whole file stays well under a
minute on CPU; the full-size training is the (GPU) run documented in the model card, checked by
the ``slow`` test in ``test_reenact_shipped.py``.
"""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from face_tracker_core.errors import DataError
from face_tracker_core.reenact.prepare import load_pairs, prepare_dataset


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    from conftest import shared_path

    video = shared_path("video", "talking_face_2.mp4")
    out = str(tmp_path_factory.mktemp("reenact") / "tf2_64")
    meta = prepare_dataset(video, out, resolution=64, num=16, holdout=0.25)
    return out, meta


def test_prepare_writes_pairs_with_a_held_out_tail(pairs):
    out, meta = pairs
    assert meta["frames_read"] == 16 and meta["split_frame"] == 12
    assert meta["pairs_train"] + meta["pairs_test"] + len(meta["skipped_frames"]) == 16
    assert meta["pairs_train"] >= 10 and meta["pairs_test"] >= 3
    data = load_pairs(out)
    assert data.frames.shape == (len(data), 64, 64, 3) and data.frames.dtype == np.uint8
    # Held-out frames come strictly after the training ones.
    assert data.frame_index[data.split == 0].max() < data.frame_index[data.split == 1].min()
    # Landmarks fall inside the crop, and the face is around its middle.
    assert data.landmarks.min() > 0 and data.landmarks.max() < 64
    assert abs(data.landmarks[..., 0].mean() - 32) < 8
    sk = data.sketches()
    assert sk.shape == data.frames.shape and sk.max() > 200
    assert os.path.isfile(os.path.join(out, "preview.png"))
    assert len(meta["reference_landmarks"]) == 68


def _write_video(path: str, frames) -> None:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(f)
    vw.release()


def test_video_without_faces_is_a_clear_error(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None], (96, 1, 3))
    path = str(tmp_path / "noface.avi")
    _write_video(path, [np.roll(ramp, 3 * i, axis=1) for i in range(8)])
    with pytest.raises(DataError, match="no face found in any of the 8 frames"):
        prepare_dataset(path, str(tmp_path / "out"), resolution=64)
    assert not os.path.exists(tmp_path / "out" / "pairs.npz"), "no empty dataset written"


@pytest.mark.parametrize("content", [b"", b"\x00\x01garbage" * 500])
def test_corrupt_or_missing_video_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken.mp4"):
        prepare_dataset(str(path), str(tmp_path / "out"), resolution=64)
    with pytest.raises(DataError, match="no such video"):
        prepare_dataset(str(tmp_path / "missing.mp4"), str(tmp_path / "out"), resolution=64)


def test_truncated_dataset_is_a_clear_error(tmp_path, pairs):
    out, _ = pairs
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "meta.json").write_text(open(os.path.join(out, "meta.json")).read())
    (bad / "pairs.npz").write_bytes(open(os.path.join(out, "pairs.npz"), "rb").read()[:200])
    with pytest.raises(DataError, match="bad"):
        load_pairs(str(bad))


def test_tiny_training_resumes_evaluates_and_exports(tmp_path, pairs):
    from face_tracker_core.reenact.evaluate import evaluate
    from face_tracker_core.reenact.export import export_generator
    from face_tracker_core.reenact.renderer import Generator
    from face_tracker_core.reenact.training import Pix2PixTrainConfig, train

    out, _ = pairs
    run = str(tmp_path / "run")
    cfg = Pix2PixTrainConfig(base_filters=8, max_filters=16, d_base_filters=8, d_max_filters=16, batch_size=4,
                             epochs=2, ckpt_every=1, sample_every=2, eval_every=2, limit=8, jit_compile=False)
    model = train(out, run, cfg, verbose=0)
    for f in ("config.json", "config.yaml", "ckpt.keras", "generator.keras", "generator.json", "metrics.csv",
              "samples.png", "loss.png"):
        assert os.path.isfile(os.path.join(run, f)), f
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(os.path.join(run, "tensorboard", "train")))
    # Resume: one more epoch continues the same run.
    model = train(out, run, cfg.replace(epochs=3), verbose=0)
    with open(os.path.join(run, "state.json")) as f:
        assert json.load(f)["next_epoch"] == 3
    rows = open(os.path.join(run, "metrics.csv")).read().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]
    assert int(model.optimizer.iterations.numpy()) == 3 * 2  # 8 pairs / batch 4 per epoch

    # The saved generator reproduces the in-memory one.
    gen = Generator(os.path.join(run, "generator.keras"))
    data = load_pairs(out)
    sk = data.sketches()[:3]
    want = np.clip((model.generator(sk.astype("float32") / 127.5 - 1, training=False).numpy() + 1) * 127.5 + 0.5,
                   0, 255).astype(np.uint8)
    got = gen.predict(sk)
    assert got.dtype == np.uint8 and got.shape == sk.shape
    assert np.abs(got.astype(int) - want).max() <= 1

    res = evaluate(gen, data, landmarks=True, grid_path=str(tmp_path / "grid.png"))
    assert res["frames"] == int((data.split == 1).sum())
    assert -1 <= res["ssim"] <= 1 and 0 <= res["l1"] <= 1 and res["gen_fps"] > 0
    assert res["landmark_error_real"] < res["landmark_error"] + 50
    assert cv2.imread(str(tmp_path / "grid.png")).shape == (3 * 64, res["frames"] * 64, 3)

    # Export: .keras + TFLite agree with the run's generator.
    written = export_generator(run, str(tmp_path / "export"), formats=("keras", "tflite"))
    lite = Generator(written["tflite"])
    assert np.abs(lite.predict(sk).astype(int) - got).max() <= 2


def test_pix2pix_l1_decreases_on_a_fixed_batch():
    import keras

    from face_tracker_core.reenact.patchgan import PatchGANConfig
    from face_tracker_core.reenact.pix2pix import Pix2Pix, paper_optimizer
    from face_tracker_core.reenact.unet import UNetConfig

    keras.utils.set_random_seed(1)
    m = Pix2Pix(UNetConfig(resolution=32, base_filters=8, max_filters=16, dropout=0.0),
                PatchGANConfig(base_filters=8, max_filters=16, stride2_layers=2))
    m.compile(optimizer=paper_optimizer(2e-3), jit_compile=False)
    m.optimizer.build(m.trainable_variables)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    # A target the U-Net can learn from its input: a smooth colour ramp modulated by the sketch.
    ramp = np.linspace(40, 200, 32, dtype=np.float32)[None, :, None, None]
    y = np.clip(ramp + 0.2 * x, 0, 255).astype(np.uint8).transpose(0, 2, 1, 3)
    hist = m.fit(x, y, batch_size=4, epochs=20, verbose=0).history["g_l1"]
    assert hist[-1] < 0.6 * hist[0], hist


def test_train_cli_reads_config_options_and_overrides(tmp_path, pairs):
    """``reenact train``: ``--config`` file, then the options given, then ``--set`` (the options not given
    keep the file's values), like the other ``train`` commands."""
    from face_tracker_core.cli.main import main

    out, _ = pairs
    cfg = tmp_path / "p2p.yaml"
    cfg.write_text("base_filters: 8\nmax_filters: 16\nd_base_filters: 8\nd_max_filters: 16\nbatch_size: 4\n"
                   "epochs: 5\nlimit: 4\njit_compile: false\neval_every: 50\nsample_every: 50\nverbose: 0\n")
    assert main(["reenact", "train", "--data", out, "--config", str(cfg), "--runs", str(tmp_path / "runs"),
                 "--name", "cli", "--epochs", "1", "--set", "dropout=0.25"]) == 0
    with open(tmp_path / "runs" / "reenact" / "cli" / "config.json") as f:
        resolved = json.load(f)
    assert (resolved["epochs"], resolved["base_filters"], resolved["dropout"], resolved["limit"]) == (1, 8, 0.25, 4)
