"""``face-tracker`` entry point.

Every module in this package (other than ``main``) that defines ``COMMAND``, ``add_arguments``
and ``run`` becomes a subcommand, so adding a command means adding one file:

.. code-block:: python

    COMMAND = ("train", "detector")      # -> face-tracker train detector ...
    HELP = "train the multi-face detector"

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # exit code

Errors derived from :class:`~face_tracker_core.errors.FaceTrackerError` are printed as one clear
line and give exit code 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Dict, List, Optional

from ..errors import FaceTrackerError

log = logging.getLogger("face_tracker")


def _command_modules():
    from .. import cli

    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda i: i.name):
        if info.name in ("main", "__init__") or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{cli.__name__}.{info.name}")
        if all(hasattr(mod, a) for a in ("COMMAND", "add_arguments", "run")):
            yield mod


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="face-tracker", description="face_tracker core tools: "
                                     "capture, label, data, train, eval, export, gallery, reenact.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    root = parser.add_subparsers(dest="command", metavar="COMMAND")
    root.required = True
    groups: Dict[tuple, argparse._SubParsersAction] = {(): root}
    parsers: Dict[tuple, argparse.ArgumentParser] = {}
    for mod in _command_modules():
        path = tuple(mod.COMMAND)
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix not in groups:
                p = groups[prefix[:-1]].add_parser(prefix[-1], help=f"{prefix[-1]} ...")
                parsers[prefix] = p
                sub = p.add_subparsers(dest="_".join(prefix) + "_what", metavar="WHAT")
                sub.required = True
                groups[prefix] = sub
        p = groups[path[:-1]].add_parser(path[-1], help=getattr(mod, "HELP", None),
                                         description=getattr(mod, "HELP", None))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return int(args._run(args) or 0)
    except FaceTrackerError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
