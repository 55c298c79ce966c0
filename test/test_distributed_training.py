"""Data-parallel training on the real engine (Keras distribution API on JAX-CPU), no DDS involved.

Each training runs in its own process: the device count (``XLA_FLAGS``) and the Keras backend must
be fixed before JAX/Keras are imported. Compared:

* 2 CPU devices in one process (``--devices 2``) against 1 device on the same global batches;
* 2 processes on localhost (``--num-hosts 2``, coordinator on 127.0.0.1) against 1 device trained
  on the same global batches (``--data-shards 2`` builds both hosts' shards in one process).

The runs record in ``replicas.json`` how the global batch was split and how far the replicas'
weights are apart; the test also checks that the loss falls and that the weights match the
single-device run within float tolerance.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from face_tracker_core.errors import DataError
from face_tracker_core.engine.distributed import DistConfig, Topology, shard_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "{input_size: 32, stem: 8, widths: [8, 16, 16, 16], depths: [0, 0, 0, 0], neck: 8}"
BATCH, STEPS, EPOCHS = 8, 3, 2
TIMEOUT_S = 420


def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT,
               TMPDIR=str(tmp_path / "scratch"))
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    os.makedirs(env["TMPDIR"], exist_ok=True)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """12 labelled facemask photos (train and val by the file-name hash) and 4 no-face scenes."""
    from conftest import shared_path

    from face_tracker_core.eval.detection_split import split_of

    root = tmp_path_factory.mktemp("det")
    src = shared_path("detection", "facemask")
    want = {"train": 8, "val": 4}
    os.makedirs(root / "facemask")
    for name in sorted(os.listdir(src)):
        stem, ext = os.path.splitext(name)
        if ext == ".jpg" and os.path.isfile(os.path.join(src, stem + ".json")) and want.get(split_of("facemask", name), 0):
            want[split_of("facemask", name)] -= 1
            for f in (name, stem + ".json"):
                shutil.copy(os.path.join(src, f), root / "facemask" / f)
    os.makedirs(root / "noface")
    for name in sorted(os.listdir(shared_path("detection", "noface")))[:4]:
        shutil.copy(os.path.join(shared_path("detection", "noface"), name), root / "noface" / name)
    return str(root)


@pytest.fixture(scope="module")
def init_weights(tmp_path_factory):
    """Starting weights shared by every run (so the runs' updates can be compared)."""
    import keras

    from face_tracker_core.models.face_detector import DetectorConfig, build_face_detector

    keras.utils.set_random_seed(0)
    model = build_face_detector(DetectorConfig.from_config(
        {"input_size": 32, "stem": 8, "widths": [8, 16, 16, 16], "depths": [0, 0, 0, 0], "neck": 8}))
    path = str(tmp_path_factory.mktemp("init") / "init.keras")
    model.save(path)
    return path, [np.asarray(w) for w in model.get_weights()]


def _detector(tmp_path, data: str, init: str, runs: str, name: str, *dist: str, env=None) -> subprocess.Popen:
    sets = [f"name={name}", f"runs_root={runs}", f"data_root={data}", "sets=[facemask, noface]", f"model={MODEL}",
            f"batch_size={BATCH}", f"steps_per_epoch={STEPS}", f"epochs={EPOCHS}", "lr=0.01", "warmup_epochs=0",
            "workers=0", "tensorboard=false", "jit_compile=true", "verbose=0", f"init_weights={init}", "seed=3"]
    cmd = [sys.executable, "-m", "face_tracker_core.train.detector_trainer", "--set", *sets, *dist]
    return subprocess.Popen(cmd, cwd=ROOT, env=env or _env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(*procs: subprocess.Popen) -> None:
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=TIMEOUT_S)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]


def _losses(run_dir: str) -> list:
    with open(os.path.join(run_dir, "metrics.csv")) as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


def _weights(path: str) -> list:
    import keras

    import face_tracker_core.models.face_detector  # noqa: F401  (registers the custom layers)

    return [np.asarray(w) for w in keras.saving.load_model(path, compile=False).get_weights()]


