"""``face-tracker reenact prepare``: (sketch, frame) training pairs from a video of one person."""

from __future__ import annotations

import argparse
import json
import os

COMMAND = ("reenact", "prepare")
HELP = "turn a talking-face video into landmark-sketch/frame pairs for reenactment training"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--video", required=True, help="video of the target person")
    p.add_argument("--out", default=None, help="output folder (default runs/reenact/data/<video>_<resolution>)")
    p.add_argument("--num", type=int, default=None, help="read at most this many frames from the start")
    p.add_argument("--resolution", type=int, default=256, choices=(64, 128, 256, 512), help="crop side, pixels")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of frames at the end kept for evaluation")
    p.add_argument("--crop-scale", type=float, default=2.0, help="crop side / median landmark box side")
    p.add_argument("--detector", default="default", help="face detector backend")
    p.add_argument("--jpeg-quality", type=int, default=95, help="quality of the stored crops")


def run(args: argparse.Namespace) -> int:
    from ..reenact.prepare import prepare_dataset

    out = args.out or os.path.join("runs", "reenact", "data",
                                   f"{os.path.splitext(os.path.basename(args.video))[0]}_{args.resolution}")
    meta = prepare_dataset(args.video, out, resolution=args.resolution, num=args.num, holdout=args.holdout,
                           crop_scale=args.crop_scale, detector=args.detector, jpeg_quality=args.jpeg_quality)
    summary = {k: meta[k] for k in ("resolution", "crop", "frames_read", "pairs_train", "pairs_test")}
    summary.update(out=out, skipped=len(meta["skipped_frames"]))
    print(json.dumps(summary))
    return 0
