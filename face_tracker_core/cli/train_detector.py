"""``face-tracker train detector``: train the multi-face detector (writes ``runs/detect/<name>/``)."""

from __future__ import annotations

import argparse
import logging

COMMAND = ("train", "detector")
HELP = "train the multi-face detector (config YAML/JSON; writes runs/detect/<name>/)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..engine.distributed import add_cli_arguments
    from .options import add_config_arguments

    add_config_arguments(p, "DetectorTrainConfig", "batch_size=16 model.neck=48",
                         default="face_tracker_core/train/configs/default_detector/01_scratch.yaml")
    p.add_argument("--name", default=None, help="run name (folder under runs/detect/)")
    p.add_argument("--data-root", default=None, help="folder with the detection sets (../shared/data/detection)")
    p.add_argument("--epochs", type=int, default=None)

    add_cli_arguments(p)


def training_config(args: argparse.Namespace):
    """The :class:`~face_tracker_core.train.detector_trainer.DetectorTrainConfig` of a command line
    (without ``--config``: the chain's first config)."""
    import os

    from ..train.detector_trainer import DetectorTrainConfig
    from .options import config_from_args

    args.config = args.config or os.path.join(os.path.dirname(os.path.dirname(__file__)), "train", "configs",
                                              "default_detector", "01_scratch.yaml")
    return config_from_args(DetectorTrainConfig, args, {"name": "name", "data_root": "data_root", "epochs": "epochs"})


def run(args: argparse.Namespace) -> int:
    from ..engine.distributed import from_args, prepare_process

    dist = from_args(args)
    prepare_process(dist)  # the backend is chosen before anything imports Keras
    from ..train.detector_trainer import train_detector

    print(train_detector(training_config(args), dist))
    return 0
