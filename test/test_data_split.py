"""Leak-free split: variants of a frame and near-identical capture frames never straddle splits."""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pytest

from face_tracker_core.cli.main import main as cli_main
from face_tracker_core.data.augment import augment_samples
from face_tracker_core.data.capture import CaptureWriter
from face_tracker_core.data.dataset import import_folder, load_samples
from face_tracker_core.data.split import (check_no_leak, find_leaks, group_by_source, load_splits,
                                          split_samples)
from face_tracker_core.errors import DataError
from face_tracker_core.sources import SyntheticCamera


@pytest.fixture(scope="module")
def augmented_set(tmp_path_factory):
    """Real photos (dlib_faces + facemask incl. a photo stored twice) and 3 variants of each."""
    from conftest import shared_path

    root = tmp_path_factory.mktemp("split")
    raw = root / "raw"
    raw.mkdir()
    dlib = shared_path("detection", "dlib_faces")
    mask = shared_path("detection", "facemask")
    for src, stems in ((dlib, sorted({os.path.splitext(n)[0] for n in os.listdir(dlib)})),
                       (mask, ["maksssksksss13", "maksssksksss737", "maksssksksss0", "maksssksksss1",
                               "maksssksksss10", "maksssksksss100"])):
        for stem in stems:
            for ext in (".jpg", ".json"):
                shutil.copy(os.path.join(src, stem + ext), raw / (stem + ext))
    originals = import_folder(str(raw))
    assert originals.ok
    aug = augment_samples(originals.samples, str(root / "aug"), variants=3, workers=1, seed=1)
    assert not aug.errors
    return root, originals.samples


def test_split_of_a_real_augmented_set_never_leaks(augmented_set):
    root, originals = augmented_set
    everything = load_samples([str(root / "raw"), str(root / "aug")])
    assert everything.ok
    samples = everything.samples
    assert len(samples) == 4 * len(originals)
    # 13 and 737 are the same photo: one source for the pair and all their variants.
    dup = [s.source_id for s in samples
           if os.path.basename(s.image_path).startswith(("maksssksksss13", "maksssksksss737"))]
    assert len(set(dup)) == 1 and len(dup) == 8
    groups = group_by_source(samples)
    assert len(groups) == len(originals) - 1
    for seed in range(5):
        for fractions in ((0.7, 0.15, 0.15), (0.5, 0.5, 0.0), (0.34, 0.33, 0.33)):
            splits = split_samples(samples, fractions, seed=seed)
            assert find_leaks(splits) == {}
            assert sum(len(v) for v in splits.values()) == len(samples)
            for name, part in splits.items():
                for sid in {s.source_id for s in part}:
                    # all 4 images of every frame (8 for the duplicated photo) are in this split
                    assert len([s for s in part if s.source_id == sid]) == len(groups[sid])
                if fractions[("train", "val", "test").index(name)] > 0:
                    assert part, f"{name} is empty"
    # Shuffling files after augmentation leaks, and the check says so.
    files = list(samples)
    random.Random(0).shuffle(files)
    naive = {"train": files[:40], "val": files[40:50], "test": files[50:]}
    with pytest.raises(DataError, match="leak across splits"):
        check_no_leak(naive)


def test_hash_split_is_stable_when_data_is_added(augmented_set):
    root, originals = augmented_set
    samples = load_samples([str(root / "raw"), str(root / "aug")]).samples
    half = [s for s in samples if s.source_id < "sha1:8"]
    full = split_samples(samples, method="hash", seed=3)
    part = split_samples(half, method="hash", seed=3)
    where = {s.image_path: n for n, v in full.items() for s in v}
    assert all(where[s.image_path] == n for n, v in part.items() for s in v)


def test_near_identical_capture_frames_share_a_source(tmp_path):
    cam = SyntheticCamera(320, 240)
    rng = np.random.default_rng(0)
    writer = CaptureWriter(str(tmp_path), jpeg_quality=90)
    views = [0.0] * 3 + [3.0] * 2 + [6.0]          # still camera: 3 frames, moved: 2 frames, moved: 1
    for t in views:
        noisy = cam.render(t).astype(np.int16) + rng.normal(0, 2, (240, 320, 3)).astype(np.int16)
        writer.save(np.clip(noisy, 0, 255).astype(np.uint8))
    rep = import_folder(str(tmp_path), negatives=True)
    ids = [s.source_id for s in sorted(rep.samples, key=lambda s: s.image_path)]
    assert ids[0] == ids[1] == ids[2] != ids[3] == ids[4] != ids[5]
    assert len(set(import_folder(str(tmp_path), negatives=True, group_near_duplicates="none").samples[i].source_id
                   for i in range(6))) == 6
    splits = split_samples(rep.samples, (0.4, 0.3, 0.3), seed=0)
    assert find_leaks(splits) == {} and all(splits.values())


def test_cli_split_writes_manifests(augmented_set, tmp_path, capsys):
    root, _ = augmented_set
    code = cli_main(["data", "split", str(root / "raw"), str(root / "aug"), "--out", str(tmp_path / "split"),
                     "--fractions", "0.6", "0.2", "0.2", "--seed", "4"])
    assert code == 0
    out = capsys.readouterr().out
    assert "train" in out and "test" in out
    splits = load_splits(str(tmp_path / "split"))
    assert find_leaks(splits) == {}
    assert all(os.path.isfile(s.image_path) for v in splits.values() for s in v)
    assert os.path.isfile(tmp_path / "split" / "_split.json")
