"""Augmentation: boxes follow the faces through crops and flips on real photos; determinism; workers."""

from __future__ import annotations

import os
import random

import cv2
import numpy as np
import pytest

from face_tracker_core.data.augment import (DEFAULT_AUGMENT_CONFIG, Augmenter, augment_samples,
                                            augment_variants, build_pipeline, merge_config, variant_seed)
from face_tracker_core.data.dataset import Sample, import_folder
from face_tracker_core.data.stats import contact_sheet
from face_tracker_core.errors import DataError
from face_tracker_core.types import BBox

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "runs", "test_artifacts")
PHOTOMETRIC = {"RandomBrightnessContrast", "RandomGamma", "RGBShift"}


def _likely(transform):
    """``transform`` firing half the time (a crop always, to 0.7 of each side)."""
    if transform["name"] == "RandomCrop":
        return dict(transform, scale=0.7, p=1.0)
    return dict(transform, p=0.5)


# The default transforms with every geometric one likely to fire.
GEOMETRIC_CONFIG = {
    "transforms": [_likely(t) for t in DEFAULT_AUGMENT_CONFIG["transforms"]],
    "min_visibility": 0.4,
    "min_area": 0.0,
}


@pytest.fixture(scope="module")
def photos(request):
    """Real labelled photos: all of dlib_faces and a few crowded facemask ones."""
    from conftest import shared_path

    dlib = import_folder(shared_path("detection", "dlib_faces")).samples
    mask = import_folder(shared_path("detection", "facemask")).samples
    crowded = sorted(mask, key=lambda s: -len(s.boxes))[:3]
    return dlib + crowded


def expected_boxes(boxes, applied, min_visibility, min_area):
    """Boxes after the applied crop/flips, by hand: ``([(input index, BBox)], borderline indices)``.

    A face whose visible fraction equals ``min_visibility`` to 1e-3 is borderline: albumentations
    computes the ratio in float32, so either decision is right.
    """
    cur = [(i, b) for i, b in enumerate(boxes)]
    borderline = set()
    orig_area = {i: b.area for i, b in cur}
    for name, params in applied:
        if name == "RandomCrop":
            x0, y0, x1, y1 = params["crop_coords"]
            nxt = []
            for i, b in cur:
                c = BBox(b.x1 - x0, b.y1 - y0, b.x2 - x0, b.y2 - y0).clip(x1 - x0, y1 - y0)
                ratio = c.area / orig_area[i]
                if abs(ratio - min_visibility) < 1e-3:
                    borderline.add(i)
                if c.area > 0 and c.area >= min_area and ratio >= min_visibility:
                    nxt.append((i, c))
            cur = nxt
        elif name == "HorizontalFlip":
            w = params["shape"][1]
            cur = [(i, BBox(w - b.x2, b.y1, w - b.x1, b.y2)) for i, b in cur]
        elif name == "VerticalFlip":
            h = params["shape"][0]
            cur = [(i, BBox(b.x1, h - b.y2, b.x2, h - b.y1)) for i, b in cur]
        else:
            assert name in PHOTOMETRIC, f"unexpected geometric transform {name}"
    return cur, borderline


def test_boxes_follow_crop_and_flip_arithmetic_on_real_photos(photos):
    aug = Augmenter(GEOMETRIC_CONFIG, save_applied_params=True)
    cfg = merge_config(GEOMETRIC_CONFIG)
    checked = flips = dropped = 0
    sheet = []
    for s in photos:
        img = s.load_bgr()
        labels = [str(i) for i in range(len(s.boxes))]
        if len(sheet) < 36:
            sheet.append((img, s.boxes, "orig " + os.path.basename(s.image_path)[:14]))
        for v in range(4):
            out, boxes, out_labels, applied = aug(img, s.boxes, labels, seed=variant_seed(7, s, v))
            oh, ow = out.shape[:2]
            assert (ow, oh) == (round(s.width * 0.7), round(s.height * 0.7))
            exp, borderline = expected_boxes(s.boxes, applied, cfg["min_visibility"], cfg["min_area"])
            assert all(0 <= b.x1 < b.x2 <= ow and 0 <= b.y1 < b.y2 <= oh for b in boxes)
            got = {int(k): b for k, b in zip(out_labels, boxes)}
            want = dict(exp)
            assert set(got) ^ set(want) <= borderline, f"{s.image_path}: kept faces differ"
            for i in set(got) & set(want):
                e, b = want[i], got[i]
                np.testing.assert_allclose(b.as_xyxy(), e.as_xyxy(), atol=0.05)
                checked += 1
            flips += any(n.endswith("Flip") for n, _ in applied)
            dropped += len(s.boxes) - len(boxes)
            if v < 2 and len(sheet) < 36:
                sheet.append((out, boxes, f"variant {v}"))
    assert checked > 150 and flips > 10 and dropped > 0  # the test exercised crops that cut faces
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = contact_sheet(sheet, os.path.join(ARTIFACTS, "augment_contact_sheet.png"), cols=6, thumb=180)
    png = cv2.imread(path)
    assert png is not None and png.shape[1] == 6 * 180


