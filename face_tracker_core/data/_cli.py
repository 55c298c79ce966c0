"""Argument helpers shared by the ``face-tracker data ...`` subcommands (not a subcommand itself)."""

from __future__ import annotations

import argparse

from .dataset import ImportReport, load_samples, parse_label_map


def add_import_arguments(p: argparse.ArgumentParser, inputs_help: str = "folders of images + LabelMe JSON, "
                         "or .jsonl manifests") -> None:
    p.add_argument("inputs", nargs="+", help=inputs_help)
    g = p.add_argument_group("import")
    g.add_argument("--labels", nargs="+", default=["face"], help="box labels to keep (default: face)")
    g.add_argument("--map", nargs="+", default=[], metavar="OLD=NEW",
                   help="rename labels, e.g. masked_face=face; OLD= ignores OLD")
    g.add_argument("--negatives", action="store_true",
                   help="images without a JSON are negatives (no faces) instead of being skipped")
    g.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    g.add_argument("--tolerance", type=float, default=2.0,
                   help="pixels a box may stick out of its image (clipped) before it is an error")
    g.add_argument("--group", choices=("capture", "all", "none"), default="capture",
                   help="merge near-identical consecutive frames into one split source: frames of a "
                        "capture session (default), consecutive files of any folder, or none")


def import_from_args(args: argparse.Namespace) -> ImportReport:
    return load_samples(args.inputs, labels=tuple(args.labels), label_map=parse_label_map(args.map) or None,
                        negatives=args.negatives, recursive=not args.no_recursive,
                        outside_tolerance=args.tolerance, group_near_duplicates=args.group)
