"""Dataset report (counts, histogram, contact sheet) and the augment command end to end."""

from __future__ import annotations

import json
import os

import cv2

from face_tracker_core.cli.main import main as cli_main
from face_tracker_core.data.dataset import import_folder
from face_tracker_core.data.stats import dataset_stats, format_stats


def test_stats_of_the_shared_sets(shared_data):
    rep = import_folder(shared_data("detection", "dlib_faces"))
    neg = import_folder(shared_data("detection", "noface"), negatives=True)
    st = dataset_stats(rep.samples + neg.samples)
    assert st["images"] == len(rep.samples) + len(neg.samples)
    assert st["negatives"] == len(neg.samples) and st["faces"] == sum(len(s.boxes) for s in rep.samples)
    assert sum(st["face_size_px"].values()) == st["faces"]
    assert sum(st["faces_per_image"].values()) == st["images"]
    assert st["faces_per_image"]["0"] == len(neg.samples)
    assert 20 < st["face_size_median_px"] < 100  # dlib's example photos: small group faces
    text = format_stats(st)
    assert "face size" in text and "#" in text


def test_cli_stats_writes_report_contact_sheet_and_histogram(shared_data, tmp_path, capsys):
    out = tmp_path / "report"
    code = cli_main(["data", "stats", shared_data("detection", "dlib_faces"), "--out", str(out), "--count", "8"])
    assert code == 0
    st = json.load(open(out / "stats.json"))
    assert st["images"] == 9 and st["bad_files"] == 0
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 6 * 200 and sheet.std() > 10
    assert cv2.imread(str(out / "face_sizes.png")) is not None
    assert "contact sheet" in capsys.readouterr().out


def test_cli_augment_with_a_yaml_config(shared_data, tmp_path, capsys):
    cfg = tmp_path / "aug.yaml"
    cfg.write_text("transforms:\n"
                   "  - {name: RandomCrop, width: 300, height: 300}\n"
                   "  - {name: HorizontalFlip, p: 0.5}\n"
                   "  - {name: RandomGamma, p: 0.2}\n"
                   "min_visibility: 0.3\n", encoding="utf-8")
    out = tmp_path / "aug"
    code = cli_main(["data", "augment", shared_data("detection", "dlib_faces"), "--out", str(out),
                     "-n", "2", "--config", str(cfg), "--workers", "1"])
    assert code == 0
    rep = import_folder(str(out))
    assert rep.ok and len(rep.samples) == 18
    assert all(s.width == 300 and s.height == 300 for s in rep.samples)
    meta = json.load(open(out / "_augment.json"))
    assert meta["config"]["min_visibility"] == 0.3 and meta["written"] == 18
    assert "images/s" in capsys.readouterr().out
    # a bad config is one clear line, exit code 2
    cfg.write_text("transforms:\n  - {name: Nope}\n", encoding="utf-8")
    assert cli_main(["data", "augment", shared_data("detection", "dlib_faces"), "--out", str(out),
                     "--config", str(cfg)]) == 2
    assert os.path.isdir(out)
