"""``face-tracker data augment``: N albumentations variants per image, boxes moved with the pixels."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

from ..data._cli import add_import_arguments, import_from_args

COMMAND = ("data", "augment")
HELP = "write N augmented variants (JPEG + LabelMe JSON keeping the source id) of every labelled image"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_import_arguments(p)
    p.add_argument("--out", required=True, help="output folder (kept separate from the inputs)")
    p.add_argument("-n", "--variants", type=int, default=None, help="variants per image (config default: 10)")
    p.add_argument("--config", default=None, help="YAML/JSON augmentation config (transforms, min_visibility...)")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--seed", type=int, default=None, help="base seed (config default: 0)")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--strict", action="store_true", help="stop when the import finds bad files")


def run(args: argparse.Namespace) -> int:
    from ..data.augment import augment_samples, load_config, merge_config

    config = load_config(args.config) if args.config else merge_config()
    report = import_from_args(args)
    for e in report.errors:
        log.error("skipped: %s", e)
    if args.strict:
        report.raise_if_errors()
    t0 = time.perf_counter()
    aug = augment_samples(report.samples, args.out, variants=args.variants, config=config,
                          workers=args.workers, seed=args.seed, jpeg_quality=args.jpeg_quality)
    dt = time.perf_counter() - t0
    for e in aug.errors:
        print(f"ERROR {e}")
    meta = {"inputs": [os.path.abspath(i) for i in args.inputs], "config": config,
            "variants": args.variants or config["variants"], "seed": config["seed"] if args.seed is None else args.seed,
            "written": len(aug.samples), "faces_kept": aug.kept_boxes, "faces_dropped": aug.dropped_boxes,
            "bad_inputs": [str(e) for e in report.errors + aug.errors]}
    with open(os.path.join(args.out, "_augment.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1)
    print(f"{len(aug.samples)} variants of {len(report.samples)} images written to {args.out} in {dt:.1f} s "
          f"({len(aug.samples) / max(dt, 1e-9):.1f} images/s); {aug.kept_boxes} faces kept, "
          f"{aug.dropped_boxes} cut faces dropped; {len(report.errors) + len(aug.errors)} bad inputs")
    return 1 if (report.errors or aug.errors) else 0
