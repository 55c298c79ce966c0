"""Command-line options, and the steps they drive, shared by several ``face-tracker`` subcommands."""

from __future__ import annotations

import argparse
import logging
from typing import Optional

from ..imaging import read_image
from ..infer import available_backends, make_detector

log = logging.getLogger(__name__)

__all__ = ["add_detector_option", "add_detector_arguments", "detector_from_args", "read_and_detect"]


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


def add_detector_arguments(p: argparse.ArgumentParser, threshold_help: str = "score threshold") -> None:
    """``--detector``, ``--model`` and ``--threshold``: the detector :func:`detector_from_args` builds."""
    add_detector_option(p, f"detector backend ({', '.join(available_backends())})")
    p.add_argument("--model", default=None, help="model file for the keras/tflite backends")
    p.add_argument("--threshold", type=float, default=None, help=threshold_help)


def detector_from_args(args: argparse.Namespace):
    """The detector named by the options of :func:`add_detector_arguments`; ``--model`` and
    ``--threshold`` override the backend's defaults only when given."""
    kw = {}
    if args.model:
        kw["model_path"] = args.model
    if args.threshold is not None:
        kw["score_threshold"] = args.threshold
    return make_detector(args.detector, **kw)


def read_and_detect(det, path: str, logger: logging.Logger = log):
    """Read the image file ``path`` and run ``det`` on it.

    Returns:
        ``(image, detections)``: BGR ``uint8`` ``[H, W, 3]`` and the detector's faces (boxes in
        image pixels); None when the file cannot be read (reported on ``logger``, so that the
        caller goes on with its other files).
    """
    try:
        img = read_image(path)
    except Exception as exc:  # report and go on with the other files
        logger.error("%s", exc)
        return None
    return img, det.detect(img)


def add_config_arguments(p: argparse.ArgumentParser, config: str, example: str, default: str = "") -> None:
    """``--config FILE`` and ``--set KEY=VALUE`` of a training command (read by :func:`config_from_args`).

    Args:
        p: the command's parser.
        config: name of the typed config class (shown in the help).
        example: a ``--set`` example for the help.
        default: the file used without ``--config`` (help text only; the command applies it).
    """
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"YAML/JSON training config ({config} keys; a run's config.yaml too); "
                        "the options below override it" + (f" (default: {default})" if default else ""))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help=f"override any config value last, e.g. {example}")


def config_from_args(config_cls, args: argparse.Namespace, options: dict, values: Optional[dict] = None):
    """A training config from a command line: the ``--config`` file, then the options given (None: not
    given, so the file's value or the default stays), then the ``--set`` overrides.

    Args:
        config_cls: a :class:`~face_tracker_core.engine.config.TrainingConfig` subclass.
        args: parsed arguments with ``config`` and ``set`` (:func:`add_config_arguments`).
        options: argparse destination -> config key, for the options that are settings.
        values: further config key -> value pairs the command derived from its options.
    """
    given = {key: getattr(args, dest) for dest, key in options.items()}
    given.update(values or {})
    return config_cls.from_options(args.config, given, args.set)
