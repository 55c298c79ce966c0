"""CelebA annotation readers: the official formats, and located errors for malformed files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from face_tracker_core.attributes.celeba import (CELEBA_ATTRIBUTES, iter_attributes, read_attribute_header,
                                                 read_attributes, read_bboxes, read_identities, read_landmarks,
                                                 read_partition)
from face_tracker_core.splits import split_items, split_people
from face_tracker_core.errors import DataError

NAMES = " ".join(CELEBA_ATTRIBUTES)


def _row(image, values):
    return image + " " + " ".join(f"{v:2d}" for v in values)


def _write(tmp_path, text, name="list_attr_celeba.txt"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _good(n=3):
    rng = np.random.default_rng(0)
    vals = rng.choice([-1, 1], size=(n, 40))
    lines = [str(n), NAMES] + [_row(f"{i:06d}.jpg", vals[i]) for i in range(n)]
    return "\n".join(lines) + "\n", vals


def test_reads_official_format(tmp_path):
    text, vals = _good(3)
    # CelebA pads single digits with two spaces: any whitespace must work.
    t = read_attributes(_write(tmp_path, text.replace(" 1", "  1")))
    assert t.names == list(CELEBA_ATTRIBUTES)
    assert t.images == ["000000.jpg", "000001.jpg", "000002.jpg"]
    np.testing.assert_array_equal(t.labels, (vals > 0).astype(np.uint8))
    assert list(t.lines) == [3, 4, 5]


def test_reads_csv_variant(tmp_path):
    rows = ["image_id," + ",".join(CELEBA_ATTRIBUTES), "000001.jpg," + ",".join(["-1"] * 39 + ["1"]),
            "000002.jpg," + ",".join(["1"] + ["0"] * 39)]
    t = read_attributes(_write(tmp_path, "\n".join(rows), "list_attr_celeba.csv"))
    assert t.labels.shape == (2, 40) and t.labels[0, 39] == 1 and t.labels[1, 0] == 1 and t.labels.sum() == 2


@pytest.mark.parametrize("mutate, message", [
    (lambda ls: ["abc"] + ls[1:], "line 1: expected the image count"),
    (lambda ls: ls[:1] + ls[2:], "line 2: expected attribute names"),
    (lambda ls: ls[:3] + [ls[3].rsplit(" ", 1)[0]] + ls[4:], "line 4: expected 41 fields"),
    (lambda ls: ls[:4] + [ls[4].replace("-1", "2", 1) if "-1" in ls[4] else ls[4].replace(" 1", " 2", 1)] + ls[5:],
     "line 5: value '2'"),
    (lambda ls: ls[:4] + [ls[2]] + ls[5:], "line 5: image '000000.jpg' already listed on line 3"),
    (lambda ls: ["5"] + ls[1:], "line 1 declares 5 images but the file has 3 rows"),
])
def test_malformed_attribute_file_is_located(tmp_path, mutate, message):
    text, _ = _good(3)
    path = _write(tmp_path, "\n".join(mutate(text.splitlines())) + "\n")
    with pytest.raises(DataError) as err:
        read_attributes(path)
    assert path in str(err.value) and message in str(err.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_attributes(str(tmp_path / "nope.txt"))
    with pytest.raises(DataError, match="empty attribute file"):
        read_attributes(_write(tmp_path, "\n\n"))


def test_streaming_reader_yields_before_a_later_error(tmp_path):
    text, _ = _good(3)
    lines = text.splitlines()
    lines[4] = "broken"
    it = iter_attributes(_write(tmp_path, "\n".join(lines)))
    assert next(it).image == "000000.jpg"
    with pytest.raises(DataError, match="line 5"):
        list(it)


def test_side_files(tmp_path):
    bb = _write(tmp_path, "2\nimage_id x_1 y_1 width height\n000001.jpg 95 71 226 313\n000002.jpg 72 94 221 306\n", "b.txt")
    boxes = read_bboxes(bb)
    assert boxes["000001.jpg"].as_xyxy() == (95.0, 71.0, 321.0, 384.0)
    lm = _write(tmp_path, "1\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
                "rightmouth_x rightmouth_y\n000001.jpg 165 184 244 176 196 249 194 271 266 260\n", "l.txt")
    assert read_landmarks(lm)["000001.jpg"].shape == (5, 2)
    assert read_identities(_write(tmp_path, "000001.jpg 2880\n000002.jpg 2937\n", "i.txt")) == {
        "000001.jpg": 2880, "000002.jpg": 2937}
    assert read_partition(_write(tmp_path, "000001.jpg 0\n000002.jpg 2\n", "p.txt"))["000002.jpg"] == 2
    with pytest.raises(DataError, match=r"p2.txt line 2: partition of '000002.jpg' is 7"):
        read_partition(_write(tmp_path, "000001.jpg 0\n000002.jpg 7\n", "p2.txt"))
    with pytest.raises(DataError, match=r"b2.txt line 3: box of '000001.jpg' has size 0x313"):
        read_bboxes(_write(tmp_path, "1\nimage_id x_1 y_1 width height\n000001.jpg 95 71 0 313\n", "b2.txt"))
    with pytest.raises(DataError, match=r"i2.txt line 1: non-integer"):
        read_identities(_write(tmp_path, "000001.jpg abc\n", "i2.txt"))


def test_hash_split_is_deterministic_and_order_free():
    names = [f"{i:06d}.jpg" for i in range(1000)]
    a = split_items(names, 0.2, 0.1)
    b = split_items(list(reversed(names)), 0.2, 0.1)
    test_a = {names[i] for i in a["test"]}
    test_b = {names[::-1][i] for i in b["test"]}
    assert test_a == test_b and 150 < len(test_a) < 250 and 50 < len(a["val"]) < 150
    p = split_people([str(i) for i in range(200)], 0.3)
    assert set(p["seen"]).isdisjoint(p["heldout"]) and 40 < len(p["heldout"]) < 80


def test_real_celeba_sample(shared_data):
    path = os.path.join(shared_data("attributes", "celeba"), "list_attr_celeba.txt")
    count, names = read_attribute_header(path)
    t = read_attributes(path)
    assert count == len(t) == 417 and tuple(names) == CELEBA_ATTRIBUTES
    assert set(np.unique(t.labels)) == {0, 1}
