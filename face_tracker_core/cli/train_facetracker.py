"""``face-tracker train facetracker``: train the tutorials' classic single-face FaceTracker."""

from __future__ import annotations

import argparse

COMMAND = ("train", "facetracker")
HELP = "train the classic FaceTracker (VGG16/MobileNet backbone, class + box heads; TensorFlow backend)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .options import add_config_arguments

    add_config_arguments(p, "FaceTrackerTrainConfig", "batch_size=8 lr=1e-4")
    p.add_argument("--name", default=None, help="run name (folder under runs/detect/)")
    p.add_argument("--backbone", default=None, choices=["vgg16", "mobilenet_v2", "mobilenet_v3_small"])
    p.add_argument("--weights", default=None, choices=["none", "imagenet"], help="imagenet needs internet")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=None)


def training_config(args: argparse.Namespace):
    """The :class:`~face_tracker_core.train.facetracker_trainer.FaceTrackerTrainConfig` of a command line."""
    from ..train.facetracker_trainer import FaceTrackerTrainConfig
    from .options import config_from_args

    keys = ("name", "backbone", "weights", "data_root", "epochs")
    return config_from_args(FaceTrackerTrainConfig, args, {k: k for k in keys})


def run(args: argparse.Namespace) -> int:
    from ..train.facetracker_trainer import train_facetracker

    print(train_facetracker(training_config(args)))
    return 0
