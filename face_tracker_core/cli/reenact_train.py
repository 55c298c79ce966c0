"""``face-tracker reenact train``: train (or resume) the reenactment pix2pix on prepared pairs."""

from __future__ import annotations

import argparse

COMMAND = ("reenact", "train")
HELP = "train the landmark-sketch -> face pix2pix (resumes runs/reenact/<name> when it has a checkpoint)"

#: option -> (config key, type, help); None defaults, so a --config file's value stays unless given.
_OPTIONS = {
    "--name": ("name", str, "run name: runs/reenact/<name>"),
    "--runs": ("runs_root", str, "runs root"),
    "--epochs": ("epochs", int, "train up to this epoch (resumed ones count)"),
    "--max-minutes": ("max_minutes", float, "stop and checkpoint after this long"),
    "--batch-size": ("batch_size", int, "pairs per step"),
    "--base-filters": ("base_filters", int, "generator width (paper: 64)"),
    "--max-filters": ("max_filters", int, "generator channel cap (paper: 512)"),
    "--d-base-filters": ("d_base_filters", int, "discriminator width"),
    "--l1-weight": ("l1_weight", float, "lambda of the L1 term"),
    "--lr": ("learning_rate", float, "Adam learning rate"),
    "--ckpt-every": ("ckpt_every", int, "checkpoint every N epochs"),
    "--eval-every": ("eval_every", int, "held-out SSIM every N epochs"),
    "--limit": ("limit", int, "use only the first N training pairs"),
    "--seed": ("seed", int, "initialisation and shuffling seed"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..reenact.training import Pix2PixTrainConfig

    d = Pix2PixTrainConfig().get_config()
    p.add_argument("--data", required=True, help="folder from 'face-tracker reenact prepare'")
    from .options import add_config_arguments

    add_config_arguments(p, "Pix2PixTrainConfig", "dropout=0.3")
    for flag, (key, typ, text) in _OPTIONS.items():
        p.add_argument(flag, type=typ, default=None, dest=key, help=f"{text} (default: {d[key]})")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run has a checkpoint")


def run(args: argparse.Namespace) -> int:
    from ..reenact.training import Pix2PixTrainConfig, Pix2PixTrainer

    from .options import config_from_args

    cfg = config_from_args(Pix2PixTrainConfig, args, {key: key for key, _, _ in _OPTIONS.values()})
    print(Pix2PixTrainer(cfg, args.data, resume=not args.no_resume).train())
    return 0
