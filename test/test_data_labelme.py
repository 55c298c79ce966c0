"""LabelMe reader/writer: shapes reduced to boxes, label maps, embedded images, validation."""

from __future__ import annotations

import base64
import json
import os

import cv2
import numpy as np
import pytest

from face_tracker_core.data.dataset import import_folder
from face_tracker_core.data.labelme import (REVIEW_FLAG, labelme_image_bytes, load_labelme, read_labelme,
                                            write_labelme)
from face_tracker_core.errors import DataError
from face_tracker_core.sources import embedded_photo
from face_tracker_core.types import BBox


def _doc(shapes, image_path="photo.jpg", w=512, h=512, image_data=None, **extra):
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": image_data, "imageHeight": h, "imageWidth": w, **extra}


def _shape(points, label="face", kind="rectangle"):
    return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
            "flags": {}, "mask": None}


@pytest.fixture
def photo_dir(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.jpg"), embedded_photo())  # 512x512 astronaut, face ~(165,50)-(260,165)
    return tmp_path


def _write(folder, name, doc):
    path = os.path.join(folder, name)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    return path


def test_shapes_become_boxes_in_any_corner_order(photo_dir):
    path = _write(photo_dir, "photo.json", _doc([
        _shape([[260, 165], [165, 50]]),                                  # bottom-right first
        _shape([[300, 10], [300, 40], [280, 40], [280, 10]]),             # 4-point rectangle
        _shape([[10, 20], [60, 5], [40, 70]], kind="polygon"),
        _shape([[400, 400], [430, 440]], kind="circle"),                  # r = 50
        _shape([[5, 5]], kind="point"),                                   # no area: ignored
        _shape([[1, 1], [9, 9]], label="hand"),                           # other label: ignored
    ]))
    rec, warnings = read_labelme(path)
    assert rec.boxes == (BBox(165, 50, 260, 165), BBox(280, 10, 300, 40), BBox(10, 5, 60, 70),
                         BBox(350, 350, 450, 450))
    assert rec.labels == ("face",) * 4
    assert len(warnings) == 1 and "shape 4" in warnings[0] and "no area" in warnings[0]
    # The lenient reader (old API) gives the same boxes.
    old = load_labelme(path)
    assert old.boxes == rec.boxes and old.width == 512 and os.path.samefile(old.image_path, photo_dir / "photo.jpg")


def test_label_map_renames_and_ignores(photo_dir):
    path = _write(photo_dir, "photo.json", _doc([
        _shape([[10, 10], [50, 50]], label="with_mask"),
        _shape([[60, 60], [90, 90]], label="without_mask"),
        _shape([[100, 100], [140, 140]], label="face"),
        _shape([[150, 150], [190, 190]], label="mask_weared_incorrect"),
    ]))
    rec, _ = read_labelme(path, label_map={"with_mask": "face", "without_mask": "face", "face": None})
    assert rec.boxes == (BBox(10, 10, 50, 50), BBox(60, 60, 90, 90))
    assert rec.labels == ("face", "face")


def test_embedded_image_data_is_used_when_the_file_is_missing(tmp_path):
    ok, buf = cv2.imencode(".png", embedded_photo())
    data = base64.b64encode(buf.tobytes()).decode("ascii")
    _write(tmp_path, "only_json.json", _doc([_shape([[165, 50], [260, 165]])], image_path="gone.png",
                                             image_data=data))
    rep = import_folder(str(tmp_path))
    assert rep.ok, rep.errors
    (s,) = rep.samples
    assert s.embedded and not os.path.exists(s.image_path)
    np.testing.assert_array_equal(s.load_bgr(), embedded_photo())
    assert labelme_image_bytes(s.json_path) == buf.tobytes()


@pytest.mark.parametrize("shapes,size,needle", [
    ([_shape([[10, 10], [10, 50]])], (512, 512), "zero-area"),
    ([_shape([[400, 400], [600, 450]])], (512, 512), "outside the 512x512 image"),
    ([_shape([[-50, -50], [-10, -10]])], (512, 512), "outside"),
    ([_shape([[10, 10]])], (512, 512), "needs 2 corner points"),
    ([_shape([["a", 1], [2, 3]])], (512, 512), "malformed points"),
    ([_shape([[10, 10], [20, 20]], kind="cuboid")], (512, 512), "unknown shape_type"),
    ([], (0, 512), "empty"),
])
def test_bad_shapes_raise_naming_the_file(photo_dir, shapes, size, needle):
    path = _write(photo_dir, "photo.json", _doc(shapes, w=size[0], h=size[1]))
    with pytest.raises(DataError) as exc:
        read_labelme(path)
    assert str(path) in str(exc.value) and needle in str(exc.value)


def test_box_a_pixel_outside_is_clipped_with_a_warning(photo_dir):
    path = _write(photo_dir, "photo.json", _doc([_shape([[500, 10], [513, 40]])]))
    rec, warnings = read_labelme(path)
    assert rec.boxes == (BBox(500, 10, 512, 40),)
    assert "clipped" in warnings[0]


def test_malformed_json_and_missing_image(photo_dir):
    bad = photo_dir / "bad.json"
    bad.write_text('{"shapes": [', encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json: malformed JSON \(line 1"):
        read_labelme(str(bad))
    missing = _write(photo_dir, "missing.json", _doc([], image_path="nowhere.jpg"))
    with pytest.raises(DataError, match="nowhere.jpg"):
        read_labelme(missing)


def test_writer_round_trip_never_overwrites(photo_dir):
    jp = str(photo_dir / "sub" / "photo.json")
    os.makedirs(os.path.dirname(jp))
    boxes = [BBox(165.25, 50, 260, 165), BBox(10, 20, 30, 44)]
    write_labelme(jp, str(photo_dir / "photo.jpg"), 512, 512, boxes, scores=[0.9, 0.4], flags={REVIEW_FLAG: True},
                  extra={"source_id": "abc"})
    doc = json.load(open(jp))
    assert doc["imagePath"] == "../photo.jpg" and doc["flags"] == {REVIEW_FLAG: True}
    assert doc["shapes"][0]["description"] == "score 0.900"
    rec, _ = read_labelme(jp)
    assert rec.boxes == tuple(boxes) and rec.extra["source_id"] == "abc"
    with pytest.raises(FileExistsError):
        write_labelme(jp, str(photo_dir / "photo.jpg"), 512, 512, [])
    assert read_labelme(jp)[0].boxes == tuple(boxes)  # untouched
    write_labelme(jp, str(photo_dir / "photo.jpg"), 512, 512, [], overwrite=True)
    assert read_labelme(jp)[0].boxes == ()
    assert not [n for n in os.listdir(os.path.dirname(jp)) if n.startswith(".tmp")]


def test_reads_the_shared_labelme_files(shared_data):
    folder = shared_data("detection", "dlib_faces")
    jp = os.path.join(folder, sorted(n for n in os.listdir(folder) if n.endswith(".json"))[0])
    rec, warnings = read_labelme(jp)
    assert len(rec.boxes) >= 1 and not warnings
    img = cv2.imread(rec.image_path)
    assert img.shape[:2] == (rec.height, rec.width)
