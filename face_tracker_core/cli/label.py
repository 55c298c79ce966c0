"""``face-tracker label``: auto-label a folder with a detector, as LabelMe JSON for people to review."""

from __future__ import annotations

import argparse
import logging
import os

from ..data.capture import IMAGE_EXTENSIONS
from ..data.labelme import REVIEW_FLAG, now_iso, write_labelme
from .options import add_detector_arguments, detector_from_args, read_and_detect

COMMAND = ("label",)
HELP = ("run a detector over image folders and write LabelMe JSON (flagged needs_review) beside every "
        "image that has none; existing labels are never overwritten")
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folders", nargs="+", help="folders of images")
    add_detector_arguments(p, threshold_help="detector score threshold")
    p.add_argument("--label", default="face", help="label written on every box")
    p.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    p.add_argument("--dry-run", action="store_true", help="detect and report, write nothing")


def _images(folder: str, recursive: bool):
    for dirpath, dirnames, files in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_"))) if recursive else []
        for name in sorted(files):
            if not name.startswith((".", "_")) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                yield os.path.join(dirpath, name)


def run(args: argparse.Namespace) -> int:
    det = detector_from_args(args)
    desc = det.describe()
    written = kept = bad = faces = 0
    for folder in args.folders:
        if not os.path.isdir(folder):
            log.error("%s: no such folder", folder)
            bad += 1
            continue
        for path in _images(folder, not args.no_recursive):
            json_path = os.path.splitext(path)[0] + ".json"
            if os.path.exists(json_path):
                kept += 1
                continue
            found = read_and_detect(det, path, log)
            if found is None:
                bad += 1
                continue
            img, dets = found
            faces += len(dets)
            if args.dry_run:
                print(f"{path}: {len(dets)} faces")
                continue
            h, w = img.shape[:2]
            try:
                write_labelme(json_path, path, w, h, [d.box.clip(w, h) for d in dets], [args.label] * len(dets),
                              scores=[d.score for d in dets], flags={REVIEW_FLAG: True},
                              extra={"auto_label": {"detector": desc, "created": now_iso(), "count": len(dets)}},
                              description=f"auto {desc}")
                written += 1
            except FileExistsError:  # a person saved labels meanwhile: theirs win
                kept += 1
            except OSError as exc:
                log.error("%s: cannot write (%s)", json_path, exc)
                bad += 1
    print(f"{written} label files written ({faces} faces, flagged '{REVIEW_FLAG}'), {kept} existing kept, "
          f"{bad} errors" + (" (dry run)" if args.dry_run else ""))
    if written:
        print("review them: labelme <folder> --nodata --autosave  (untick needs_review once checked)")
    return 1 if bad else 0
