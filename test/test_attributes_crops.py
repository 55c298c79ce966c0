"""Face crops, the crop cache, unreadable images and .jfif photos."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from face_tracker_core.attributes.crops import (STATUS_DETECTED, STATUS_ERROR, STATUS_FALLBACK, STATUS_GIVEN, CropItem,
                                                FaceCropper, build_crop_cache, crop_face, items_from_folder)
from face_tracker_core.errors import ImageDecodeError
from face_tracker_core.imaging import read_image
from face_tracker_core.types import BBox


def test_crop_geometry():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = (0, 0, 255)  # red square (BGR) in the middle
    c = crop_face(img, BBox(90, 40, 110, 60), margin=0.5, size=32)
    assert c.shape == (32, 32, 3) and c.dtype == np.uint8
    assert tuple(c[16, 16]) == (255, 0, 0)  # RGB order out
    assert tuple(c[1, 1]) == (0, 0, 0)
    g = crop_face(img, BBox(90, 40, 110, 60), size=24, color="gray")
    assert g.shape == (24, 24, 1)
    # A box hanging over the corner is padded, and one fully outside still gives a crop.
    assert crop_face(img, BBox(-30, -30, 20, 20), size=16).shape == (16, 16, 3)
    assert crop_face(img, BBox(500, 500, 520, 520), size=16).shape == (16, 16, 3)
    with pytest.raises(ValueError):
        crop_face(img, BBox(0, 0, 10, 10), color="hsv")


def _celeba_photo(shared_data):
    d = os.path.join(shared_data("attributes", "celeba"), "images")
    return os.path.join(d, sorted(os.listdir(d))[0])


def test_jfif_and_unreadable_images_are_reported_with_location(tmp_path, shared_data):
    src = _celeba_photo(shared_data)
    os.makedirs(tmp_path / "photos" / "alice")
    jfif = tmp_path / "photos" / "alice" / "me.jfif"
    shutil.copy(src, jfif)  # a real JPEG under the .jfif name (OpenCV reads it by content)
    bad = tmp_path / "photos" / "alice" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    items = items_from_folder(str(tmp_path / "photos"))
    assert [it.key for it in items] == ["alice/broken.jpg", "alice/me.jfif"]
    h, w = read_image(str(jfif)).shape[:2]
    box = BBox(w * 0.3, h * 0.2, w * 0.7, h * 0.6)
    items = [CropItem(it.key, it.path, box, f"list.txt line {n}") for n, it in enumerate(items, start=3)]
    cropper = FaceCropper("haar", size=32)
    cache = build_crop_cache(items, cropper, str(tmp_path / "cache"), "t")
    assert list(cache.status) == [STATUS_ERROR, STATUS_GIVEN]
    assert "broken.jpg" in cache.errors[0] and "list.txt line 3" in cache.errors[0]
    assert cache.crops.shape == (2, 32, 32, 3) and cache.crops[1].std() > 5
    # Reopening finds the finished cache instead of cropping again.
    again = build_crop_cache(items, cropper, str(tmp_path / "cache"), "t")
    assert again.folder == cache.folder and len(os.listdir(tmp_path / "cache")) == 1
    with pytest.raises(ImageDecodeError, match=r"broken.jpg.*list.txt line 3"):
        build_crop_cache(items, cropper, str(tmp_path / "cache2"), "t", strict=True)


def test_detected_crop_of_jfif(tmp_path, shared_data):
    jfif = tmp_path / "face.jfif"
    shutil.copy(_celeba_photo(shared_data), jfif)
    crop, box, status = FaceCropper("haar", size=48).crop(read_image(str(jfif)))
    assert status in (STATUS_DETECTED, STATUS_FALLBACK) and crop.shape == (48, 48, 3) and box.area > 400
