"""Acceptance numbers of issue 6 on held-out CelebA people (slow: minutes of CPU).

Run with ``python -m pytest test/test_recognition_acceptance.py -m slow``; the same numbers come
from ``face-tracker eval embedder`` and are recorded in docs/model_cards/embedder.md.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from conftest import shared_path

    from face_tracker_core.recognition.evaluate import evaluate
    from face_tracker_core.recognition.faces import FaceFinder

    root = shared_path("identity", "celeba")
    # The same finder as `face-tracker eval embedder` (fallback to the best weak box: every
    # evaluation photo shows someone).
    return evaluate(root, ["dlib", "facenet", "siamese"], FaceFinder("default", fallback_score=0.2),
                    workdir=str(tmp_path_factory.mktemp("eval")))


@pytest.mark.slow
def test_dlib_behind_our_detector(results):
    assert results["embedders"]["dlib"]["accuracy"] >= 0.93


@pytest.mark.slow
def test_facenet_from_scratch(results):
    assert results["embedders"]["facenet"]["accuracy"] >= 0.80


@pytest.mark.slow
def test_siamese_reported(results):
    r = results["embedders"]["siamese"]
    assert 0.5 <= r["accuracy"] <= 1.0 and 0.0 <= r["roc_auc"] <= 1.0


@pytest.mark.slow
def test_open_set_identification_at_calibrated_threshold(results):
    idn = results["embedders"]["dlib"]["identification"]
    assert idn["enrolled_people"] == 20 and idn["probes"] > 100 and idn["stranger_photos"] > 100
    assert idn["named_correctly"] >= 0.90
    assert idn["strangers_unknown"] >= 0.95
