"""``face-tracker data stats``: counts, face-size histogram and a contact sheet PNG."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..data._cli import add_import_arguments, import_from_args

COMMAND = ("data", "stats")
HELP = "dataset report: counts, face-size histogram, contact sheet PNG with boxes drawn"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_import_arguments(p)
    p.add_argument("--out", default=None,
                   help="folder for stats.json, contact_sheet.png, face_sizes.png "
                        "(default runs/data_stats/<first input's name>)")
    p.add_argument("--count", type=int, default=36, help="images on the contact sheet")
    p.add_argument("--seed", type=int, default=0, help="which images go on the contact sheet")


def run(args: argparse.Namespace) -> int:
    from ..data.stats import dataset_stats, format_stats, plot_size_histogram, sample_contact_sheet

    report = import_from_args(args)
    for e in report.errors:
        print(f"ERROR {e}")
    name = os.path.splitext(os.path.basename(os.path.normpath(args.inputs[0])))[0] or "dataset"
    out = args.out or os.path.join("runs", "data_stats", name)
    stats = dataset_stats(report.samples)
    stats["bad_files"] = len(report.errors)
    print(format_stats(stats, title=", ".join(args.inputs)))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "stats.json"), "w", encoding="utf-8") as fh:
        json.dump(stats, fh, indent=1)
    sheet = sample_contact_sheet(report.samples, os.path.join(out, "contact_sheet.png"), count=args.count,
                                 seed=args.seed)
    hist = plot_size_histogram(report.samples, os.path.join(out, "face_sizes.png"))
    print(f"report: {os.path.join(out, 'stats.json')}, contact sheet: {sheet}"
          + (f", histogram: {hist}" if hist else ""))
    return 1 if report.errors else 0
