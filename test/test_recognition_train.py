"""Training our embedders on real aligned faces: a tiny honest run (default) and the real one (slow)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from face_tracker_core.recognition.dataset import list_identities, split_identities


@pytest.fixture(scope="module")
def tiny_crops(tmp_path_factory):
    """Aligned crops of 6 training people x 4 photos (detected by our detector), 48 px input."""
    from face_tracker_core.recognition.faces import FaceFinder
    from face_tracker_core.recognition.embed_data import build_crops

    from conftest import shared_path

    root = shared_path("identity", "celeba")
    people = list_identities(root)
    split = split_identities(list(people))
    sub = tmp_path_factory.mktemp("celeba_sub")
    for name in split["train"][:6] + split["val"][:2]:
        os.makedirs(sub / name)
        for p in people[name][:4]:
            os.symlink(p, sub / name / os.path.basename(p))
    out = str(tmp_path_factory.mktemp("crops") / "crops.npz")
    # The subset keeps the people's names, so the same split applies to them.
    stats = build_crops(str(sub), out, FaceFinder("default"), input_size=48, padding=0.2, store_size=56,
                        cache_dir=str(tmp_path_factory.mktemp("cache")))
    assert stats["faces"] >= 0.75 * stats["photos"]
    return out


def test_crops_file_round_trip(tiny_crops):
    from face_tracker_core.recognition.embed_data import center_crop, load_crops

    d = load_crops(tiny_crops)
    assert d["images"].shape[1:] == (56, 56, 3) and d["images"].dtype == np.uint8
    assert set(d["split"]) <= {"train", "val"} and "train" in set(d["split"])
    assert center_crop(d["images"], 48).shape[1:] == (48, 48, 3)


def test_triplet_training_lowers_the_loss_on_real_faces(tiny_crops):
    import keras

    from face_tracker_core.recognition.facenet import build_facenet
    from face_tracker_core.recognition.embed_data import augment, load_crops
    from face_tracker_core.recognition.triplet import triplet_semihard_loss

    keras.utils.set_random_seed(0)
    d = load_crops(tiny_crops)
    tr = d["split"] == "train"
    rng = np.random.default_rng(0)
    x = np.stack([augment(im, 48, rng) for im in d["images"][tr]])
    y = d["label"][tr]
    net = build_facenet(48, 32, width=0.25, dropout=0.0)
    net.compile(optimizer=keras.optimizers.Adam(3e-3), loss=lambda a, b: triplet_semihard_loss(a, b, 0.2))
    net.optimizer.build(net.trainable_variables)  # else the first step is traced twice (~20 s here)
    def loss_now():  # batch statistics, as during training (the moving averages lag behind)
        return float(keras.ops.convert_to_numpy(triplet_semihard_loss(y, net(x, training=True), 0.2)))

    first = loss_now()
    for _ in range(20):
        net.train_on_batch(x, y)
    assert loss_now() < 0.7 * first


def test_cli_options_config_file_and_overrides_make_the_typed_config(tmp_path):
    """Options given on the command line override the config file, ``--set`` overrides both; the run
    name defaults to the model's."""
    import argparse

    from face_tracker_core.cli.train_embedder import add_arguments, training_config
    from face_tracker_core.errors import DataError

    (tmp_path / "e.yaml").write_text("model: siamese\nlr: 0.01\np: 8\nfilters: [8, 16]\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "e.yaml"), "--p", "16", "--train-splits", "train,identify",
                              "--set", "dim=64", "lr=0.001", "--runs", str(tmp_path)])
    cfg = training_config(args, "c.npz")
    assert (cfg.model, cfg.name, cfg.p, cfg.dim, cfg.lr, cfg.crops) == ("siamese", "siamese", 16, 64, 0.001, "c.npz")
    assert cfg.filters == (8, 16) and cfg.train_splits == ("train", "identify") and cfg.runs_root == str(tmp_path)
    with pytest.raises(DataError, match="unknown EmbedderTrainConfig keys"):
        training_config(parser.parse_args(["--set", "epochs=3"]), "c.npz")


@pytest.fixture(scope="module")
def cli_run(tiny_crops, tmp_path_factory):
    """One tiny training run through the CLI (2 epochs x 2 steps): its run folder. Shared, because
    every Keras training run here costs ~25-50 s of graph tracing however few its steps."""
    from face_tracker_core.cli.train_embedder import main

    runs = tmp_path_factory.mktemp("runs")
    rc = main(["--model", "facenet", "--crops", tiny_crops, "--runs", str(runs), "--name", "t",
               "--max-epochs", "2", "--steps-per-epoch", "2", "--p", "4", "--k", "3", "--width", "0.25",
               "--time-budget", "600"])
    assert rc == 0
    return runs / "embedder" / "t"


