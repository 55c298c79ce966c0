"""Benchmark (not a test): N cameras through one multi_camera_node process vs N face_tracker_node processes.

This process plays N cameras (synthetic 640x480 bgr8 frames at ``--fps`` each, stamped at publish
time, best-effort like a camera driver) on ``/camK/image`` and listens to ``/camK/detections``.
The same camera streams are served by

* ``multi``: one ``multi_camera_node`` process (``cameras: [cam0, cam1, ...]``, one shared model);
* ``separate``: one ``face_tracker_node`` process per camera (namespace ``/camK``).

Per camera: frames answered (detections received / frames sent, %) and latency (receive time -
header stamp: same clock) median/p95; per configuration: resident memory (sum of the node
processes' RSS, median over the run) and CPU (processes' user+system time / wall time, % of one core).

    scripts/dev.sh bench bench_multi_camera [--cameras 2] [--fps 30] [--seconds 20] [--detector default]

Writes runs/bench/bench_multi_camera.json and .md. The machine's load average is recorded with
the results: numbers taken while other jobs run are upper bounds of the latency.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import stats_ms, table, write  # noqa: E402

from face_tracker_core.cli.options import add_detector_option  # noqa: E402
from face_tracker_ros.processes import stop_processes  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))


def _proc_stat(pid: int):
    """(RSS MiB, user+system CPU seconds) of a process."""
    with open(f"/proc/{pid}/status") as fh:
        rss = next(int(line.split()[1]) / 1024.0 for line in fh if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _commands(mode: str, cams, backend: str, annotate: bool, workers: int):
    common = ["-p", f"detector.backend:={backend}", "-p", f"publish_annotated:={str(annotate).lower()}",
              "--log-level", "warn"]
    if mode == "multi":
        return [["multi_camera_node", "--ros-args", "-p", f"cameras:=[{', '.join(cams)}]", "-p",
                 f"workers:={workers}"] + common]
    return [["face_tracker_node", "--ros-args", "-r", f"__ns:=/{cam}", "-p", "no_input_warn_s:=60.0"] + common
            for cam in cams]


def run(mode: str, cams, backend: str, fps: float, seconds: float, warmup: float, annotate: bool,
        workers: int = 2):
    """Start the node process(es) for ``mode``, stream every camera, return per-camera and process figures."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from face_tracker_core.sources import SyntheticCamera
    from face_tracker_ros.conversions import bgr_to_image
    from face_tracker_ros.params import image_qos

    procs = [subprocess.Popen(cmd) for cmd in _commands(mode, cams, backend, annotate, workers)]
    rclpy.init()
    node = Node(f"bench_multi_camera_{mode}")
    pubs = {c: node.create_publisher(Image, f"/{c}/image", image_qos(False, 1)) for c in cams}
    lock = threading.Lock()
    lat = {c: [] for c in cams}
    counting = threading.Event()

    def on_dets(cam):
        def cb(msg):
            if not counting.is_set():
                return
            now = node.get_clock().now().nanoseconds * 1e-9
            with lock:
                lat[cam].append((now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)) * 1e3)
        return cb

    for c in cams:
        node.create_subscription(Detection2DArray, f"/{c}/detections", on_dets(c), 50)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(
            p.get_subscription_count() >= 1 and node.count_publishers(f"/{c}/detections") >= 1
            for c, p in pubs.items()):
        time.sleep(0.1)
    # Each camera films the same scene from its own start time; messages built once, stamped at publish.
    msgs = {c: [bgr_to_image(f, Image().header, "bgr8") for f in
                (SyntheticCamera(640, 480, fps).read() for _ in range(int(fps * 2)))] for c in cams}
    for k, c in enumerate(cams):
        for m in msgs[c]:
            m.header.frame_id = f"{c}_optical_frame"
        msgs[c] = msgs[c][k * 7:] + msgs[c][:k * 7]
    sent = {c: 0 for c in cams}
    samples = []
    t0 = time.monotonic()
    cpu0 = None
    i = 0
    period = 1.0 / fps
    while True:
        now = time.monotonic()
        if now - t0 >= warmup + seconds:
            break
        if not counting.is_set() and now - t0 >= warmup:
            counting.set()
            cpu0 = (now, [_proc_stat(p.pid)[1] for p in procs])
        for c in cams:   # the cameras' frames leave together, like free-running drivers started together
            m = msgs[c][i % len(msgs[c])]
            m.header.stamp = node.get_clock().now().to_msg()
            pubs[c].publish(m)
            if counting.is_set():
                sent[c] += 1
        if counting.is_set() and i % int(fps) == 0:
            samples.append(sum(_proc_stat(p.pid)[0] for p in procs))
        i += 1
        time.sleep(max(0.0, t0 + i * period - time.monotonic()))
    time.sleep(1.0)   # answers still in flight
    counting.clear()
    cpu_s = sum(_proc_stat(p.pid)[1] for p in procs) - sum(cpu0[1])
    wall = time.monotonic() - cpu0[0] - 1.0
    stop_processes(procs, signal.SIGTERM)
    ex.shutdown()
    node.destroy_node()
    rclpy.shutdown()
    rows = []
    with lock:
        for c in cams:
            s = stats_ms(lat[c])
            rows.append({"config": mode, "camera": c, "sent": sent[c], "answered": s["n"],
                         "answered_pct": round(100.0 * s["n"] / max(1, sent[c]), 1),
                         "latency_median_ms": s.get("median"), "latency_p95_ms": s.get("p95")})
    proc = {"config": mode, "processes": len(procs), "rss_mib": round(float(np.median(samples)), 1),
            "cpu_pct_of_one_core": round(100.0 * cpu_s / wall, 1)}
    return rows, proc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second per camera")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per configuration")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds streamed before measuring")
    add_detector_option(ap, "detector backend of the node processes")
    ap.add_argument("--workers", type=int, default=2, help="multi_camera_node's workers parameter")
    ap.add_argument("--no-annotate", action="store_true", help="publish_annotated false in both configurations")
    ap.add_argument("--configs", nargs="+", default=["multi", "separate"], choices=["multi", "separate"])
    args = ap.parse_args()
    cams = [f"cam{k}" for k in range(args.cameras)]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows, procs = [], []
    for mode in args.configs:
        r, p = run(mode, cams, args.detector, args.fps, args.seconds, args.warmup, not args.no_annotate,
                   args.workers)
        rows += r
        procs.append(p)
    md = (f"{args.cameras} cameras x {args.fps:g} fps, 640x480 bgr8, detector backend {args.detector}, "
          f"{args.seconds:g} s measured per configuration (load average before: {load_before}, "
          f"after: {[round(x, 2) for x in os.getloadavg()]}, {os.cpu_count()} CPUs)\n\n"
          + table(rows, ["config", "camera", "sent", "answered", "answered_pct", "latency_median_ms",
                         "latency_p95_ms"])
          + "\n\nNode processes (RSS: median over the run, summed over processes)\n\n"
          + table(procs, ["config", "processes", "rss_mib", "cpu_pct_of_one_core"]))
    write("bench_multi_camera", {"args": vars(args), "load_avg_before": load_before, "cameras": rows,
                                 "processes": procs}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