def _assert_same_training(run_a: str, run_b: str, w0: list) -> None:
    """Same losses, and the weight updates of B equal those of A within float tolerance."""
    la, lb = _losses(run_a), _losses(run_b)
    assert len(la) == EPOCHS and la[-1] < la[0], la  # the loss falls
    np.testing.assert_allclose(lb, la, rtol=1e-4)
    wa, wb = _weights(os.path.join(run_a, "last.keras")), _weights(os.path.join(run_b, "last.keras"))
    da = np.concatenate([(a - z).ravel() for a, z in zip(wa, w0)])
    db = np.concatenate([(b - z).ravel() for b, z in zip(wb, w0)])
    assert np.linalg.norm(da) > 0.1  # it did train
    # Adam moves every weight by up to lr per step, so differing batches would differ by ~1e-2.
    assert np.linalg.norm(da - db) / np.linalg.norm(da) < 1e-3, np.linalg.norm(da - db) / np.linalg.norm(da)
    assert np.max(np.abs(da - db)) < 1e-4, np.max(np.abs(da - db))


@pytest.mark.timeout(2 * TIMEOUT_S)
def test_two_devices_in_one_process_match_one_device(tmp_path, tiny_data, init_weights):
    init, w0 = init_weights
    one = _detector(tmp_path, tiny_data, init, str(tmp_path / "runs"), "one")
    two = _detector(tmp_path, tiny_data, init, str(tmp_path / "runs"), "two", "--devices", "2")
    _finish(one, two)
    run_one, run_two = (str(tmp_path / "runs" / "detect" / n) for n in ("one", "two"))
    with open(os.path.join(run_two, "replicas.json")) as fh:
        rep = json.load(fh)
    assert rep["replicas"] == 2 and rep["hosts"] == 1
    assert rep["global_batch_rows"] == BATCH and rep["rows_per_device"] == BATCH // 2   # split, not duplicated
    assert rep["max_replica_spread"] == 0.0 and rep["hosts_agree"]
    with open(os.path.join(run_two, "config.json")) as fh:
        assert json.load(fh)["distributed"]["replicas"] == 2
    assert not os.path.exists(os.path.join(run_one, "replicas.json"))  # one device: nothing distributed
    _assert_same_training(run_one, run_two, w0)


@pytest.mark.timeout(2 * TIMEOUT_S)
def test_two_processes_on_localhost_match_one_device_on_the_same_global_batch(tmp_path, tiny_data, init_weights):
    init, w0 = init_weights
    port = _free_port()
    hosts = [_detector(tmp_path, tiny_data, init, str(tmp_path / "runs"), "mp", "--num-hosts", "2", "--host-index",
                       str(i), "--coordinator", f"127.0.0.1:{port}") for i in range(2)]
    ref = _detector(tmp_path, tiny_data, init, str(tmp_path / "ref"), "ref", "--data-shards", "2")
    _finish(*hosts, ref)
    run = str(tmp_path / "runs" / "detect" / "mp")
    assert os.listdir(tmp_path / "runs" / "detect") == ["mp"]           # only host 0 wrote a run folder
    assert not [f for f in os.listdir(tmp_path / "scratch") if f.startswith("ft-host")]  # host 1's scratch is gone
    with open(os.path.join(run, "replicas.json")) as fh:
        rep = json.load(fh)
    assert rep["hosts"] == 2 and rep["replicas"] == 2 and rep["data_shards"] == 2
    assert rep["rows_per_host"] == BATCH // 2 and rep["rows_per_device"] == BATCH // 2
    assert rep["hosts_agree"] and rep["max_replica_spread"] == 0.0
    _assert_same_training(str(tmp_path / "ref" / "detect" / "ref"), run, w0)


def test_layout_errors_are_clear():
    with pytest.raises(DataError, match="host-index"):
        DistConfig(num_hosts=2, host_index=2, coordinator="127.0.0.1:1234").check()
    with pytest.raises(DataError, match="coordinator"):
        DistConfig(num_hosts=2).check()
    with pytest.raises(DataError, match="HOST:PORT"):
        DistConfig(num_hosts=2, coordinator="localhost").check()
    with pytest.raises(DataError, match="multiple"):
        DistConfig(num_hosts=2, coordinator="h:1", data_shards=3).check()
    with pytest.raises(DataError, match="split evenly"):
        Topology(DistConfig(devices=2), devices=["a", "b"]).shard_size(7)
    assert Topology(DistConfig(devices=2), devices=["a", "b"]).shard_size(8) == 8
    assert Topology(DistConfig(num_hosts=2, host_index=1, coordinator="h:1", data_shards=4),
                    devices=["a", "b"]).local_shards() == [2, 3]