def test_train_cli_writes_run_folder_and_model_loads_back(tiny_crops, cli_run):
    from face_tracker_core.recognition.embedders import make_embedder
    from face_tracker_core.recognition.embed_data import center_crop, load_crops
    from face_tracker_core.recognition.embed_metrics import embed_crops

    run = cli_run
    for f in ("config.json", "config.yaml", "model.keras", "model.json", "metrics.csv", "loss.png"):
        assert (run / f).is_file(), f
    assert (run / "tensorboard").is_dir()
    card = json.loads((run / "model.json").read_text())
    assert card["input_size"] == 48 and card["loss"] == "triplet_semihard"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "val_auc" in rows[0]
    emb = make_embedder("facenet", model_path=str(run / "model.keras"))
    d = load_crops(tiny_crops)
    crops = center_crop(d["images"][:5], 48)
    import keras

    net = keras.saving.load_model(str(run / "model.keras"), compile=False)
    np.testing.assert_allclose(emb.embed_aligned(crops), embed_crops(net, crops, flip=True), atol=1e-5)


def test_fine_tune_from_init_with_weight_averaging(tiny_crops, cli_run, tmp_path):
    """--init starts from a trained run, --swa-start averages epoch ends; the kept weights are the
    best on validation among the start, every epoch and every running average, so never worse
    than the start."""
    import csv

    from face_tracker_core.cli.train_embedder import main
    from face_tracker_core.errors import DataError
    from face_tracker_core.recognition.embed_data import center_crop, load_crops
    from face_tracker_core.recognition.embed_metrics import embed_crops, pair_separability, selection_score
    from face_tracker_core.recognition.embed_trainer import EmbedderTrainConfig, train_embedder

    common = ["--model", "facenet", "--crops", tiny_crops, "--runs", str(tmp_path), "--steps-per-epoch", "2",
              "--p", "4", "--k", "3", "--width", "0.25", "--time-budget", "600"]
    start = str(cli_run / "model.keras")  # a trained run to start from
    # A 0.6 s warm-up: over after the first (traced) step on any machine, so epochs 2-3 run at the
    # constant rate (the default 30 s warm-up made this depend on the machine's speed).
    assert main(common + ["--name", "b", "--max-epochs", "3", "--init", start, "--schedule", "constant",
                          "--lr", "1e-3", "--warmup", "0.001", "--swa-start", "1"]) == 0
    run = tmp_path / "embedder" / "b"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert rows[0]["swa_val_acc"] == "nan" and 0 < float(rows[1]["swa_val_acc"]) <= 1 and float(rows[2]["swa_val_acc"]) > 0
    assert all(abs(float(r["lr"]) - 1e-3) < 1e-9 for r in rows[1:])  # constant after the warm-up
    card = json.loads((run / "model.json").read_text())
    assert card["init"] == start and card["selected"]
    d = load_crops(tiny_crops)
    va = d["split"] == "val"
    import keras

    def val_score(path):
        net = keras.saving.load_model(path, compile=False)
        return selection_score(pair_separability(embed_crops(net, center_crop(d["images"][va], 48)), d["label"][va]))

    assert val_score(str(run / "model.keras")) >= val_score(start) - 1e-6
    # A file of another network, or no file, is refused with its name.
    for bad in (str(tmp_path / "missing.keras"), os.path.join(os.path.dirname(__file__), "..", "face_tracker_core",
                                                               "assets", "embedder_siamese.keras")):
        with pytest.raises(DataError, match=os.path.basename(bad)):
            train_embedder(EmbedderTrainConfig(crops=tiny_crops, runs_root=str(tmp_path), name="c", width=0.25, p=4,
                                               k=3, max_epochs=1, steps_per_epoch=1, init=bad))
    with pytest.raises(ValueError, match="schedule"):
        EmbedderTrainConfig(crops=tiny_crops, schedule="linear")
    with pytest.raises(ValueError, match="warmup"):
        EmbedderTrainConfig(crops=tiny_crops, warmup=1.0)


def test_fold_val_trains_on_the_validation_people_and_keeps_the_last_weights(tiny_crops, tmp_path):
    """--fold-val (a fixed recipe's final run): the validation people join the training people,
    nothing is watched, so no epoch is selected and the schedule's last weights are saved."""
    import csv

    from face_tracker_core.cli.train_embedder import main
    from face_tracker_core.recognition.embed_data import load_crops

    d = load_crops(tiny_crops)
    n_train, n_val = (len(np.unique(d["label"][d["split"] == s])) for s in ("train", "val"))
    assert n_val > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["--model", "facenet", "--crops", tiny_crops, "--runs", str(tmp_path), "--name", "f",
                     "--max-epochs", "2", "--steps-per-epoch", "2", "--p", "4", "--k", "3", "--width", "0.25",
                     "--time-budget", "600", "--fold-val"]) == 0
    run = tmp_path / "embedder" / "f"
    # The plot shows the learning rate where there is no validation curve (no empty legend).
    assert (run / "loss.png").is_file() and not [w for w in caught if "artists" in str(w.message)]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["fold_val"] and cfg["train_people"] == n_train + n_val and cfg["val_people"] == 0
    assert cfg["train_faces"] == len(d["label"])
    card = json.loads((run / "model.json").read_text())
    assert card["selected"] is None and card["val"] == {} and card["train_people"] == n_train + n_val
    assert not (run / "best.weights.h5").exists()
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and "val_auc" not in rows[0]


