"""Pure-numpy parts of recognition: alignment geometry, splits/pairs, verification metrics,
triplet mining (Keras op vs loop reference), the P x K sampler."""

from __future__ import annotations

import numpy as np
import pytest

from face_tracker_core.recognition import metrics
from face_tracker_core.recognition.align import align_face, similarity_transform, template
from face_tracker_core.recognition.dataset import make_pairs, split_identities
from face_tracker_core.recognition.triplet import PKSampler, triplet_semihard_loss_np


def test_similarity_transform_recovers_rotation_scale_shift():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.deg2rad(17.0), 1.7, np.array([12.0, -5.0])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ (s * rot).T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], s * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_align_face_puts_landmarks_on_template():
    # Paint the 5 landmarks as dots of a tilted "face"; after alignment they sit on the template.
    size, pad = 112, 0.2
    tmpl = template(size, pad)
    a = np.deg2rad(-25.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (tmpl - 56) @ (1.8 * rot).T + np.array([200.0, 150.0])
    img = np.zeros((300, 400, 3), np.uint8)
    for i, (x, y) in enumerate(pts):
        img[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 50 * (i + 1)
    out = align_face(img, pts, size, pad)
    for i, (x, y) in enumerate(tmpl):
        assert abs(int(out[int(round(y)), int(round(x)), 0]) - 50 * (i + 1)) < 30


def test_split_is_deterministic_disjoint_and_order_free():
    names = [f"p{i:03d}" for i in range(228)]
    a = split_identities(names)
    b = split_identities(list(reversed(names)))
    assert a == b
    assert [len(a[k]) for k in ("verify", "identify", "val")] == [50, 40, 10]
    assert len(a["train"]) == 128
    all_ = [n for k in a for n in a[k]]
    assert sorted(all_) == sorted(names)
    # Adding a person never moves the others between held-out splits and training.
    c = split_identities(names + ["newcomer"])
    moved = {n for n in names if (n in a["train"]) != (n in c["train"])}
    assert len(moved) <= 1


def test_pairs_have_no_person_in_two_folds():
    people = {f"p{i}": [f"p{i}/{j}.jpg" for j in range(6)] for i in range(30)}
    pairs = make_pairs(people, folds=10, pos_per_fold=20, neg_per_fold=20)
    assert pairs == make_pairs(people, folds=10, pos_per_fold=20, neg_per_fold=20)
    fold_of = {}
    for p in pairs:
        for path in (p.a, p.b):
            person = path.split("/")[0]
            assert fold_of.setdefault(person, p.fold) == p.fold
        assert (p.a.split("/")[0] == p.b.split("/")[0]) == p.same
    assert sum(p.same for p in pairs) == 200 and sum(not p.same for p in pairs) == 200


def test_ten_fold_accuracy_counts_missing_faces_as_wrong():
    rng = np.random.default_rng(1)
    same = np.repeat([True, False], 100)
    scores = np.where(same, 0.9, 0.3) + rng.normal(0, 0.01, 200)
    folds = np.tile(np.arange(10), 20)
    assert metrics.ten_fold_accuracy(scores, same, folds)["accuracy"] == 1.0
    scores[:10] = np.nan  # 10 genuine pairs with a photo without a face
    res = metrics.ten_fold_accuracy(scores, same, folds)
    assert res["accuracy"] == pytest.approx(0.95)
    assert metrics.roc_auc(scores, same) == pytest.approx(0.90)


def test_roc_auc_and_tar_at_far():
    same = np.array([True, True, True, False, False, False, False])
    scores = np.array([0.9, 0.8, 0.4, 0.5, 0.3, 0.2, 0.1])
    # genuine 0.4 loses against impostor 0.5 only: 1 of 12 comparisons
    assert metrics.roc_auc(scores, same) == pytest.approx(11 / 12)
    tar, t = metrics.tar_at_far(scores, same, far=0.0)
    assert t > 0.5 and tar == pytest.approx(2 / 3)
    thr = metrics.threshold_for_far(np.linspace(0, 1, 1001), 0.01)
    assert np.mean(np.linspace(0, 1, 1001) >= thr) <= 0.01


def test_semihard_loss_matches_reference_and_prefers_separated_embeddings():
    pytest.importorskip("keras")
    from keras import ops

    from face_tracker_core.recognition.triplet import triplet_semihard_loss

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 4)
    emb = rng.normal(size=(24, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    got = float(ops.convert_to_numpy(triplet_semihard_loss(labels, emb, 0.2)))
    assert got == pytest.approx(triplet_semihard_loss_np(labels, emb, 0.2), rel=1e-4)
    centers = np.eye(16, dtype=np.float32)[labels]
    tight = centers + 0.01 * emb
    tight /= np.linalg.norm(tight, axis=1, keepdims=True)
    assert float(ops.convert_to_numpy(triplet_semihard_loss(labels, tight, 0.2))) < got * 0.1


def test_pk_sampler_groups_people():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 1 + [3] * 8)
    s = PKSampler(labels, p=3, k=4, seed=0)
    for _ in range(20):
        b = s.batch()
        assert b.shape == (12,)
        labs = labels[b].reshape(3, 4)
        assert (labs == labs[:, :1]).all() and len(set(labs[:, 0])) == 3
        assert 2 not in labs  # a single photo gives no positive pair