def test_shard_seeds_keep_one_shard_and_differ_between_shards():
    assert shard_seed(7, 1, 0) == 7   # one shard: the single-device batches
    seeds = {shard_seed(s, n, k) for s in range(3) for n in (2, 4) for k in range(n)}
    assert len(seeds) == 3 * 6


def test_wrong_backend_is_refused_before_training(tmp_path):
    code = ("import keras; from face_tracker_core.engine.distributed import DistConfig, prepare_process\n"
            "prepare_process(DistConfig(devices=2))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path, KERAS_BACKEND="tensorflow"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "KERAS_BACKEND=jax" in out.stderr, out.stderr[-2000:]


@pytest.fixture(scope="module")
def synthetic_crops(tmp_path_factory):
    """A crops file of 6 training and 2 validation "people" (4 photos each): each person a fixed
    random pattern, each photo that pattern with its own noise (no data needed)."""
    import cv2

    rng = np.random.default_rng(0)
    blobs, labels, splits, names, paths = [], [], [], [], []
    for person in range(8):
        names.append(f"p{person}")
        pattern = cv2.resize(rng.uniform(0, 255, (7, 7, 3)), (56, 56), interpolation=cv2.INTER_CUBIC)
        for photo in range(4):
            img = np.clip(pattern + rng.normal(0, 12, pattern.shape), 0, 255).astype(np.uint8)
            blobs.append(np.frombuffer(cv2.imencode(".jpg", img)[1].tobytes(), np.uint8))
            labels.append(person)
            splits.append("train" if person < 6 else "val")
            paths.append(f"p{person}/{photo}.jpg")
    out = str(tmp_path_factory.mktemp("crops") / "crops.npz")
    np.savez(out, jpeg=np.concatenate(blobs), offsets=np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64),
             label=np.array(labels, np.int32), person=np.array(names), split=np.array(splits), path=np.array(paths),
             meta=np.array(json.dumps({"input_size": 48, "padding": 0.2, "store_size": 56, "store_padding": 0.3})))
    return out


@pytest.mark.timeout(2 * TIMEOUT_S)
def test_embedder_on_two_devices_matches_one_device(tmp_path, synthetic_crops):
    """A triplet-training step (semi-hard mining over the whole global batch) on 2 devices in one
    process against 1 device: same loss, same weights within float tolerance.

    One step only: the embedder's batch threads may hand an epoch's batches out in any order (and
    prefetch across epochs), so later steps of two runs need not see the same batches.
    """
    args = ["--crops", synthetic_crops, "--runs", str(tmp_path / "runs"), "--max-epochs", "1", "--steps-per-epoch",
            "1", "--p", "4", "--k", "4", "--width", "0.25", "--dropout", "0", "--schedule", "constant", "--warmup", "0",
            "--time-budget", "100000", "--seed", "1"]
    cmd = [sys.executable, "-m", "face_tracker_core.cli.train_embedder", *args]
    kw = dict(cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _finish(subprocess.Popen(cmd + ["--name", "one"], **kw), subprocess.Popen(cmd + ["--name", "two", "--devices", "2"], **kw))
    runs = tmp_path / "runs" / "embedder"
    with open(runs / "two" / "replicas.json") as fh:
        rep = json.load(fh)
    assert rep["replicas"] == 2 and rep["global_batch_rows"] == 16 and rep["rows_per_device"] == 8
    assert rep["max_replica_spread"] == 0.0
    la, lb = (_losses(str(runs / n)) for n in ("one", "two"))
    assert len(la) == 1 and la[0] > 0
    np.testing.assert_allclose(lb, la, rtol=1e-5)
    import face_tracker_core.recognition.facenet  # noqa: F401  (registers the custom layers)

    wa, wb = _weights(str(runs / "one" / "model.keras")), _weights(str(runs / "two" / "model.keras"))
    diff = np.concatenate([np.abs(a - b).ravel() for a, b in zip(wa, wb)])
    # Adam's first step moves each weight by lr * sign(gradient): where a gradient is at the level
    # of float noise its sign may flip (measured: ~0.6 % of the weights); nothing else may differ.
    assert np.mean(diff > 1e-6) < 0.03, np.mean(diff > 1e-6)
    assert diff.max() <= 2 * 2e-3 * 1.01, diff.max()
