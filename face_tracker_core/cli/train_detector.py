"""``face-tracker train detector``: train the multi-face detector (writes ``runs/detect/<name>/``)."""

from __future__ import annotations

import argparse
import logging

COMMAND = ("train", "detector")
HELP = "train the multi-face detector (config YAML/JSON; writes runs/detect/<name>/)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None,
                   help="training config (default: face_tracker_core/train/configs/default_detector/01_scratch.yaml)")
    p.add_argument("--name", default=None, help="run name (folder under runs/detect/)")
    p.add_argument("--data-root", default=None, help="folder with the detection sets (../shared/data/detection)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. batch_size=16 model.neck=48")
    from ..engine.distributed import add_cli_arguments

    add_cli_arguments(p)


def run(args: argparse.Namespace) -> int:
    import os

    from ..engine.distributed import from_args, prepare_process

    dist = from_args(args)
    prepare_process(dist)  # the backend is chosen before anything imports Keras
    from ..train.detector_trainer import DetectorTrainConfig, train_detector

    path = args.config or os.path.join(os.path.dirname(os.path.dirname(__file__)), "train", "configs",
                                       "default_detector", "01_scratch.yaml")
    overrides = list(args.set)
    if args.name:
        overrides.append(f"name={args.name}")
    if args.data_root:
        overrides.append(f"data_root={args.data_root}")
    if args.epochs:
        overrides.append(f"epochs={args.epochs}")
    run_dir = train_detector(DetectorTrainConfig.from_file(path, overrides), dist)
    print(run_dir)
    return 0