def test_boxes_match_the_transformed_face_pixels(photos):
    """Each box, painted as its own mask, comes out where the box says (pixel check, no arithmetic)."""
    rng = random.Random(3)
    kept = 0
    for s in rng.sample(photos, 6):
        img = s.load_bgr()
        masks = []
        for b in s.boxes:
            m = np.zeros(img.shape[:2], np.uint8)
            m[int(b.y1):int(np.ceil(b.y2)), int(b.x1):int(np.ceil(b.x2))] = 1
            masks.append(m)
        pipe = build_pipeline(GEOMETRIC_CONFIG, (img.shape[1], img.shape[0]))
        for v in range(3):
            pipe.set_random_seed(1000 + v)
            out = pipe(image=img, masks=masks, bboxes=np.array([b.as_xyxy() for b in s.boxes], np.float32),
                       labels=list(range(len(s.boxes))))
            for box, k in zip(out["bboxes"], out["labels"]):
                ys, xs = np.nonzero(out["masks"][int(k)])
                assert xs.size, "a kept face has no pixels left"
                np.testing.assert_allclose(box[:4], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1.01)
                kept += 1
            for k in set(range(len(s.boxes))) - {int(k) for k in out["labels"]}:
                # A dropped face really was mostly cut away.
                assert out["masks"][k].sum() / masks[k].sum() < 0.4 + 0.05
    assert kept > 10


def test_min_visibility_keeps_or_drops_a_cut_face():
    img = np.full((200, 200, 3), 128, np.uint8)
    face = BBox(80, 50, 120, 90)                    # a crop at x < 100 keeps half of it
    cfg = {"transforms": [{"name": "Crop", "x_min": 0, "y_min": 0, "x_max": 100, "y_max": 200}]}
    kept = Augmenter({**cfg, "min_visibility": 0.4})(img, [face])[1]
    assert kept == (BBox(80, 50, 100, 90),)
    assert Augmenter({**cfg, "min_visibility": 0.6})(img, [face])[1] == ()


def test_deterministic_and_negatives_kept(photos):
    aug = Augmenter(DEFAULT_AUGMENT_CONFIG)
    s = photos[0]
    a = augment_variants(s, aug, 3, seed=5)
    b = augment_variants(s, aug, 3, seed=5)
    c = augment_variants(s, aug, 3, seed=6)
    for (ia, ba, _), (ib, bb, _) in zip(a, b):
        np.testing.assert_array_equal(ia, ib)
        assert ba == bb
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(a, c))
    neg = Sample(s.image_path, (), "neg", s.width, s.height)
    assert all(boxes == () for _, boxes, _ in augment_variants(neg, aug, 2))


def test_bad_config_is_a_clear_error():
    with pytest.raises(DataError, match="no 'NoSuchTransform'"):
        Augmenter({"transforms": [{"name": "NoSuchTransform"}]})
    with pytest.raises(DataError, match="RandomCrop needs"):
        Augmenter({"transforms": [{"name": "RandomCrop"}]})
    with pytest.raises(DataError, match="unknown keys"):
        merge_config({"min_visiblity": 0.3})


def test_parallel_writing_equals_serial_and_reports_bad_inputs(photos, tmp_path):
    subset = photos[:4]
    broken = Sample(str(tmp_path / "missing.jpg"), (BBox(1, 1, 9, 9),), "x", 10, 10)
    r1 = augment_samples(subset, str(tmp_path / "w1"), variants=2, workers=1, seed=3)
    r2 = augment_samples(subset + [broken], str(tmp_path / "w2"), variants=2, workers=2, seed=3)
    assert len(r1.samples) == len(r2.samples) == 8
    assert len(r2.errors) == 1 and "missing.jpg" in str(r2.errors[0])
    for a, b in zip(sorted(r1.samples, key=lambda s: s.image_path), sorted(r2.samples, key=lambda s: s.image_path)):
        assert os.path.basename(a.image_path) == os.path.basename(b.image_path)
        assert open(a.image_path, "rb").read() == open(b.image_path, "rb").read()
        assert a.boxes == b.boxes and a.source_id == b.source_id
    # Variants re-import with their original's source id.
    back = import_folder(str(tmp_path / "w1"))
    assert back.ok and {s.source_id for s in back.samples} == {s.source_id for s in subset}
