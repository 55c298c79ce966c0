#!/usr/bin/env python3
"""Live recognition cost: how long a frame waits when tracked faces are identified, with the
embedder inline (in the frame loop) versus in its own process (``recognition.own_process``).

A 30 fps frame loop runs for ``--seconds`` of wall time: every frame is detected by the shipped
detector, then ``--faces`` confirmed tracks are passed to the tracker node's recognition stage
(:func:`~face_tracker_core.pipeline_build.build_pipeline`: a :class:`TrackIdentifier` over a gallery
of one person). Every ``--turnover-s`` seconds all tracks are replaced by new ones (people coming and
going), so new faces keep needing a vector. The tracks all box the synthetic camera's face (this
measures cost, not accuracy; no data set needed). Reported per mode: frame time (detect +
identify) median / p95 / max, frames done out of those due, and the time from a track's birth to
its first name.

    python benchmarks/bench_recognition_live.py [--embedder dlib] [--faces 4] [--seconds 20]

Writes ``runs/bench/recognition_live.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _common import stats_ms, table, write  # noqa: E402
from face_tracker_core.infer import make_detector  # noqa: E402
from face_tracker_core.pipeline_build import build_pipeline  # noqa: E402
from face_tracker_core.pipeline_config import PipelineConfig  # noqa: E402
from face_tracker_core.recognition import make_embedder  # noqa: E402
from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_core.types import BBox, Track  # noqa: E402


def run_mode(mode: str, args, det, cam, reference: np.ndarray, tmp: str) -> dict:
    # the tracker node's recognition stack, built by the same function (tracks are made up here)
    cfg = PipelineConfig.from_config({
        "tracking": {"enabled": False},
        "recognition": {"enabled": True, "embedder": args.embedder, "refresh_s": args.refresh_s,
                        "own_process": mode == "own process",
                        "gallery_path": os.path.join(tmp, f"{mode.replace(' ', '_')}.db")}})
    pipe = build_pipeline(cfg, detector=det)
    try:
        g, ti = pipe.recognition.gallery, pipe.recognition.per_track
        g.add("eileen", reference)
        pipe.recognition.identifier.reload()
        period = 1.0 / args.fps
        frame_ms, born, named = [], {}, {}
        t0 = time.monotonic()
        due = done = 0
        next_t = t0
        while True:
            now = time.monotonic()
            if now - t0 >= args.seconds:
                break
            if now < next_t:
                time.sleep(next_t - now)
                continue
            # Frames that came while the loop was busy are dropped (latest frame only), as in the node.
            missed = int((now - next_t) // period)
            due += 1 + missed
            next_t += (1 + missed) * period
            t = now - t0
            frame = cam.render(t)
            face = BBox(*cam.face_in_frame(t))
            gen = int(t // args.turnover_s)
            tracks = [Track(f"{gen}-{i}", face, 0.9, confirmed=True, hits=5) for i in range(args.faces)]
            for tr in tracks:
                born.setdefault(tr.track_id, now)
            s = time.perf_counter()
            det.detect(frame)
            out = ti.update(frame, tracks, now=t)
            frame_ms.append((time.perf_counter() - s) * 1000.0)
            done += 1
            for tr in out:
                if tr.identity is not None and tr.track_id not in named:
                    named[tr.track_id] = time.monotonic() - born[tr.track_id]
        g.close()
        ms = stats_ms(frame_ms)
        return {"mode": mode, "frame_ms_median": ms["median"], "frame_ms_p95": ms["p95"],
                "frame_ms_max": round(float(np.max(frame_ms)), 1), "frames_done": done, "frames_due": due,
                "tracks": len(born), "tracks_named": len(named),
                "s_to_name_median": round(float(np.median(list(named.values()))), 2) if named else None,
                "faces_embedded": ti.embed_calls}
    finally:
        pipe.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedder", default="dlib")
    ap.add_argument("--faces", type=int, default=4, help="tracked faces per frame")
    ap.add_argument("--seconds", type=float, default=20.0, help="wall time per mode")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--turnover-s", type=float, default=5.0, help="seconds between new sets of tracks")
    ap.add_argument("--refresh-s", type=float, default=2.0, help="TrackIdentifier refresh (node default)")
    args = ap.parse_args()
    det = make_detector("default")
    cam = SyntheticCamera(640, 480, fps=args.fps, num_frames=0)
    ref = make_embedder(args.embedder)
    reference = ref.embed(cam.render(0.0), [BBox(*cam.face_in_frame(0.0))])
    del ref
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_mode(m, args, det, cam, reference, tmp) for m in ("inline", "own process")]
    cols = ["mode", "frame_ms_median", "frame_ms_p95", "frame_ms_max", "frames_done", "frames_due",
            "tracks_named", "tracks", "s_to_name_median", "faces_embedded"]
    md = (f"Live recognition, {args.embedder}, {args.faces} tracked faces, {args.fps:g} fps for {args.seconds:g} s "
          f"per mode, new tracks every {args.turnover_s:g} s, refresh {args.refresh_s:g} s "
          f"(frame = shipped detector + TrackIdentifier.update)\n\n" + table(rows, cols))
    write("recognition_live", {"embedder": args.embedder, "faces": args.faces, "fps": args.fps,
                               "seconds": args.seconds, "turnover_s": args.turnover_s,
                               "refresh_s": args.refresh_s, "rows": rows}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
