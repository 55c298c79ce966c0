"""Attribute model: a small real training run through the CLI, save/load, predictor, transfer freezing.

The run here is deliberately tiny (48 real CelebA photos cropped from given boxes, 32 px, a few
epochs): it checks the pipeline and that learning happens, not the accuracy target (that is the
``slow`` test in ``test_attributes_slow.py``).
"""

from __future__ import annotations

import csv
import glob
import json
import os

import numpy as np
import pytest

from face_tracker_core.attributes.celeba import CELEBA_ATTRIBUTES, read_attributes
from face_tracker_core.attributes.metrics import attribute_report, majority_classes, roc_auc, tar_at_far
from face_tracker_core.errors import ModelLoadError
from face_tracker_core.types import BBox

N_PHOTOS = 48


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Train through ``face-tracker train attributes`` on 48 photos with CelebA-style given boxes."""
    from conftest import shared_path

    attr_dir = shared_path("attributes", "celeba")
    box_dir = shared_path("detection", "celeba_one_face")
    table = read_attributes(os.path.join(attr_dir, "list_attr_celeba.txt"))
    tmp = tmp_path_factory.mktemp("attr")
    rows, boxes = [], []
    for img, lab in zip(table.images, table.labels):
        js = os.path.join(box_dir, os.path.splitext(img)[0] + ".json")
        if not os.path.isfile(js):
            continue
        with open(js) as fh:
            (x1, y1), (x2, y2) = json.load(fh)["shapes"][0]["points"]
        rows.append(img + " " + " ".join("1" if v else "-1" for v in lab))
        boxes.append(f"{img} {int(min(x1, x2))} {int(min(y1, y2))} {int(abs(x2 - x1))} {int(abs(y2 - y1))}")
        if len(rows) == N_PHOTOS:
            break
    attr_file = tmp / "list_attr.txt"
    attr_file.write_text(f"{len(rows)}\n{' '.join(table.names)}\n" + "\n".join(rows) + "\n")
    bbox_file = tmp / "list_bbox.txt"
    bbox_file.write_text(f"{len(boxes)}\nimage_id x_1 y_1 width height\n" + "\n".join(boxes) + "\n")
    from face_tracker_core.cli.main import main

    args = ["train", "attributes", "--attr-file", str(attr_file), "--images", os.path.join(attr_dir, "images"),
            "--bbox-file", str(bbox_file), "--name", "tiny", "--runs", str(tmp / "runs"), "--cache",
            str(tmp / "cache"), "--size", "32", "--margin", "0.1", "--epochs", "6", "--batch-size", "16",
            "--lr", "3e-3", "--test-frac", "0.25", "--val-frac", "0.15"]
    assert main(args) == 0
    return {"tmp": tmp, "run": str(tmp / "runs" / "attributes" / "tiny"), "attr_file": str(attr_file),
            "bbox_file": str(bbox_file), "images": os.path.join(attr_dir, "images"), "cache": str(tmp / "cache")}


def test_run_folder_and_learning(tiny_run):
    run = tiny_run["run"]
    for f in ("config.json", "config.yaml", "metrics.csv", "loss.png", "attributes.keras", "attributes.json",
              "summary.json", "attributes_test.csv", "attributes_test.md", "split.json"):
        assert os.path.isfile(os.path.join(run, f)), f
    assert glob.glob(os.path.join(run, "tensorboard", "train", "events.out.tfevents.*"))
    with open(os.path.join(run, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    loss = [float(r["loss"]) for r in rows]
    assert float(rows[-1]["lr"]) < float(rows[0]["lr"])  # the cosine decay, logged by the engine
    assert len(loss) == 6 and loss[-1] < loss[0] * 0.9, loss
    with open(os.path.join(run, "summary.json")) as fh:
        s = json.load(fh)
    assert s["split_sizes"]["train"] > 20 and "majority_accuracy" in s["test"]
    table = open(os.path.join(run, "attributes_test.md")).read()
    assert "| Male |" in table and "**MEAN**" in table


def test_predictor_matches_saved_model(tiny_run):
    import keras

    from face_tracker_core.attributes.predictor import AttributePredictor
    from face_tracker_core.imaging import read_image

    path = os.path.join(tiny_run["run"], "attributes.keras")
    pred = AttributePredictor(path, threshold=0.3)
    assert pred.names == CELEBA_ATTRIBUTES and pred.size == 32
    img = read_image(os.path.join(tiny_run["images"], sorted(os.listdir(tiny_run["images"]))[0]))
    boxes = [BBox(40, 40, 160, 180), BBox(10, 10, 60, 70)]
    prob = pred.predict_proba(img, boxes)
    direct = keras.models.load_model(path, compile=False).predict_on_batch(pred.crops(img, boxes))
    np.testing.assert_allclose(prob, direct, atol=1e-5)
    out = pred.predict(img, boxes)
    assert len(out) == 2
    for faces, p in zip(out, prob):
        assert [n for n, _ in faces] == [CELEBA_ATTRIBUTES[i] for i in np.argsort(-p) if p[i] >= 0.3]
        assert all(v >= 0.3 for _, v in faces)
    assert pred.predict(img, []) == []


def test_eval_cli_and_bad_attribute_file(tiny_run, tmp_path, capsys):
    from face_tracker_core.cli.main import main

    rc = main(["eval", "attributes", "--model", os.path.join(tiny_run["run"], "attributes.keras"), "--attr-file",
               tiny_run["attr_file"], "--images", tiny_run["images"], "--bbox-file", tiny_run["bbox_file"],
               "--cache", tiny_run["cache"], "--split", "all", "--test-frac", "0.25", "--val-frac", "0.15"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["photos"] > 40 and len(out["attributes"]) == 40
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n" + " ".join(CELEBA_ATTRIBUTES) + "\n000001.jpg 1 -1\n")
    assert main(["train", "attributes", "--attr-file", str(bad), "--runs", str(tmp_path)]) == 2


def test_bad_model_files(tiny_run, tmp_path):
    from face_tracker_core.attributes.predictor import AttributePredictor

    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip")
    with pytest.raises(ModelLoadError, match="garbage.keras"):
        AttributePredictor(str(garbage))
    with pytest.raises(ModelLoadError, match="missing.keras"):
        AttributePredictor(str(tmp_path / "missing.keras"))
    import shutil

    shutil.copy(os.path.join(tiny_run["run"], "attributes.keras"), tmp_path / "m.keras")
    (tmp_path / "m.json").write_text(json.dumps({"attributes": ["a", "b"]}))
    with pytest.raises(ModelLoadError, match=r"m.json: lists 2 attribute names"):
        AttributePredictor(str(tmp_path / "m.keras"))
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="m.json"):
        AttributePredictor(str(tmp_path / "m.keras"))


def test_transfer_freezes_base_and_trains_head(tiny_run):
    from face_tracker_core.attributes.crops import CropCache
    from face_tracker_core.attributes.model import block_names, conv_base_of, load_model
    from face_tracker_core.attributes.transfer import (build_transfer_model, score_rows, train_transfer_head,
                                                       unfreeze_top_block, weights_equal)

    attr_model, _ = load_model(os.path.join(tiny_run["run"], "attributes.keras"))
    cache = CropCache(glob.glob(os.path.join(tiny_run["cache"], "attr-*"))[0])
    rows = np.flatnonzero(cache.usable)
    labels = read_attributes(tiny_run["attr_file"]).labels
    male = labels[:, CELEBA_ATTRIBUTES.index("Male")].astype(bool)
    pos, neg = rows[male[rows]], rows[~male[rows]]
    model = build_transfer_model(attr_model)
    assert model.output_shape == (None, 1)
    base = conv_base_of(model)
    assert not any(w.trainable for w in base.weights)
    trainable = [w.path for w in model.trainable_weights]
    assert len(trainable) == 2 and all("target_prob" in p for p in trainable)
    before = [w.copy() for w in base.get_weights()]  # includes batch-norm moving statistics
    head_before = [w.copy() for w in model.get_layer("target_prob").get_weights()]
    src_before = [w.copy() for w in conv_base_of(attr_model).get_weights()]
    train_transfer_head(model, cache.crops, pos, neg, epochs=3, lr=0.05, batch_size=16)
    assert weights_equal(before, base.get_weights())
    assert not weights_equal(head_before, model.get_layer("target_prob").get_weights())
    assert weights_equal(src_before, conv_base_of(attr_model).get_weights())  # the attribute model is untouched
    assert np.isfinite(score_rows(model, cache.crops, rows)).all()

    # Second phase: only the top block moves.
    names = unfreeze_top_block(model)
    top = block_names(base)[-1]
    assert names and all(n.startswith(top) for n in names)
    lower = {l.name: [w.copy() for w in l.get_weights()] for l in base.layers if not l.name.startswith(top)}
    top_before = [w.copy() for w in base.get_layer(top).get_weights()]
    train_transfer_head(model, cache.crops, pos, neg, epochs=1, lr=1e-3, batch_size=16)
    assert not weights_equal(top_before, base.get_layer(top).get_weights())
    for l in base.layers:
        if l.name in lower:
            assert weights_equal(lower[l.name], l.get_weights()), l.name


def test_transfer_multiscale_lbfgs_head_keeps_base_frozen(tiny_run, tmp_path):
    """The default head: multi-scale pooled features, one neuron fitted by L-BFGS; also from a base saved frozen."""
    from face_tracker_core.attributes.crops import CropCache
    from face_tracker_core.attributes.model import conv_base_of, load_model, save_model
    from face_tracker_core.attributes.transfer import (DEFAULT_HEAD, build_transfer_model, score_rows,
                                                       train_transfer_head, weights_equal)
    from face_tracker_core.engine import Run

    assert DEFAULT_HEAD["pooling"] == "multiscale" and DEFAULT_HEAD["solver"] == "lbfgs"
    attr_model, meta = load_model(os.path.join(tiny_run["run"], "attributes.keras"))
    # A base saved with trainable=False reloads with inconsistent flags: its clone must still be frozen.
    conv_base_of(attr_model).trainable = False
    save_model(attr_model, str(tmp_path / "frozen.keras"), meta)
    frozen_saved, _ = load_model(str(tmp_path / "frozen.keras"))
    cache = CropCache(glob.glob(os.path.join(tiny_run["cache"], "attr-*"))[0])
    rows = np.flatnonzero(cache.usable)
    labels = read_attributes(tiny_run["attr_file"]).labels
    male = labels[:, CELEBA_ATTRIBUTES.index("Male")].astype(bool)
    pos, neg = rows[male[rows]], rows[~male[rows]]
    for src in (attr_model, frozen_saved):
        for pooling in ("multiscale", "gap"):
            model = build_transfer_model(src, pooling=pooling)
            assert [w.path for w in model.trainable_weights] == ["target_prob/kernel", "target_prob/bias"]
            base = conv_base_of(model)
            before = [w.copy() for w in base.get_weights()]
            head_before = [w.copy() for w in model.get_layer("target_prob").get_weights()]
            train_transfer_head(model, cache.crops, pos, neg, solver="lbfgs", copies=2, l2=1e-4,
                                run=Run("transfer", "t", path=str(tmp_path)), csv_name=f"m_{pooling}.csv")
            assert weights_equal(before, base.get_weights())
            assert not weights_equal(head_before, model.get_layer("target_prob").get_weights())
            assert np.isfinite(score_rows(model, cache.crops, rows)).all()
            assert (tmp_path / f"m_{pooling}.csv").read_text().startswith("epoch,loss")


def test_metrics():
    y = np.array([1, 1, 0, 0, 0])
    assert roc_auc(y, np.array([0.9, 0.8, 0.1, 0.2, 0.3])) == 1.0
    assert roc_auc(y, np.array([0.1, 0.2, 0.9, 0.8, 0.7])) == 0.0
    assert roc_auc(y, np.full(5, 0.5)) == 0.5
    neg = np.linspace(0, 1, 200)
    yy = np.r_[np.ones(4), np.zeros(200)]
    # FAR 1e-2 of 200 negatives = 2 accepted: threshold is the 3rd highest negative.
    assert tar_at_far(yy, np.r_[[1.5, 0.995, 0.98, 0.5], neg]) == 0.5
    lab = np.array([[1, 0], [1, 0], [0, 1], [1, 0]])
    maj = majority_classes(lab)
    assert list(maj) == [1, 0]
    rows = attribute_report(lab, np.array([[0.9, 0.1], [0.2, 0.1], [0.1, 0.8], [0.7, 0.4]]), maj, ["a", "b"])
    assert rows[0]["accuracy"] == 0.75 and rows[0]["majority_accuracy"] == 0.75
    assert rows[0]["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert rows[1]["accuracy"] == 1.0 and rows[1]["gain"] == 0.25


def test_weighted_bce():
    import keras

    from face_tracker_core.attributes.losses import WeightedBCE

    y = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    p = np.array([[0.8, 0.3], [0.4, 0.1]], np.float32)
    plain = float(WeightedBCE()(y, p))
    ref = float(keras.losses.BinaryCrossentropy()(y, p))
    assert plain == pytest.approx(ref, rel=1e-4)
    bal = WeightedBCE([0.1, 0.5])
    # A rare attribute's positive error is weighted 5x, its negatives ~0.56x.
    assert float(bal(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))) == pytest.approx(
        (5 * np.log(2) + 1 * np.log(2)) / 2, rel=1e-4)
    assert WeightedBCE.from_config(bal.get_config()).positive_rate == [0.1, 0.5]


def test_transfer_cli_from_folders_with_jfif(tiny_run, tmp_path, shared_data, capsys):
    """``train transfer --positives --negatives``: real photos, the target's saved as .jfif."""
    import shutil

    from face_tracker_core.cli.main import main

    ident = shared_data("identity", "celeba")
    people = sorted(os.listdir(ident))[:4]
    pos = tmp_path / "me"
    pos.mkdir()
    for f in sorted(os.listdir(os.path.join(ident, people[0])))[:8]:
        shutil.copy(os.path.join(ident, people[0], f), pos / (os.path.splitext(f)[0] + ".jfif"))
    (pos / "unreadable.jpg").write_bytes(b"garbage")  # logged with its path and skipped
    neg = tmp_path / "others"
    for p in people[1:]:
        shutil.copytree(os.path.join(ident, p), neg / p)
    rc = main(["train", "transfer", "--base", os.path.join(tiny_run["run"], "attributes.keras"), "--positives",
               str(pos), "--negatives", str(neg), "--name", "me", "--runs", str(tmp_path / "runs"), "--cache",
               str(tmp_path / "cache"), "--epochs", "2"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["frozen_unchanged"] and s["head_changed"] and s["train_pos"] + s["test_pos"] >= 6
    assert 0.0 <= s["auc"] <= 1.0
    run = tmp_path / "runs" / "transfer" / "me"
    assert (run / "person.keras").is_file() and json.loads((run / "person.json").read_text())["target"] == "me"
    assert json.loads((run / "config.json").read_text())["base"].endswith("attributes.keras")
    assert (run / "loss.png").is_file() and (run / "metrics_me.csv").is_file()
    assert glob.glob(str(run / "tensorboard" / "metrics_me" / "train" / "events.out.tfevents.*"))
