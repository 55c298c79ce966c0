"""``face-tracker train transfer``: "is it person X" on a frozen attribute conv base + one sigmoid neuron."""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("train", "transfer")
HELP = ("train a yes/no 'is it person X' classifier on the frozen conv base of an attribute model "
        "(one new sigmoid neuron; optional second phase unfreezing the top block); reports ROC AUC and TAR@FAR=1e-2")
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", default=None, help="attribute model .keras whose conv base is reused (default: shipped)")
    g = p.add_argument_group("one person (folders)")
    g.add_argument("--positives", default=None, help="folder of the target person's photos (any OpenCV format)")
    g.add_argument("--negatives", default=None, help="folder of other people's photos (person sub-folders or flat)")
    g.add_argument("--unseen", default=None, help="optional folder of further people, used only for evaluation")
    g2 = p.add_argument_group("benchmark over several people of an identity folder")
    g2.add_argument("--identity-root", default=None,
                    help="folder of person folders (e.g. ../shared/data/identity/celeba): run the protocol on "
                         "--targets people the base never saw")
    g2.add_argument("--targets", type=int, default=5, help="number of target people")
    g2.add_argument("--min-photos", type=int, default=12, help="targets need at least this many usable photos")
    p.add_argument("--name", default="transfer", help="run name (output folder runs/transfer/NAME)")
    p.add_argument("--runs", default="runs")
    p.add_argument("--cache", default=os.path.join("runs", "cache", "attributes"))
    p.add_argument("--detector", default="default", help="detector backend that finds the face to crop")
    p.add_argument("--epochs", type=int, default=30, help="--solver adam: epochs")
    p.add_argument("--lr", type=float, default=0.05, help="--solver adam: initial learning rate")
    p.add_argument("--unfreeze-top-epochs", type=int, default=0,
                   help="second phase: epochs with the base's top block unfrozen (lr 1e-4); 0 = off")
    p.add_argument("--no-normalize", action="store_true", help="feed raw (not L2-normalised) features to the neuron")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pooling", default=None, choices=("gap", "multiscale"),
                   help="parameter-free features for the neuron: the base's global average (gap) or global + 2x2 "
                        "average of its top feature map (multiscale, default)")
    p.add_argument("--solver", default=None, choices=("adam", "lbfgs"),
                   help="adam: --epochs through the model on augmented crops; lbfgs (default): converged fit on the "
                        "frozen features of the crops and --copies augmented versions")
    p.add_argument("--copies", type=int, default=None,
                   help="lbfgs: augmented copies of each training crop (default 32)")
    p.add_argument("--l2", type=float, default=None, help="lbfgs: L2 penalty on the neuron's weights (default 1e-5)")


def run(args: argparse.Namespace) -> int:
    from ..attributes.predictor import DEFAULT_MODEL
    from ..attributes.runs import make_run_dir, write_json
    from ..attributes.transfer import train_person_classifier, transfer_benchmark

    from ..attributes.crops import FaceCropper
    from ..attributes.model import load_model

    base = args.base or DEFAULT_MODEL
    crop = load_model(base)[1].get("crop", {})
    cropper = FaceCropper(args.detector, margin=crop.get("margin", 0.4), size=crop.get("size", 64),
                          color=crop.get("color", "rgb"))
    run_dir = make_run_dir(args.runs, "transfer", args.name)
    write_json(os.path.join(run_dir, "config.json"), vars(args) | {"base": base})
    head = {k: getattr(args, k) for k in ("pooling", "solver", "copies", "l2") if getattr(args, k) is not None}
    if args.identity_root:
        summary = transfer_benchmark(base, args.identity_root, run_dir, args.targets, args.min_photos, args.epochs,
                                     args.lr, args.unfreeze_top_epochs, args.cache, seed=args.seed,
                                     normalize=not args.no_normalize, cropper=cropper, head=head)
    elif args.positives and args.negatives:
        summary = train_person_classifier(base, args.positives, args.negatives, run_dir, args.unseen, args.epochs,
                                          args.lr, args.unfreeze_top_epochs, args.cache, cropper=cropper,
                                          seed=args.seed, normalize=not args.no_normalize, head=head)
    else:
        log.error("give --positives and --negatives, or --identity-root")
        return 2
    print(json.dumps(summary, indent=1, default=str))
    return 0
