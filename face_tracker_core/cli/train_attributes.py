"""``face-tracker train attributes``: CelebA 40-attribute model (crop cache, run folder, baseline table)."""

from __future__ import annotations

import argparse
import json
import logging
import os

COMMAND = ("train", "attributes")
HELP = ("train the CelebA face-attribute model (writes runs/attributes/NAME/: config, weights, metrics.csv, "
        "plots, TensorBoard, per-attribute table vs the majority baseline)")
log = logging.getLogger(__name__)


def _arch(value: str) -> str:
    """``--arch`` value; the former name ``seed`` still selects ``small_cnn`` (with a warning)."""
    if value == "seed":
        log.warning("--arch seed is deprecated: it is now called small_cnn")
        return "small_cnn"
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = os.path.join("..", "shared", "data", "attributes", "celeba")
    p.add_argument("--attr-file", default=os.path.join(d, "list_attr_celeba.txt"),
                   help="list_attr_celeba.txt (official format: count, names, rows of -1/1) or its CSV variant")
    p.add_argument("--images", default=os.path.join(d, "images"), help="folder of the photos named in --attr-file")
    p.add_argument("--bbox-file", default=None, help="list_bbox_celeba.txt: crop these boxes instead of detecting")
    p.add_argument("--partition-file", default=None,
                   help="list_eval_partition.txt: use CelebA's official split instead of the hash split")
    p.add_argument("--name", default="celeba", help="run name (output folder runs/attributes/NAME)")
    p.add_argument("--runs", default="runs", help="root of the run folders")
    p.add_argument("--cache", default=os.path.join("runs", "cache", "attributes"),
                   help="where face crops are cached (built once, reused by later runs)")
    p.add_argument("--arch", default="resnet", type=_arch, choices=("resnet", "small_cnn"),
                   help="conv base: small ResNet (default) or a plain Conv/ReLU/MaxPool stack (small_cnn)")
    p.add_argument("--size", type=int, default=64, help="crop side in pixels")
    p.add_argument("--margin", type=float, default=0.4, help="crop margin, fraction of the face box per side")
    p.add_argument("--color", default="rgb", choices=("rgb", "gray"))
    p.add_argument("--detector", default="default", help="detector backend used to find the face to crop")
    p.add_argument("--fallback", default="dlib_hog", choices=("dlib_hog", "none"),
                   help="second detector for photos where the first finds no face")
    p.add_argument("--test-frac", type=float, default=0.2, help="hash split: fraction of photos held out for test")
    p.add_argument("--val-frac", type=float, default=0.15, help="hash split: fraction for validation")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--head-epochs", type=int, default=8,
                   help="with --pretrain-identity: epochs training only the head before fine-tuning all")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--balanced-bce", action="store_true",
                   help="class-balanced BCE (rare attributes weigh as much as common ones)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrain-identity", default=None, metavar="DIR",
                   help="first pre-train the conv base to tell apart the people of DIR (one sub-folder per person; "
                        "e.g. ../shared/data/identity/celeba), holding out --pretrain-holdout of them")
    p.add_argument("--pretrain-holdout", type=float, default=0.35,
                   help="fraction of people never shown to pre-training (kept for the transfer task)")
    p.add_argument("--pretrain-teacher", default=None, choices=("dlib",),
                   help="pre-train by distilling this face embedding (dlib: offline, face_recognition_models) on the "
                        "photos of --pretrain-identity instead of classifying its people")
    p.add_argument("--pretrain-epochs", type=int, default=40)
    p.add_argument("--pretrain-lr", type=float, default=2e-3, help="initial learning rate of the pre-training")
    p.add_argument("--pretrain-embed-weight", type=float, default=1.0,
                   help="distillation: weight of the 128 embedding dimensions in the MSE (landmarks: 1)")
    p.add_argument("--pretrain-extra-detector", action="append", default=[], metavar="DETECTOR",
                   help="distillation: also train on crops of the same photos from this detector (repeatable; "
                        "e.g. 'default', the shipped detector, whose boxes differ from the Haar cascade's)")
    p.add_argument("--init-base", default=None, metavar="KERAS",
                   help="start from this conv base (a run's pretrain/conv_base.keras or an attribute model) "
                        "instead of pre-training again; with --pretrain-teacher, distillation continues from it")
    p.add_argument("--hidden", type=int, default=256, help="units of the head's hidden layer (0: linear head)")
    p.add_argument("--max-photos", type=int, default=None, help="use only the first N photos (smoke tests)")


def run(args: argparse.Namespace) -> int:
    from ..attributes.training import AttributeTrainConfig, train_attributes

    cfg = AttributeTrainConfig(
        attr_file=args.attr_file, images_dir=args.images, name=args.name, bbox_file=args.bbox_file,
        partition_file=args.partition_file, runs_root=args.runs, cache_root=args.cache, arch=args.arch,
        size=args.size, margin=args.margin, color=args.color, detector=args.detector, fallback=args.fallback,
        test_frac=args.test_frac, val_frac=args.val_frac, batch_size=args.batch_size, epochs=args.epochs,
        head_epochs=args.head_epochs, lr=args.lr, finetune_lr=args.finetune_lr, balanced_bce=args.balanced_bce,
        seed=args.seed, pretrain_identity=args.pretrain_identity, pretrain_teacher=args.pretrain_teacher,
        pretrain_holdout=args.pretrain_holdout,
        pretrain_epochs=args.pretrain_epochs, pretrain_lr=args.pretrain_lr,
        pretrain_embed_weight=args.pretrain_embed_weight, pretrain_extra_detectors=list(args.pretrain_extra_detector),
        max_photos=args.max_photos,
        init_base=args.init_base, hidden=args.hidden)
    summary = train_attributes(cfg)
    print(json.dumps(summary, indent=1, default=str))
    return 0
