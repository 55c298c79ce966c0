"""``face-tracker train attributes``: CelebA 40-attribute model (crop cache, run folder, baseline table).

Settings: :func:`~face_tracker_core.cli.options.config_from_args` (options left unset keep
:class:`AttributeTrainConfig`'s default, shown in brackets in the help).
"""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("train", "attributes")
HELP = ("train the CelebA face-attribute model (writes runs/attributes/NAME/: config, weights, metrics.csv, "
        "plots, TensorBoard, per-attribute table vs the majority baseline)")
log = logging.getLogger(__name__)

#: CLI option -> config key, for the options that are training settings.
_OPTIONS = {"attr_file": "attr_file", "images": "images_dir", "bbox_file": "bbox_file",
            "partition_file": "partition_file", "name": "name", "runs": "runs_root", "cache": "cache_root",
            "arch": "arch", "size": "size", "margin": "margin", "color": "color", "detector": "detector",
            "fallback": "fallback", "test_frac": "test_frac", "val_frac": "val_frac", "epochs": "epochs",
            "head_epochs": "head_epochs", "batch_size": "batch_size", "lr": "lr", "finetune_lr": "finetune_lr",
            "balanced_bce": "balanced_bce", "seed": "seed", "pretrain_identity": "pretrain_identity",
            "pretrain_holdout": "pretrain_holdout", "pretrain_teacher": "pretrain_teacher",
            "pretrain_epochs": "pretrain_epochs", "pretrain_lr": "pretrain_lr",
            "pretrain_embed_weight": "pretrain_embed_weight", "pretrain_extra_detector": "pretrain_extra_detectors",
            "init_base": "init_base", "hidden": "hidden", "max_photos": "max_photos"}


def _arch(value: str) -> str:
    """``--arch`` value; the former name ``seed`` still selects ``small_cnn`` (with a warning)."""
    if value == "seed":
        log.warning("--arch seed is deprecated: it is now called small_cnn")
        return "small_cnn"
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = os.path.join("..", "shared", "data", "attributes", "celeba")
    from .options import add_config_arguments

    add_config_arguments(p, "AttributeTrainConfig", "epochs=20 pretrain_extra_detectors=[default]")
    p.add_argument("--attr-file", help="list_attr_celeba.txt (official format: count, names, rows of -1/1) or its "
                                       f"CSV variant [{os.path.join(d, 'list_attr_celeba.txt')}]")
    p.add_argument("--images", help=f"folder of the photos named in --attr-file [{os.path.join(d, 'images')}]")
    p.add_argument("--bbox-file", help="list_bbox_celeba.txt: crop these boxes instead of detecting")
    p.add_argument("--partition-file",
                   help="list_eval_partition.txt: use CelebA's official split instead of the hash split")
    p.add_argument("--name", help="run name (output folder runs/attributes/NAME) [celeba]")
    p.add_argument("--runs", help="root of the run folders [runs]")
    p.add_argument("--cache", help="where face crops are cached (built once, reused by later runs) "
                                   "[runs/cache/attributes]")
    p.add_argument("--arch", type=_arch, choices=("resnet", "small_cnn"),
                   help="conv base: small ResNet or a plain Conv/ReLU/MaxPool stack (small_cnn) [resnet]")
    p.add_argument("--size", type=int, help="crop side in pixels [64]")
    p.add_argument("--margin", type=float, help="crop margin, fraction of the face box per side [0.4]")
    p.add_argument("--color", choices=("rgb", "gray"), help="[rgb]")
    p.add_argument("--detector", help="detector backend used to find the face to crop [default]")
    p.add_argument("--fallback", choices=("dlib_hog", "none"),
                   help="second detector for photos where the first finds no face [dlib_hog]")
    p.add_argument("--test-frac", type=float, help="hash split: fraction of photos held out for test [0.2]")
    p.add_argument("--val-frac", type=float, help="hash split: fraction for validation [0.15]")
    p.add_argument("--epochs", type=int, help="[60]")
    p.add_argument("--head-epochs", type=int,
                   help="with --pretrain-identity: epochs training only the head before fine-tuning all [8]")
    p.add_argument("--batch-size", type=int, help="[32]")
    p.add_argument("--lr", type=float, help="[1e-3]")
    p.add_argument("--finetune-lr", type=float, help="[3e-4]")
    p.add_argument("--balanced-bce", action="store_true", default=None,
                   help="class-balanced BCE (rare attributes weigh as much as common ones)")
    p.add_argument("--seed", type=int, help="[0]")
    p.add_argument("--pretrain-identity", metavar="DIR",
                   help="first pre-train the conv base to tell apart the people of DIR (one sub-folder per person; "
                        "e.g. ../shared/data/identity/celeba), holding out --pretrain-holdout of them")
    p.add_argument("--pretrain-holdout", type=float,
                   help="fraction of people never shown to pre-training (kept for the transfer task) [0.35]")
    p.add_argument("--pretrain-teacher", choices=("dlib",),
                   help="pre-train by distilling this face embedding (dlib: offline, face_recognition_models) on the "
                        "photos of --pretrain-identity instead of classifying its people")
    p.add_argument("--pretrain-epochs", type=int, help="[40]")
    p.add_argument("--pretrain-lr", type=float, help="initial learning rate of the pre-training [2e-3]")
    p.add_argument("--pretrain-embed-weight", type=float,
                   help="distillation: weight of the 128 embedding dimensions in the MSE (landmarks: 1) [1]")
    p.add_argument("--pretrain-extra-detector", action="append", metavar="DETECTOR",
                   help="distillation: also train on crops of the same photos from this detector (repeatable; "
                        "e.g. 'default', the shipped detector, whose boxes differ from the Haar cascade's)")
    p.add_argument("--init-base", metavar="KERAS",
                   help="start from this conv base (a run's pretrain/conv_base.keras or an attribute model) "
                        "instead of pre-training again; with --pretrain-teacher, distillation continues from it")
    p.add_argument("--hidden", type=int, help="units of the head's hidden layer (0: linear head) [256]")
    p.add_argument("--max-photos", type=int, help="use only the first N photos (smoke tests)")


def training_config(args: argparse.Namespace):
    """The :class:`~face_tracker_core.attributes.training.AttributeTrainConfig` of a command line."""
    from ..attributes.training import AttributeTrainConfig
    from .options import config_from_args

    return config_from_args(AttributeTrainConfig, args, _OPTIONS)


def run(args: argparse.Namespace) -> int:
    from ..attributes.training import train_attributes

    summary = train_attributes(training_config(args))
    print(json.dumps(summary, indent=1, default=str))
    return 0
