#!/usr/bin/env python3
"""Reenactment speed on this CPU: the generator alone (each format) and the whole per-frame pipeline.

* generator: batch-1 latency of the shipped ``.keras`` (TensorFlow graph function) and of TFLite
  exports (float32, float16 weights, dynamic-range int8), at the trained resolution;
* pipeline: ``Reenactor.process`` on frames of ``talking_face_2.mp4`` (a different speaker than
  the target), split into detection, landmarks + sketch, and generator.

Writes ``runs/bench/reenact.json`` (+ ``.md``) and prints a markdown table.

    python benchmarks/bench_reenact.py [--model face_tracker_core/assets/reenact_generator.keras]
        [--repeats 30] [--frames 40] [--no-tflite] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import ROOT, stats_ms, table, write  # noqa: E402
from face_tracker_core.reenact.renderer import DEFAULT_MODEL, Generator, Reenactor  # noqa: E402


def _time(fn, repeats: int, warmup: int = 3):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(repeats):
        s = time.perf_counter()
        fn()
        t.append(1000.0 * (time.perf_counter() - s))
    return stats_ms(t)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL, help="generator .keras with its .json sidecar")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--frames", type=int, default=40, help="video frames for the pipeline timing")
    ap.add_argument("--video", default=os.path.join(os.path.dirname(ROOT), "shared", "data", "video",
                                                    "talking_face_2.mp4"))
    ap.add_argument("--no-tflite", action="store_true", help="skip the TFLite conversions")
    ap.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    args = ap.parse_args(argv)

    gen = Generator(args.model)
    r = gen.resolution
    rng = np.random.default_rng(0)
    sketch = (rng.random((1, r, r, 3)) * 255).astype(np.uint8)
    rows = []
    size_mb = os.path.getsize(args.model) / 1e6
    s = _time(lambda: gen.predict(sketch), args.repeats)
    rows.append({"what": "generator .keras (tf.function)", "res": r, "MB": round(size_mb, 1), **s,
                 "fps": round(1000 / s["median"], 1)})
    if not args.no_tflite:
        from face_tracker_core.reenact.export import copy_sidecar, export_generator

        with tempfile.TemporaryDirectory() as tmp:
            for q in ("none", "float16", "dynamic"):
                path = export_generator(args.model, tmp, name=f"gen_{q}", formats=("tflite",), quantize=q)["tflite"]
                copy_sidecar(args.model, path)
                lite = Generator(path, num_threads=args.threads)
                s = _time(lambda: lite.predict(sketch), args.repeats)
                err = float(np.abs(lite.predict(sketch).astype(int) - gen.predict(sketch)).mean())
                rows.append({"what": f"generator TFLite {q}", "res": r, "MB": round(os.path.getsize(path) / 1e6, 1),
                             **s, "fps": round(1000 / s["median"], 1), "mean_abs_diff_vs_keras": round(err, 2)})

    pipeline = {}
    if os.path.isfile(args.video):
        import cv2

        rea = Reenactor(generator=gen)
        cap = cv2.VideoCapture(args.video)
        frames = []
        while len(frames) < args.frames:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
        det_ms, lm_ms, gen_ms, tot_ms, faces = [], [], [], [], 0
        rea.process(frames[0])  # warm-up
        from face_tracker_core.reenact.prepare import pick_face

        for f in frames:
            t0 = time.perf_counter()
            box = pick_face(rea.detector.detect(f), None)
            t1 = time.perf_counter()
            if box is None:
                continue
            faces += 1
            sk = rea.sketch_for(rea.landmarks.predict(f, box))
            t2 = time.perf_counter()
            gen.predict(sk)
            t3 = time.perf_counter()
            det_ms.append(1000 * (t1 - t0))
            lm_ms.append(1000 * (t2 - t1))
            gen_ms.append(1000 * (t3 - t2))
            tot_ms.append(1000 * (t3 - t0))
        h, w = frames[0].shape[:2]
        pipeline = {"video": os.path.basename(args.video), "frame": f"{w}x{h}", "frames": len(frames),
                    "faces": faces, "detector": rea.detector.describe(), "detect_ms": stats_ms(det_ms),
                    "landmarks_sketch_ms": stats_ms(lm_ms), "generator_ms": stats_ms(gen_ms),
                    "total_ms": stats_ms(tot_ms)}
        if tot_ms:
            rows.append({"what": f"pipeline {w}x{h} frame -> output (detect {pipeline['detect_ms']['median']} + "
                                 f"landmarks {pipeline['landmarks_sketch_ms']['median']} + generator "
                                 f"{pipeline['generator_ms']['median']} ms)", "res": r, **pipeline["total_ms"],
                         "fps": round(1000 / pipeline["total_ms"]["median"], 1)})
    md = table(rows, ["what", "res", "MB", "median", "p95", "fps", "mean_abs_diff_vs_keras"])
    write("reenact", {"model": os.path.relpath(args.model, ROOT), "rows": rows, "pipeline": pipeline}, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
