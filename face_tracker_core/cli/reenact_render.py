"""``face-tracker reenact render``: drive the target face with another video (no ROS needed)."""

from __future__ import annotations

import argparse
import json
import logging
import time

COMMAND = ("reenact", "render")
HELP = "render the target person driven by the face in a video (side-by-side video, grid PNG, JSON stats)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..reenact.renderer import NORMALISE_MODES

    p.add_argument("--video", required=True, help="driving video (any person)")
    p.add_argument("--model", default=None, help="generator .keras/.tflite (default: shipped)")
    p.add_argument("--normalise", default="relative", choices=NORMALISE_MODES,
                   help="how the driver's landmarks are placed on the target")
    p.add_argument("--detector", default="default", help="face detector backend")
    p.add_argument("--out", default=None, help="write camera | sketch | output side by side to this video (.mp4/.avi)")
    p.add_argument("--grid", default=None, help="write a PNG of --grid-rows evenly spaced side-by-side rows")
    p.add_argument("--grid-rows", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=None)


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from ..reenact.evaluate import landmark_error
    from ..reenact.prepare import open_video
    from ..reenact.renderer import DEFAULT_MODEL, Reenactor, side_by_side

    rea = Reenactor(args.model or DEFAULT_MODEL, detector=args.detector, normalise=args.normalise)
    cap = open_video(args.video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer, rows, outputs, placed = None, [], [], []
    n = faces = 0
    t0 = time.perf_counter()
    try:
        while args.max_frames is None or n < args.max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            res = rea.process(frame)
            if res is None:
                continue
            faces += 1
            sbs = side_by_side(frame, res.sketch, res.output)
            rows.append(sbs)
            outputs.append(res.output)
            placed.append(res.placed)
            if args.out:
                if writer is None:
                    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if args.out.endswith(".mp4") else "MJPG"))
                    writer = cv2.VideoWriter(args.out, fourcc, fps, (sbs.shape[1], sbs.shape[0]))
                writer.write(sbs)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    elapsed = time.perf_counter() - t0
    stats = {"video": args.video, "normalise": args.normalise, "frames": n, "faces": faces,
             "fps": round(n / elapsed, 2) if elapsed > 0 else None}
    if outputs:
        pick = np.linspace(0, len(outputs) - 1, min(len(outputs), 20)).round().astype(int)
        stats.update(landmark_error(np.stack([outputs[i] for i in pick]), np.stack([placed[i] for i in pick]),
                                    rea.detector, rea.landmarks))
    if args.grid and rows:
        pick = np.linspace(0, len(rows) - 1, min(len(rows), args.grid_rows)).round().astype(int)
        cv2.imwrite(args.grid, np.vstack([rows[i] for i in pick]))
    print(json.dumps(stats))
    return 0 if faces else 1
