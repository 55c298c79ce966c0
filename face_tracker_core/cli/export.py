"""``face-tracker export``: a trained detector to ``.keras``, SavedModel and/or TFLite."""

from __future__ import annotations

import argparse
import logging
import os

COMMAND = ("export",)
HELP = "export a trained detector (.keras) to keras / savedmodel / tflite (float16)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="trained .keras file, e.g. runs/detect/<name>/best.keras")
    p.add_argument("--format", default="tflite", choices=["keras", "savedmodel", "tflite", "all"])
    p.add_argument("--out", default=None, help="output file/folder (for --format all: a folder)")
    p.add_argument("--quantize", default="float16", choices=["float32", "float16", "dynamic"],
                   help="TFLite weight type")
    p.add_argument("--threshold", type=float, default=None, help="operating score threshold stored with the model")
    p.add_argument("--input-size", type=int, default=None, help="inference longest side stored with the model")


def run(args: argparse.Namespace) -> int:
    from ..export import export_detector

    overrides = {}
    if args.threshold is not None:
        overrides["score_threshold"] = args.threshold
    if args.input_size is not None:
        overrides["input_size"] = args.input_size
    stem = os.path.splitext(os.path.basename(args.model))[0]
    ext = {"keras": ".keras", "savedmodel": "_savedmodel", "tflite": ".tflite"}
    formats = ["keras", "savedmodel", "tflite"] if args.format == "all" else [args.format]
    for fmt in formats:
        if args.out and args.format != "all":
            out = args.out
        else:
            folder = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)), "export")
            out = os.path.join(folder, stem + ext[fmt])
        print(export_detector(args.model, out, fmt, args.quantize, overrides))
    return 0
