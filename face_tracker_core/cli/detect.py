"""``face-tracker detect``: run a detector on images and print/save the faces found."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..draw import draw
from .options import add_detector_arguments, detector_from_args, read_and_detect

COMMAND = ("detect",)
HELP = "detect faces in image files (JSON lines to stdout, annotated copies with --out)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files")
    add_detector_arguments(p)
    p.add_argument("--out", default=None, help="folder for annotated copies")


def run(args: argparse.Namespace) -> int:
    det = detector_from_args(args)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    failures = 0
    for path in args.images:
        found = read_and_detect(det, path, log)
        if found is None:
            failures += 1
            continue
        img, dets = found
        print(json.dumps({"image": path, "faces": [
            {"box": [round(v, 1) for v in d.box.as_xyxy()], "score": round(d.score, 4)} for d in dets]}))
        if args.out:
            import cv2

            cv2.imwrite(os.path.join(args.out, os.path.basename(path)), draw(img, dets))
    return 1 if failures else 0
