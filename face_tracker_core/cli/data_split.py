"""``face-tracker data split``: train/val/test manifests split by source (no leaks)."""

from __future__ import annotations

import argparse
import logging
import os

from ..data._cli import add_import_arguments, import_from_args

COMMAND = ("data", "split")
HELP = "split into train/val/test .jsonl manifests by source: variants and near-duplicates stay together"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_import_arguments(p)
    p.add_argument("--out", required=True, help="folder for train.jsonl, val.jsonl, test.jsonl, _split.json")
    p.add_argument("--fractions", type=float, nargs=3, default=[0.8, 0.1, 0.1], metavar=("TRAIN", "VAL", "TEST"),
                   help="share of images per split (default 0.8 0.1 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=("greedy", "hash"), default="greedy",
                   help="greedy: closest to the fractions; hash: a source's split never changes when data is added")
    p.add_argument("--strict", action="store_true", help="stop when the import finds bad files")


def run(args: argparse.Namespace) -> int:
    from ..data.split import group_by_source, split_samples, write_splits

    report = import_from_args(args)
    for e in report.errors:
        log.error("skipped: %s", e)
    if args.strict:
        report.raise_if_errors()
    splits = split_samples(report.samples, args.fractions, seed=args.seed, method=args.method)
    paths = write_splits(splits, args.out, meta={"inputs": [os.path.abspath(i) for i in args.inputs],
                                                 "fractions": args.fractions, "seed": args.seed,
                                                 "method": args.method})
    print(f"{'split':<6} {'images':>7} {'faces':>7} {'negatives':>9} {'sources':>8}  manifest")
    for name, samples in splits.items():
        print(f"{name:<6} {len(samples):7d} {sum(len(s.boxes) for s in samples):7d} "
              f"{sum(1 for s in samples if s.negative):9d} {len(group_by_source(samples)):8d}  {paths[name]}")
    return 1 if report.errors else 0
