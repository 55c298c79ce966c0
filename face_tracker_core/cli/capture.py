"""``face-tracker capture``: save frames from a camera, a video file or the synthetic camera."""

from __future__ import annotations

import argparse
import logging
import time

from ..data.capture import CaptureError, CaptureWriter, IntervalGate
from ..errors import FaceTrackerError
from ..infer import available_backends, make_detector
from .options import add_detector_option
from ..sources import SyntheticCamera, open_source

COMMAND = ("capture",)
HELP = "save frames for a training set from a camera (/dev/video0 or 0), a video file or 'synthetic'"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="0", help="camera index/device, video file, or 'synthetic' (default 0)")
    p.add_argument("--out", required=True, help="output folder (created; an existing one is resumed)")
    p.add_argument("--count", type=int, default=30, help="frames to save (0: until the stream ends or Ctrl-C)")
    p.add_argument("--interval", type=float, default=0.5,
                   help="minimum seconds between saved frames (camera clock; video time for files)")
    p.add_argument("--prefix", default="face", help="file name prefix (no '_')")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--width", type=int, default=640, help="requested camera width")
    p.add_argument("--height", type=int, default=480, help="requested camera height")
    p.add_argument("--only-with-faces", action="store_true", help="save only frames where the detector finds a face")
    p.add_argument("--write-labels", action="store_true",
                   help="write LabelMe JSON with the detector's boxes beside each frame (flagged needs_review)")
    add_detector_option(p, f"detector backend ({', '.join(available_backends())})")
    p.add_argument("--threshold", type=float, default=None, help="detector score threshold")
    p.add_argument("--max-read", type=int, default=0,
                   help="stop after reading this many frames (0: no limit; for files/synthetic)")
    p.add_argument("--preview", action="store_true", help="show a window (needs a GUI build of OpenCV)")


def run(args: argparse.Namespace) -> int:
    det = None
    if args.only_with_faces or args.write_labels:
        det = make_detector(args.detector, **({"score_threshold": args.threshold} if args.threshold is not None else {}))
    writer = CaptureWriter(args.out, prefix=args.prefix, jpeg_quality=args.jpeg_quality,
                           max_frames=args.count, write_labels=args.write_labels)
    src = open_source(args.source, args.width, args.height, num_frames=args.max_read)
    # Files and the synthetic camera run faster than real time: their own clock spaces the frames.
    media_clock = isinstance(src, SyntheticCamera) or getattr(src, "is_file", False)
    gate = IntervalGate(args.interval)
    win = None
    if args.preview:
        import cv2

        try:
            cv2.namedWindow("face-tracker capture")
            win = "face-tracker capture"
        except cv2.error as exc:
            raise FaceTrackerError("--preview needs OpenCV with GUI support (opencv-python, not -headless)") from exc
    log.info("capture: %s -> %s (every %.2f s, %s frames)", args.source, writer.out_dir, args.interval,
             args.count or "unlimited")
    read = 0
    try:
        with src:
            for frame in src:
                read += 1
                now = (read - 1) / (src.fps or 30.0) if media_clock else time.monotonic()
                if not gate.ready(now):
                    continue
                dets = det.detect(frame) if det is not None else []
                if args.only_with_faces and not dets:
                    continue
                gate.mark(now)
                try:
                    writer.save(frame, dets, stamp=time.time(), detector=det.describe() if det else "")
                except CaptureError as exc:
                    log.error("%s", exc)
                    return 2
                if win:
                    import cv2

                    from ..draw import draw

                    cv2.imshow(win, draw(frame, dets))
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
                if writer.full:
                    break
    except KeyboardInterrupt:
        log.info("capture: interrupted")
    print(f"{writer.saved} frames saved to {writer.out_dir} ({writer.labels_written} label files), "
          f"{read} frames read")
    return 0
