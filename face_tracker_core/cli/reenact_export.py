"""``face-tracker reenact export``: generator -> .keras, SavedModel and TFLite ("reduce and freeze")."""

from __future__ import annotations

import argparse
import json
import os

COMMAND = ("reenact", "export")
HELP = "export a trained reenactment generator (.keras, SavedModel, TFLite) with its metadata"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..reenact.export import FORMATS, QUANTIZATIONS

    p.add_argument("source", help="run folder (runs/reenact/<name>) or generator .keras")
    p.add_argument("--out", default=None, help="output folder (default <run>/export)")
    p.add_argument("--name", default="reenact_generator", help="file stem")
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    p.add_argument("--quantize", default="none", choices=QUANTIZATIONS, help="TFLite weight type")


def run(args: argparse.Namespace) -> int:
    from ..reenact.export import export_generator

    src_dir = args.source if os.path.isdir(args.source) else os.path.dirname(os.path.abspath(args.source))
    out = args.out or os.path.join(src_dir, "export")
    print(json.dumps(export_generator(args.source, out, name=args.name, formats=args.formats,
                                      quantize=args.quantize)))
    return 0
