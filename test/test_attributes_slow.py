"""Acceptance checks with real training (``-m slow``) and the shipped model (fast)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from face_tracker_core.attributes.predictor import DEFAULT_MODEL, AttributePredictor


def test_shipped_model_predicts_on_a_real_photo(shared_data):
    from face_tracker_core.attributes.crops import FaceCropper
    from face_tracker_core.imaging import read_image

    pred = AttributePredictor(threshold=0.5)
    assert len(pred.names) == 40 and pred.meta["summary"]["test"]["gain"] >= 0.04
    d = os.path.join(shared_data("attributes", "celeba"), "images")
    img = read_image(os.path.join(d, sorted(os.listdir(d))[0]))
    box, _ = FaceCropper("haar").locate(img)
    (faces,) = pred.predict(img, [box])
    probs = [p for _, p in faces]
    assert probs == sorted(probs, reverse=True) and all(p >= 0.5 for p in probs)


@pytest.mark.slow
def test_train_attributes_reaches_baseline_plus_4_and_transfer_auc(shared_data, tmp_path):
    """The documented training command (model card), then the 5-person transfer protocol."""
    from face_tracker_core.cli.main import main

    attr = shared_data("attributes", "celeba")
    ident = shared_data("identity", "celeba")
    cache = os.path.join("runs", "cache", "attributes")  # reuse crops of earlier runs: detection is the slow part
    assert main(["train", "attributes", "--attr-file", os.path.join(attr, "list_attr_celeba.txt"), "--images",
                 os.path.join(attr, "images"), "--pretrain-identity", ident, "--name", "slow_test", "--runs",
                 str(tmp_path), "--cache", cache]) == 0
    run = tmp_path / "attributes" / "slow_test"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["gain"] >= 0.04, summary["test"]
    assert main(["train", "transfer", "--base", str(run / "attributes.keras"), "--identity-root", ident,
                 "--targets", "5", "--name", "slow_test", "--runs", str(tmp_path), "--cache", cache]) == 0
    t = json.loads((tmp_path / "transfer" / "slow_test" / "summary.json").read_text())
    assert len(t["targets"]) == 5 and t["all_frozen_unchanged"] and t["all_heads_changed"]
    assert t["mean_auc"] >= 0.90, t
    assert np.isfinite(t["mean_tar_at_far_1e2"])
