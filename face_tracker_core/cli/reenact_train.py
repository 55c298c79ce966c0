"""``face-tracker reenact train``: train (or resume) the reenactment pix2pix on prepared pairs."""

from __future__ import annotations

import argparse

COMMAND = ("reenact", "train")
HELP = "train the landmark-sketch -> face pix2pix (resumes runs/reenact/<name> when it has a checkpoint)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..reenact.training import Pix2PixTrainConfig

    d = Pix2PixTrainConfig()
    p.add_argument("--data", required=True, help="folder from 'face-tracker reenact prepare'")
    p.add_argument("--name", default=d.name, help="run name: runs/reenact/<name>")
    p.add_argument("--runs", default=d.runs_root, help="runs root")
    p.add_argument("--epochs", type=int, default=d.epochs, help="train up to this epoch (resumed ones count)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop and checkpoint after this long")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--base-filters", type=int, default=d.base_filters, help="generator width (paper: 64)")
    p.add_argument("--max-filters", type=int, default=d.max_filters, help="generator channel cap (paper: 512)")
    p.add_argument("--d-base-filters", type=int, default=d.d_base_filters, help="discriminator width")
    p.add_argument("--l1-weight", type=float, default=d.l1_weight, help="lambda of the L1 term")
    p.add_argument("--lr", type=float, default=d.learning_rate, help="Adam learning rate")
    p.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training pairs")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-resume", action="store_true", help="start over even if the run has a checkpoint")


def run(args: argparse.Namespace) -> int:
    from ..reenact.training import Pix2PixTrainConfig, Pix2PixTrainer

    cfg = Pix2PixTrainConfig(name=args.name, runs_root=args.runs, base_filters=args.base_filters,
                             max_filters=args.max_filters, d_base_filters=args.d_base_filters,
                             l1_weight=args.l1_weight, learning_rate=args.lr, batch_size=args.batch_size,
                             epochs=args.epochs, max_minutes=args.max_minutes, ckpt_every=args.ckpt_every,
                             eval_every=args.eval_every, limit=args.limit, seed=args.seed)
    print(Pix2PixTrainer(cfg, args.data, resume=not args.no_resume).train())
    return 0
