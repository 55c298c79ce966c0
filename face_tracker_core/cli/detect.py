"""``face-tracker detect``: run a detector on images and print/save the faces found."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..draw import draw
from ..imaging import read_image
from ..infer import available_backends, make_detector
from .options import add_detector_option

COMMAND = ("detect",)
HELP = "detect faces in image files (JSON lines to stdout, annotated copies with --out)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files")
    add_detector_option(p, f"detector backend ({', '.join(available_backends())})")
    p.add_argument("--model", default=None, help="model file for the keras/tflite backends")
    p.add_argument("--threshold", type=float, default=None, help="score threshold")
    p.add_argument("--out", default=None, help="folder for annotated copies")


def run(args: argparse.Namespace) -> int:
    kw = {}
    if args.model:
        kw["model_path"] = args.model
    if args.threshold is not None:
        kw["score_threshold"] = args.threshold
    det = make_detector(args.detector, **kw)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    failures = 0
    for path in args.images:
        try:
            img = read_image(path)
        except Exception as exc:  # report and go on with the other files
            log.error("%s", exc)
            failures += 1
            continue
        dets = det.detect(img)
        print(json.dumps({"image": path, "faces": [
            {"box": [round(v, 1) for v in d.box.as_xyxy()], "score": round(d.score, 4)} for d in dets]}))
        if args.out:
            import cv2

            cv2.imwrite(os.path.join(args.out, os.path.basename(path)), draw(img, dets))
    return 1 if failures else 0