def test_train_splits_add_the_identify_people_never_the_verification_people(tiny_crops, tmp_path):
    """--train-splits train,identify trains on the open-set test people too (more identities);
    the verification people can never be trained on, and building crops of them is refused."""
    from face_tracker_core.cli.train_embedder import main
    from face_tracker_core.recognition.embed_trainer import EmbedderTrainConfig, train_embedder

    # Re-tag two training people of the tiny crops file as open-set ("identify") people.
    z = dict(np.load(tiny_crops, allow_pickle=False))
    people = np.unique(z["label"][z["split"] == "train"])
    moved = np.isin(z["label"], people[:2])
    z["split"] = np.where(moved, "identify", z["split"])
    crops = str(tmp_path / "crops_ident.npz")
    np.savez(crops, **z)
    # No epoch: the test is about which faces are trained on (config.json), not about learning.
    common = dict(crops=crops, runs_root=str(tmp_path), model="facenet", width=0.25, p=4, k=3, max_epochs=0,
                  steps_per_epoch=1, time_budget_s=600)
    train_embedder(EmbedderTrainConfig(name="plain", **common))
    runs = tmp_path / "embedder"
    assert json.loads((runs / "plain" / "config.json").read_text())["train_people"] == len(people) - 2
    train_embedder(EmbedderTrainConfig(name="more", train_splits=("train", "identify"), **common))
    cfg = json.loads((runs / "more" / "config.json").read_text())
    assert cfg["train_people"] == len(people) and cfg["train_faces"] == int(np.isin(z["label"], people).sum())
    for bad in (["train", "verify"], ["val"], []):
        with pytest.raises(ValueError, match="train_splits"):
            EmbedderTrainConfig(name="bad", train_splits=bad, **common)
    with pytest.raises(SystemExit, match="crop-splits"):
        main(["--build-crops-only", "--crops", str(tmp_path / "x.npz"), "--crop-splits", "train,verify"])


def test_learning_rate_follows_the_schedule_within_an_epoch(tiny_crops, tmp_path):
    """The warm-up advances step by step: a first epoch longer than the warm-up must not run at
    the schedule's starting (near-zero) rate throughout."""
    import csv

    from face_tracker_core.recognition.embed_trainer import EmbedderTrainConfig, train_embedder

    budget, warmup = 600.0, 0.001
    train_embedder(EmbedderTrainConfig(crops=tiny_crops, runs_root=str(tmp_path), name="r", model="facenet",
                                       width=0.25, p=4, k=3, max_epochs=1, steps_per_epoch=3, time_budget_s=budget,
                                       lr=1e-3, warmup=warmup))
    with open(tmp_path / "embedder" / "r" / "metrics.csv") as f:
        (row,) = list(csv.DictReader(f))
    # The epoch outlasts the 0.6 s warm-up (3 steps, the first one traces the graph), so its last
    # step runs at the full rate (cosine barely started), not at the floor (1e-6) of the epoch's start.
    assert float(row["elapsed_s"]) > warmup * budget
    assert float(row["lr"]) > 5e-4


@pytest.mark.slow
def test_siamese_training_runs(tiny_crops, tmp_path):
    from face_tracker_core.cli.train_embedder import main

    rc = main(["--model", "siamese", "--crops", tiny_crops, "--runs", str(tmp_path), "--name", "s",
               "--max-epochs", "2", "--steps-per-epoch", "2", "--p", "4", "--k", "3", "--time-budget", "600"])
    assert rc == 0
    card = json.loads((tmp_path / "embedder" / "s" / "model.json").read_text())
    assert card["head"]["b"] > 0


def test_random_erasing_occludes_part_of_the_view():
    from face_tracker_core.recognition.embed_data import augment

    flat = np.full((128, 128, 3), 120, np.uint8)
    for seed in range(20):
        plain = augment(flat, 112, np.random.default_rng(seed), erase=0.0)
        erased = augment(flat, 112, np.random.default_rng(seed), erase=1.0)
        assert plain.shape == erased.shape == (112, 112, 3)
        assert np.ptp(plain) < 1e-3  # a flat crop stays flat without erasing
        changed = np.any(np.abs(erased - plain) > 1e-3, axis=2).mean()
        assert 0.005 < changed <= 0.25, changed
