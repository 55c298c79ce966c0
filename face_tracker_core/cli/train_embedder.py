"""``face-tracker train embedder``: train ``facenet`` (triplet loss, online semi-hard mining) or
``siamese`` (pair loss) on faces detected and aligned from a folder-per-person photo tree.

Only the ``train`` people of the deterministic identity split (see
:mod:`face_tracker_core.recognition.dataset`) are trained on; ``val`` people are watched after
every epoch; ``verify``/``identify`` people are never touched. Writes ``runs/embedder/<name>/``
(see :mod:`face_tracker_core.recognition.embed_trainer`).

Also runnable without the rest of the CLI (e.g. on a GPU machine that only has Keras + JAX):
``python -m face_tracker_core.cli.train_embedder --crops faces.npz ...``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

COMMAND = ("train", "embedder")
HELP = "train the facenet (triplet) or siamese embedder on aligned faces of a folder-per-person tree"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .options import add_config_arguments

    add_config_arguments(p, "EmbedderTrainConfig", "dim=64 flip=false")
    p.add_argument("--model", choices=("facenet", "siamese"), default=None, help="default facenet")
    p.add_argument("--data", default=os.path.join("..", "shared", "data", "identity", "celeba"),
                   help="folder with one sub-folder of photos per person")
    p.add_argument("--crops", default=None,
                   help="aligned-crops .npz (built from --data when missing; default runs/cache/recognition/crops.npz)")
    p.add_argument("--build-crops-only", action="store_true", help="only detect/align/store the crops")
    p.add_argument("--detector", default="default", help="detector backend used to find the faces")
    p.add_argument("--name", default=None, help="run name (default: the model name)")
    p.add_argument("--runs", default=None, help="runs root folder [runs]")
    p.add_argument("--time-budget", type=float, default=None, help="training wall time, seconds")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--p", type=int, default=None, help="people per batch")
    p.add_argument("--k", type=int, default=None, help="photos per person in a batch")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--width", type=float, default=None, help="facenet channel multiplier")
    p.add_argument("--margin", type=float, default=None, help="triplet margin (squared distance)")
    p.add_argument("--dropout", type=float, default=None, help="dropout before the embedding projection")
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW decoupled weight decay")
    p.add_argument("--erase", type=float, default=None, help="random-erasing probability per training view")
    p.add_argument("--filters", default=None, help="siamese tower channels per block, e.g. 16,32,64,128")
    p.add_argument("--init", default=None, metavar="PATH",
                   help="start from these weights (an embedder .keras, e.g. the shipped one, or a .weights.h5)")
    p.add_argument("--schedule", choices=("cosine", "constant"), default=None,
                   help="learning rate over the time budget (default cosine; constant for fine-tuning / --swa-start)")
    p.add_argument("--warmup", type=float, default=None, metavar="FRACTION",
                   help="linear warm-up, as a fraction of --time-budget (default 0.05)")
    p.add_argument("--swa-start", type=int, default=None, metavar="EPOCH",
                   help="average the weights of every epoch end from this epoch (0-based) on (SWA); "
                        "the average competes with the single epochs on validation")
    p.add_argument("--fold-val", action="store_true",
                   help="train on the validation people too (a fixed recipe's final run: nothing is "
                        "watched, the last weights are kept; verification/identification people stay out)")
    p.add_argument("--train-splits", default=None, metavar="SPLITS",
                   help="comma-separated people splits to train on (default: train; 'train,identify' adds the "
                        "40 open-set test people, whose identification results are then no longer held out)")
    p.add_argument("--crop-splits", default="train,val", metavar="SPLITS",
                   help="people splits stored when building crops (e.g. train,val,identify; never verify)")
    p.add_argument("--input-size", type=int, default=112)
    p.add_argument("--padding", type=float, default=0.2, help="alignment padding of the network crop")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--finalize", metavar="RUN_DIR", default=None,
                   help="only write model.keras + card of a stopped run from its best.weights.h5")
    p.add_argument("--ship", action="store_true",
                   help="copy the result to face_tracker_core/assets/embedder_<model>.keras (+ .json)")
    from ..engine.distributed import add_cli_arguments

    add_cli_arguments(p)


#: CLI option -> config key, for the options that are training settings (None: keep the config's).
_OPTIONS = {"model": "model", "time_budget": "time_budget_s", "max_epochs": "max_epochs",
            "steps_per_epoch": "steps_per_epoch", "p": "p", "k": "k", "lr": "lr", "width": "width",
            "margin": "margin", "seed": "seed", "dropout": "dropout", "weight_decay": "weight_decay",
            "erase": "erase", "init": "init", "schedule": "schedule", "warmup": "warmup",
            "swa_start": "swa_start"}


def training_config(args: argparse.Namespace, crops: str):
    """The :class:`~face_tracker_core.recognition.embed_trainer.EmbedderTrainConfig` of the options:
    ``--config`` file, then the options given, then ``--set`` overrides."""
    from ..recognition.embed_trainer import EmbedderTrainConfig
    from .options import config_from_args

    derived = {"crops": crops, "runs_root": args.runs,
               "name": args.name or None,  # else the config's, or the model's name
               "fold_val": True if args.fold_val else None,
               "train_splits": args.train_splits.split(",") if args.train_splits else None,
               "filters": [int(f) for f in args.filters.split(",")] if args.filters else None}
    return config_from_args(EmbedderTrainConfig, args, _OPTIONS, derived)


def run(args: argparse.Namespace) -> int:
    from ..engine import distributed

    dist = distributed.from_args(args)
    distributed.prepare_process(dist)  # the backend is chosen before anything imports Keras
    from ..recognition.dataset import default_cache_dir
    from ..recognition.embed_data import CROP_SPLITS, build_crops

    if args.finalize:
        from ..recognition.embed_model import finalize_run

        res = finalize_run(args.finalize)
        print(f"{args.finalize}: {res}")
        return _ship(args, res)
    crops = args.crops or os.path.join(default_cache_dir(), f"crops_{args.input_size}_{args.padding:g}.npz")
    if not os.path.isfile(crops) or args.build_crops_only:
        from ..recognition.faces import FaceFinder

        splits = tuple(filter(None, args.crop_splits.split(",")))
        if not splits or set(splits) - set(CROP_SPLITS):  # before the detector loads
            raise SystemExit(f"--crop-splits: choose from {', '.join(CROP_SPLITS)} (got {args.crop_splits!r})")
        build_crops(args.data, crops, FaceFinder(args.detector), splits=splits, input_size=args.input_size,
                    padding=args.padding, store_size=args.input_size + 2 * (args.input_size // 14))
        if args.build_crops_only:
            return 0
    from ..recognition.embed_trainer import train_embedder

    cfg = training_config(args, crops)
    res = train_embedder(cfg, dist)
    print(f"{cfg.model}: {res}")
    return _ship(args, res) if isinstance(res, dict) else 0  # other hosts than 0 get the run folder


def _ship(args: argparse.Namespace, res: dict) -> int:
    if args.ship:
        import json

        from ..recognition.keras_embedder import DEFAULT_MODELS, card_path

        with open(card_path(res["model_path"])) as f:
            name = json.load(f)["name"]
        dst = DEFAULT_MODELS[name]
        shutil.copyfile(res["model_path"], dst)
        shutil.copyfile(card_path(res["model_path"]), card_path(dst))
        log.info("shipped %s", dst)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point (no discovery of the other subcommands)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="train_embedder", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
