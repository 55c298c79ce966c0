"""Every hash split of the project is pinned: the split of each file / person of ``../shared/data``.

The digests below were computed from the split code before it was gathered into
:mod:`face_tracker_core.splits`; a change of any file's split (a new hash, salt, rounding or
table entry for an existing set) changes a digest. Adding files to ``../shared/data`` changes
them too: recompute with ``_listing`` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from face_tracker_core import splits
from face_tracker_core.splits import split_items, split_people
from face_tracker_core.attributes.training import AttributeTrainConfig
from face_tracker_core.data.dataset import Sample
from face_tracker_core.data.split import split_samples
from face_tracker_core.eval.detection_split import split_of as detection_split_of
from face_tracker_core.recognition.dataset import list_identities, split_identities

DETECTION = {
    "celeba_one_face": "e3b27c396482b116872da24225a48bfa7af69642",
    "dlib_faces": "fb7d34b933c74d01f754d55e0fa4f5ab889720d7",
    "facemask": "3e10c6c45943cd0224238568085c718a60f11cda",
    "facemask_more": "b3a799ce04288669b4252778a6c51314373380a3",
    "noface": "d10395841b59b0551a964628ecccaa8f034b353f",
    "noface_more": "4eceba393000854ba7377bf7862bf3293894fca3",
}
ATTRIBUTES = "2e7cf061d89a43cf95ecc8b3b11fae7b2edb1e58"
IDENTITIES = "6a4db515b2abf97561398c88b3c54fc7a1e0ad31"
PEOPLE = "a89838f8c2de8e0606ba6334e1867cd89c785cfb"
SOURCES = "14a984ac9e08b070852cff5f42562ab3bdcef0c4"


def _digest(pairs) -> str:
    return hashlib.sha1("\n".join(f"{a}\t{b}" for a, b in pairs).encode("utf-8")).hexdigest()


def _files(folder: str):
    return sorted(f for f in os.listdir(folder) if not f.startswith("."))


def _listing(root: str) -> dict:
    """``{name: digest of the sorted (item, split) list}`` for every split rule and set."""
    out = {}
    for name in DETECTION:
        folder = os.path.join(root, "detection", name)
        out[name] = _digest((f, detection_split_of(name, f)) for f in _files(folder))
    cfg = AttributeTrainConfig(attr_file="", images_dir="")
    images = _files(os.path.join(root, "attributes", "celeba", "images"))
    sp = split_items(images, cfg.test_frac, cfg.val_frac, cfg.split_salt)
    out["attributes"] = _digest(sorted((images[i], k) for k, v in sp.items() for i in v))
    people = sorted(list_identities(os.path.join(root, "identity", "celeba")))
    out["identities"] = _digest(sorted((p, k) for k, v in split_identities(people).items() for p in v))
    held = split_people(people, cfg.pretrain_holdout, cfg.people_salt)
    out["people"] = _digest(sorted((p, k) for k, v in held.items() for p in v))
    samples = [Sample(os.path.join(d, f), source_id=f"{d}/{f}") for d in sorted(DETECTION)
               for f in _files(os.path.join(root, "detection", d))]
    by_source = split_samples(samples, method="hash", seed=0)
    out["sources"] = _digest(sorted((s.source_id, k) for k, v in by_source.items() for s in v))
    return out


def test_splits_of_the_shared_data_are_unchanged(shared_data):
    root = os.path.dirname(shared_data("detection"))
    got = _listing(root)
    want = {**DETECTION, "attributes": ATTRIBUTES, "identities": IDENTITIES, "people": PEOPLE, "sources": SOURCES}
    assert got == want


def test_hash_rules_on_fixed_keys():
    """The four hash rules, pinned on a few names (no data needed)."""
    keys = ["000093.jpg", "maksssksksss13.jpg", "7201", "a"]
    assert [splits.hash_bucket("facemask/" + k.rsplit(".", 1)[0]) for k in keys] == [70, 48, 42, 86]
    assert [detection_split_of("noface", k) for k in keys] == ["train", "test", "train", "test"]
    assert [splits.hash_fraction(k, "celeba-attr-v1") for k in keys] == [
        0.38695661932504843, 0.9029137976450929, 0.5408047713829341, 0.018376878913357157]
    assert [splits.split_of(k, 0.2, 0.15, "celeba-attr-v1") for k in keys] == ["train", "train", "train", "test"]
    assert [splits.hash_rank(f"face_tracker:{k}")[:12] for k in keys] == [
        "af59930c4bdb", "765893b46006", "b3edb0e03b9c", "3b0196526c4b"]
    assert [splits.crc_fraction(f"0|{k}") for k in keys] == [
        0.7972418887075037, 0.6009134764317423, 0.3010471423622221, 0.3831384009681642]


def test_pick_split_bounds():
    assert splits.pick_split(0, (25, 10), ("test", "val"), "train") == "test"
    assert splits.pick_split(34, (25, 10), ("test", "val"), "train") == "val"
    assert splits.pick_split(35, (25, 10), ("test", "val"), "train") == "train"
    assert splits.pick_split(0.999, (0.5, 0.5), ("a", "b")) == "b"
    assert splits.pick_split(1.0, (0.5, 0.5), ("a", "b")) == "b"  # beyond the last bound: the last name
