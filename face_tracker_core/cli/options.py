"""Command-line options shared by several ``face-tracker`` subcommands."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

__all__ = ["add_detector_option"]


class _DeprecatedAlias(argparse.Action):
    """Stores into the option's new ``dest`` and logs that the old spelling is deprecated."""

    def __init__(self, option_strings, dest, new_option: str = "", **kwargs) -> None:
        self.new_option = new_option
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        log.warning("%s is deprecated: use %s", option_string, self.new_option)
        setattr(namespace, self.dest, values)


def add_detector_option(p: argparse.ArgumentParser, help: str, default: str = "default") -> None:
    """``--detector NAME`` (a detector backend for :func:`~face_tracker_core.infer.make_detector`).

    ``--backend`` is accepted as a deprecated spelling of the same option (hidden from ``--help``).
    """
    p.add_argument("--detector", default=default, help=help)
    p.add_argument("--backend", dest="detector", action=_DeprecatedAlias, new_option="--detector",
                   help=argparse.SUPPRESS)
