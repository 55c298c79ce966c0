"""``face-tracker train transfer``: "is it person X" on a frozen attribute conv base + one sigmoid neuron.

Settings: :func:`~face_tracker_core.cli.options.config_from_args`; unset options keep the defaults
of :class:`~face_tracker_core.attributes.transfer_trainer.TransferTrainConfig` (in brackets in the help).
"""

from __future__ import annotations

import argparse
import json
import logging

COMMAND = ("train", "transfer")
HELP = ("train a yes/no 'is it person X' classifier on the frozen conv base of an attribute model "
        "(one new sigmoid neuron; optional second phase unfreezing the top block); reports ROC AUC and TAR@FAR=1e-2")
log = logging.getLogger(__name__)

#: CLI option -> config key, for the options that are training settings.
_OPTIONS = {"base": "base", "positives": "positives", "negatives": "negatives", "unseen": "unseen",
            "identity_root": "identity_root", "targets": "targets", "min_photos": "min_photos", "name": "name",
            "runs": "runs_root", "cache": "cache_root", "detector": "detector", "epochs": "epochs", "lr": "lr",
            "unfreeze_top_epochs": "unfreeze_top_epochs", "seed": "seed", "pooling": "pooling", "solver": "solver",
            "copies": "copies", "l2": "l2"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .options import add_config_arguments

    add_config_arguments(p, "TransferTrainConfig", "copies=8 normalize=false")
    p.add_argument("--base", help="attribute model .keras whose conv base is reused [the shipped one]")
    g = p.add_argument_group("one person (folders)")
    g.add_argument("--positives", help="folder of the target person's photos (any OpenCV format)")
    g.add_argument("--negatives", help="folder of other people's photos (person sub-folders or flat)")
    g.add_argument("--unseen", help="optional folder of further people, used only for evaluation")
    g2 = p.add_argument_group("benchmark over several people of an identity folder")
    g2.add_argument("--identity-root",
                    help="folder of person folders (e.g. ../shared/data/identity/celeba): run the protocol on "
                         "--targets people the base never saw")
    g2.add_argument("--targets", type=int, help="number of target people [5]")
    g2.add_argument("--min-photos", type=int, help="targets need at least this many usable photos [12]")
    p.add_argument("--name", help="run name (output folder runs/transfer/NAME) [transfer]")
    p.add_argument("--runs", help="root of the run folders [runs]")
    p.add_argument("--cache", help="where face crops are cached [runs/cache/attributes]")
    p.add_argument("--detector", help="detector backend that finds the face to crop [default]")
    p.add_argument("--epochs", type=int, help="--solver adam: epochs [30]")
    p.add_argument("--lr", type=float, help="--solver adam: initial learning rate [0.05]")
    p.add_argument("--unfreeze-top-epochs", type=int,
                   help="second phase: epochs with the base's top block unfrozen (lr 1e-4); 0 = off [0]")
    p.add_argument("--no-normalize", action="store_true", help="feed raw (not L2-normalised) features to the neuron")
    p.add_argument("--seed", type=int, help="[0]")
    p.add_argument("--pooling", choices=("gap", "multiscale"),
                   help="parameter-free features for the neuron: the base's global average (gap) or global + 2x2 "
                        "average of its top feature map (multiscale, default)")
    p.add_argument("--solver", choices=("adam", "lbfgs"),
                   help="adam: --epochs through the model on augmented crops; lbfgs (default): converged fit on the "
                        "frozen features of the crops and --copies augmented versions")
    p.add_argument("--copies", type=int, help="lbfgs: augmented copies of each training crop (default 32)")
    p.add_argument("--l2", type=float, help="lbfgs: L2 penalty on the neuron's weights (default 1e-5)")


def training_config(args: argparse.Namespace):
    """The :class:`~face_tracker_core.attributes.transfer_trainer.TransferTrainConfig` of a command line
    (``--no-normalize`` sets ``normalize: false``)."""
    from ..attributes.transfer_trainer import TransferTrainConfig
    from .options import config_from_args

    return config_from_args(TransferTrainConfig, args, _OPTIONS, {"normalize": False if args.no_normalize else None})


def run(args: argparse.Namespace) -> int:
    from ..attributes.transfer_trainer import train_transfer

    summary = train_transfer(training_config(args))
    print(json.dumps(summary, indent=1, default=str))
    return 0
