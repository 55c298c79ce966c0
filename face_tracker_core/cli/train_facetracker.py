"""``face-tracker train facetracker``: train the tutorials' classic single-face FaceTracker."""

from __future__ import annotations

import argparse

COMMAND = ("train", "facetracker")
HELP = "train the classic FaceTracker (VGG16/MobileNet backbone, class + box heads; TensorFlow backend)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML/JSON config (see FaceTrackerTrainConfig)")
    p.add_argument("--name", default=None, help="run name (folder under runs/detect/)")
    p.add_argument("--backbone", default=None, choices=["vgg16", "mobilenet_v2", "mobilenet_v3_small"])
    p.add_argument("--weights", default=None, choices=["none", "imagenet"], help="imagenet needs internet")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")


def run(args: argparse.Namespace) -> int:
    from ..train.facetracker_trainer import FaceTrackerTrainConfig, train_facetracker

    overrides = list(args.set)
    for key, val in (("name", args.name), ("backbone", args.backbone), ("weights", args.weights),
                     ("data_root", args.data_root), ("epochs", args.epochs)):
        if val is not None:
            overrides.append(f"{key}={val}")
    print(train_facetracker(FaceTrackerTrainConfig.from_file(args.config, overrides)))
    return 0
