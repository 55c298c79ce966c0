"""``face-tracker reenact eval``: SSIM, PSNR, L1, landmark error and fps of a generator on held-out frames."""

from __future__ import annotations

import argparse
import json
import os

COMMAND = ("reenact", "eval")
HELP = "evaluate a reenactment generator on the held-out tail of prepared pairs (JSON to stdout)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder from 'face-tracker reenact prepare'")
    p.add_argument("--model", default=None, help="generator .keras/.tflite or run folder (default: shipped)")
    p.add_argument("--limit", type=int, default=None, help="evaluate at most N frames, evenly spaced")
    p.add_argument("--detector", default="default", help="detector for the landmark error")
    p.add_argument("--no-landmarks", action="store_true", help="skip the landmark error")
    p.add_argument("--grid", default=None, help="write a sketch/output/truth grid PNG here")
    p.add_argument("--json", default=None, help="also write the metrics to this file")


def run(args: argparse.Namespace) -> int:
    from ..infer import make_detector
    from ..reenact.evaluate import evaluate
    from ..reenact.export import resolve_generator
    from ..reenact.prepare import load_pairs
    from ..reenact.renderer import DEFAULT_MODEL, Generator

    path = resolve_generator(args.model) if args.model else DEFAULT_MODEL
    gen = Generator(path)
    data = load_pairs(args.data)
    det = None if args.no_landmarks else make_detector(args.detector)
    res = evaluate(gen, data, detector=det, limit=args.limit, landmarks=not args.no_landmarks, grid_path=args.grid)
    res["model"] = os.path.abspath(path)
    print(json.dumps(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0
