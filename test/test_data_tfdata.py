"""tf.data builders: the classic FaceTracker's single-face format and the multi-face letterboxed format."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from face_tracker_core.data.dataset import Sample, import_folder
from face_tracker_core.data.tfdata import (largest_box, multi_face_dataset, single_face_dataset,
                                           single_face_targets)
from face_tracker_core.types import BBox

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def samples():
    from conftest import shared_path

    faces = import_folder(shared_path("detection", "dlib_faces")).samples
    neg = import_folder(shared_path("detection", "noface"), negatives=True).samples[:3]
    return faces + neg


def _crop(img, box_xyxy, size=(24, 24)):
    x1, y1, x2, y2 = [int(round(v)) for v in box_xyxy]
    return cv2.resize(img[y1:y2, x1:x2].astype(np.float32), size, interpolation=cv2.INTER_AREA)


def test_single_face_format_and_content(samples):
    ds = single_face_dataset(samples, image_size=120, batch_size=4, shuffle=False)
    images, (classes, boxes) = next(iter(ds))
    assert images.dtype == tf.float32 and images.shape == (4, 120, 120, 3)
    assert classes.dtype == tf.float32 and classes.shape == (4, 1)
    assert boxes.dtype == tf.float32 and boxes.shape == (4, 4)
    all_imgs, all_cls, all_boxes = [], [], []
    for images, (classes, boxes) in ds:
        all_imgs.append(images.numpy())
        all_cls.append(classes.numpy())
        all_boxes.append(boxes.numpy())
    imgs, cls, bxs = np.concatenate(all_imgs), np.concatenate(all_cls), np.concatenate(all_boxes)
    assert len(imgs) == len(samples) and imgs.min() >= 0 and imgs.max() <= 1
    np.testing.assert_array_equal(cls[:, 0], [0.0 if s.negative else 1.0 for s in samples])
    for img, c, b, s in zip(imgs, cls, bxs, samples):
        if s.negative:
            assert not b.any()
            continue
        big = largest_box(s.boxes)
        np.testing.assert_allclose(b, [big.x1 / s.width, big.y1 / s.height, big.x2 / s.width, big.y2 / s.height],
                                   atol=1e-6)
        assert (b[2:] > b[:2]).all() and (b >= 0).all() and (b <= 1).all()
        # The box, drawn on the 120x120 RGB image, covers the same face as in the original photo.
        orig = cv2.cvtColor(s.load_bgr(), cv2.COLOR_BGR2RGB)
        got = _crop(img * 255, b * 120)
        want = _crop(orig, (big.x1, big.y1, big.x2, big.y2))
        assert np.abs(got - want).mean() < 20, s.image_path


def test_single_face_shuffle_is_seeded(samples):
    def order(seed):
        ds = single_face_dataset(samples, batch_size=len(samples), shuffle=True, seed=seed, cache=False)
        return next(iter(ds))[1][1].numpy()

    a, b = order(1), order(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, order(2))


def test_multi_face_letterbox_boxes_and_mask(samples):
    size = (320, 256)
    ds = multi_face_dataset(samples, image_size=size, max_faces=6, batch_size=3, shuffle=False)
    seen = 0
    for images, (boxes, valid) in ds:
        assert images.shape[1:] == (256, 320, 3) and boxes.shape[1:] == (6, 4) and valid.shape[1:] == (6,)
        assert images.dtype == boxes.dtype == valid.dtype == tf.float32
        for img, bx, v in zip(images.numpy(), boxes.numpy(), valid.numpy()):
            s = samples[seen]
            seen += 1
            n = min(len(s.boxes), 6)
            np.testing.assert_array_equal(v, [1.0] * n + [0.0] * (6 - n))
            assert not bx[n:].any()
            if not n:
                continue
            scale = min(size[0] / s.width, size[1] / s.height)
            px, py = (size[0] - round(s.width * scale)) // 2, (size[1] - round(s.height * scale)) // 2
            big = largest_box(s.boxes)
            np.testing.assert_allclose(bx[0], [big.x1 * scale + px, big.y1 * scale + py,
                                               big.x2 * scale + px, big.y2 * scale + py], atol=1e-3)
            assert (bx[:n, 0] >= 0).all() and (bx[:n, 2] <= size[0]).all() and (bx[:n, 3] <= size[1]).all()
            orig = cv2.cvtColor(s.load_bgr(), cv2.COLOR_BGR2RGB)
            assert np.abs(_crop(img * 255, bx[0]) - _crop(orig, big.as_xyxy())).mean() < 20, s.image_path
    assert seen == len(samples)


def test_unreadable_image_is_skipped_not_fatal(samples, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    broken = Sample(str(bad), (), "bad", 10, 10)
    ds = single_face_dataset(list(samples[:3]) + [broken], batch_size=8, shuffle=False)
    images, (classes, _) = next(iter(ds))
    assert images.shape[0] == 3


def test_targets_need_sizes():
    with pytest.raises(ValueError, match="size unknown"):
        single_face_targets([Sample("x.jpg", (BBox(1, 1, 5, 5),), "x")])
