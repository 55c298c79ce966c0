"""Benchmark of the main job (not a test): per-frame detector cost and end-to-end node latency.

1. Per-frame milliseconds of each detector backend on 640x480 frames (embedded synthetic camera
   and, when ../shared/data is present, real photos letterboxed to 640x480).
2. End-to-end latency over 2 processes at 30 fps: this process publishes frames (stamped at
   publish time) and receives ``detections``; a separate ``face_tracker_node`` process detects.
   Latency = receive time - header stamp (same machine clock).

    scripts/dev.sh bench bench_node [--backends haar default] [--seconds 20] [--fps 30]

Writes runs/bench/bench_node.json and .md.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, stats_ms, table, write  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))


def frames_640x480(n_real: int = 20):
    from face_tracker_core.imaging import letterbox, read_image
    from face_tracker_core.sources import SyntheticCamera

    cam = SyntheticCamera(640, 480, 30.0)
    frames = [cam.read() for _ in range(20)]
    data = os.path.join(os.path.dirname(ROOT), "shared", "data", "detection")
    for path in sorted(glob.glob(os.path.join(data, "facemask", "*.jpg")))[:n_real]:
        frames.append(letterbox(read_image(path), (640, 480))[0])
    return frames


def bench_backends(backends, repeats: int = 3):
    from face_tracker_core.infer import make_detector

    frames = frames_640x480()
    rows = []
    for name in backends:
        try:
            det = make_detector(name)
        except Exception as exc:  # noqa: BLE001 - report and continue
            rows.append({"backend": name, "error": str(exc)})
            continue
        det.detect(frames[0])  # warm-up (graph tracing, caches)
        times = []
        for _ in range(repeats):
            for f in frames:
                t = time.perf_counter()
                det.detect(f)
                times.append((time.perf_counter() - t) * 1e3)
        s = stats_ms(times)
        rows.append({"backend": name, "detector": det.describe(), "median_ms": s["median"], "p95_ms": s["p95"],
                     "frames": s["n"]})
    return rows


def bench_latency(backend: str, fps: float, seconds: float):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from face_tracker_core.sources import SyntheticCamera
    from face_tracker_ros.conversions import bgr_to_image
    from face_tracker_ros.params import image_qos

    proc = subprocess.Popen(["face_tracker_node", "--ros-args", "-p", f"detector.backend:={backend}",
                             "-p", "tracking.enabled:=true", "--log-level", "warn"])
    rclpy.init()
    node = Node("bench_latency")
    pub = node.create_publisher(Image, "image", image_qos(False, 1))
    lat, lock = [], threading.Lock()

    def on_dets(msg):
        now = node.get_clock().now().nanoseconds * 1e-9
        with lock:
            lat.append((now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)) * 1e3)

    node.create_subscription(Detection2DArray, "detections", on_dets, 10)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    deadline = time.monotonic() + 60
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    cam = SyntheticCamera(640, 480, fps)
    frames = [cam.read() for _ in range(int(fps * 4))]
    time.sleep(2.0)  # let the node finish configuring (model load) before timing
    sent, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        msg = bgr_to_image(frames[sent % len(frames)], Image().header, "bgr8")
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = "camera_optical_frame"
        pub.publish(msg)
        sent += 1
        time.sleep(max(0.0, t0 + sent / fps - time.monotonic()))
    time.sleep(1.0)
    proc.terminate()
    proc.wait(timeout=20)
    ex.shutdown()
    node.destroy_node()
    rclpy.shutdown()
    with lock:
        s = stats_ms(lat)
    return {"backend": backend, "fps_in": fps, "sent": sent, "received": s["n"],
            "received_hz": round(s["n"] / seconds, 1), "latency_median_ms": s.get("median"),
            "latency_p95_ms": s.get("p95")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backends", nargs="+", default=["default", "haar", "dlib_hog"])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    rows = bench_backends(args.backends)
    md = "Per-frame detector cost at 640x480\n\n" + table(rows, ["backend", "detector", "median_ms", "p95_ms",
                                                                 "frames", "error"])
    lat_rows = []
    if not args.skip_latency:
        for b in args.backends[:2]:
            lat_rows.append(bench_latency(b, args.fps, args.seconds))
        md += "\n\nEnd-to-end latency, 2 processes (publish -> detections received)\n\n" + table(
            lat_rows, ["backend", "fps_in", "sent", "received", "received_hz", "latency_median_ms",
                       "latency_p95_ms"])
    write("bench_node", {"per_frame": rows, "latency": lat_rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
