"""``face-tracker data import``: check LabelMe folders and list every bad file."""

from __future__ import annotations

import argparse
import json
import logging
import os

from ..data._cli import add_import_arguments, import_from_args
from ..data.dataset import write_manifest

COMMAND = ("data", "import")
HELP = "import/check LabelMe-labelled folders: summary, one line per bad file, optional manifest"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_import_arguments(p)
    p.add_argument("--manifest", default=None, help="write the good samples to this .jsonl manifest")
    p.add_argument("--report", default=None, help="write the full report (errors, warnings) as JSON")
    p.add_argument("--show-warnings", action="store_true", help="also print warnings (clipped boxes...)")


def run(args: argparse.Namespace) -> int:
    report = import_from_args(args)
    for e in report.errors:
        print(f"ERROR {e}")
    if args.show_warnings:
        for w in report.warnings:
            print(f"WARNING {w}")
    print(report.summary())
    if args.manifest:
        write_manifest(report.samples, args.manifest)
        log.info("manifest: %s", args.manifest)
    if args.report:
        os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh, indent=1)
        log.info("report: %s", args.report)
    return 1 if report.errors else 0
