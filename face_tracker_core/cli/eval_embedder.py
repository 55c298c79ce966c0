"""``face-tracker eval embedder``: verification (10-fold accuracy, ROC AUC, TAR@FAR, ms/face) and
open-set identification of several embedders on the same held-out people and pairs."""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("eval", "embedder")
HELP = "compare embedders on held-out pairs (LFW-style 10 folds) and a 20-person open-set gallery"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=os.path.join("..", "shared", "data", "identity", "celeba"),
                   help="folder with one sub-folder of photos per person")
    p.add_argument("--embedders", default="dlib,facenet,siamese", help="comma-separated embedder names")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="weights for an embedder, e.g. facenet=runs/embedder/facenet/model.keras")
    p.add_argument("--option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="embedder option, e.g. dlib:flip=1 (numbers and 0/1 are converted)")
    p.add_argument("--detector", default="default", help="detector backend finding the faces")
    p.add_argument("--no-retry", action="store_true", help="no upscale/rotation retries when no face is found")
    p.add_argument("--fallback-score", type=float, default=0.2,
                   help="when no pass finds a face at the detector's threshold, take the best box scoring at "
                        "least this (every evaluation photo shows someone); negative = off")
    p.add_argument("--pairs", default=None, help="pairs CSV (fold,same,a,b); default: generated from the split")
    p.add_argument("--far", type=float, default=3e-4, help="false-accept rate per comparison the threshold is calibrated for")
    p.add_argument("--match", choices=("centroid", "max"), default="centroid", help="gallery matching rule")
    p.add_argument("--no-identification", action="store_true", help="verification only")
    p.add_argument("--out", default=os.path.join("runs", "eval", "embedder"), help="output folder")


def run(args: argparse.Namespace) -> int:
    from ..recognition.dataset import load_pairs, save_pairs
    from ..recognition.evaluate import evaluate, markdown_table
    from ..recognition.faces import FaceFinder

    kw = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"--model expects NAME=PATH, got {spec!r}")
        kw[name] = {"model_path": path}
    for spec in args.option:
        name, _, kv = spec.partition(":")
        key, _, val = kv.partition("=")
        if not key or not val:
            raise SystemExit(f"--option expects NAME:KEY=VALUE, got {spec!r}")
        try:
            value = int(val) if val.lstrip("-").isdigit() else float(val)
        except ValueError:
            value = val
        kw.setdefault(name, {})[key] = value
    pairs = load_pairs(args.pairs) if args.pairs else None
    os.makedirs(args.out, exist_ok=True)
    finder = FaceFinder(args.detector, retry=not args.no_retry,
                        fallback_score=args.fallback_score if args.fallback_score >= 0 else None)
    res = evaluate(args.data, [e.strip() for e in args.embedders.split(",") if e.strip()], finder,
                   pairs=pairs, calib_far=args.far,
                   do_identification=not args.no_identification, embedder_kw=kw, workdir=args.out,
                   match=args.match)
    if pairs is None:
        from ..recognition.dataset import list_identities, make_pairs, split_identities

        people = list_identities(args.data)
        save_pairs(make_pairs({n: people[n] for n in split_identities(list(people))["verify"]}),
                   os.path.join(args.out, "pairs.csv"))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    table = markdown_table(res)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0
