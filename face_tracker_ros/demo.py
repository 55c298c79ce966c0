"""The main job on the embedded default: a real rclpy graph in one process.

``video_source`` (embedded synthetic camera by default) -> ``face_tracker`` -> a summary node that
prints, every second, the frames and faces received and the latency, and writes the annotated
stream to ``runs/demo/annotated.mp4`` plus a PNG snapshot. Bounded in time by default; ``--live``
runs until Ctrl-C; ``--source /dev/video0`` or ``--source clip.mp4`` uses a real camera or file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import cv2  # noqa: E402
import rclpy  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.cli.options import add_detector_option  # noqa: E402

from .conversions import image_to_bgr  # noqa: E402
from .face_tracker_node import FaceTrackerNode  # noqa: E402
from .params import image_qos  # noqa: E402
from .video_source_node import VideoSourceNode  # noqa: E402

log = logging.getLogger("face_tracker_demo")


class Summary(Node):
    """Subscribes to ``detections`` and ``image_annotated``; counts, measures latency, records video."""

    def __init__(self, out_dir: str, fps: float, **kwargs) -> None:
        super().__init__("demo_summary", **kwargs)
        self.lock = threading.Lock()
        self.frames = self.with_face = self.faces = 0
        self.window = []  # (latency_ms, n_faces) of the current second
        self.ids = set()
        self.out_dir = out_dir
        self.fps = fps
        self.writer = None
        self.snapshot_written = False
        self.last_frame = None
        self.create_subscription(Detection2DArray, "detections", self._on_dets, 10)
        self.create_subscription(Image, "image_annotated", self._on_image, image_qos(False, 5))

    def _on_dets(self, msg: Detection2DArray) -> None:
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        latency = (self.get_clock().now().nanoseconds * 1e-9 - stamp) * 1e3
        with self.lock:
            self.frames += 1
            self.faces += len(msg.detections)
            self.with_face += bool(msg.detections)
            self.ids.update(d.id for d in msg.detections if d.id)
            self.window.append((latency, len(msg.detections)))

    def _on_image(self, msg: Image) -> None:
        bgr = image_to_bgr(msg)
        if self.writer is None:
            path = os.path.join(self.out_dir, "annotated.mp4")
            self.writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                          (bgr.shape[1], bgr.shape[0]))
        self.writer.write(bgr)
        self.last_frame = bgr
        # The snapshot waits until faces have been reported for a few frames: the first frames come
        # before a track is confirmed (tracking.min_hits) and would show no box.
        if not self.snapshot_written and self.with_face >= 3:
            self._snapshot(bgr)

    def _snapshot(self, bgr) -> None:
        cv2.imwrite(os.path.join(self.out_dir, "annotated.png"), bgr)
        self.snapshot_written = True

    def tick(self) -> str:
        with self.lock:
            win, self.window = self.window, []
        if not win:
            return "0 frames/s"
        lat = sorted(w[0] for w in win)
        faces = sum(w[1] for w in win)
        return (f"{len(win):3d} frames/s, {faces:3d} faces/s, {sum(1 for w in win if w[1]):3d} frames with a face,"
                f" latency p50 {lat[len(lat) // 2]:6.1f} ms")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if not self.snapshot_written and self.last_frame is not None:
            self._snapshot(self.last_frame)   # no face reported: the last frame, to show why


def _parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="synthetic", help="synthetic | /dev/videoN | N | video file")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to run (ignored with --live)")
    ap.add_argument("--live", action="store_true", help="run until Ctrl-C")
    ap.add_argument("--frames", type=int, default=0,
                    help="stop as soon as this many frames were processed (--duration stays the limit)")
    ap.add_argument("--fps", type=float, default=30.0, help="source rate, Hz")
    add_detector_option(ap, "detector backend (default: the shipped model)")
    ap.add_argument("--model", default="", help="model file for the keras backend")
    ap.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder")
    ap.add_argument("--min-face-ratio", type=float, default=0.0,
                    help="exit 1 if fewer processed frames than this had a face (for CI checks)")
    return ap.parse_args(argv)


class _Graph:
    """The demo's three nodes on one executor, spun by a thread in a loop that can stop between
    callbacks (the tracker processes frames in its own worker thread), so no callback is in flight
    when the executor shuts down."""

    def __init__(self, args) -> None:
        self.executor = SingleThreadedExecutor()
        self.spinning = threading.Event()
        self.spinning.set()
        self.source = VideoSourceNode(parameter_overrides=[
            Parameter("source", value=args.source), Parameter("fps", value=float(args.fps)),
            Parameter("loop", value=True)])
        params = [Parameter("detector.backend", value=args.detector)]
        if args.model:
            params.append(Parameter("detector.model_path", value=args.model))
        self.tracker = FaceTrackerNode(parameter_overrides=params)
        self.summary = Summary(args.out, args.fps)
        for n in (self.source, self.tracker, self.summary):
            self.executor.add_node(n)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.spinning.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> dict:
        """Stop and destroy everything; returns the tracker's last diagnostics key/values."""
        # Order matters: stop producing (timer, worker), then stop the executor, and only then
        # destroy the nodes, so no callback is left running on a handle being destroyed.
        self.source.timer.cancel()
        self.tracker._stop_worker()
        self.spinning.clear()
        self.thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=5.0)
        self.summary.close()
        diag = {kv.key: kv.value for kv in self.tracker.diagnostics().status[0].values}
        for n in (self.source, self.tracker, self.summary):
            n.destroy_node()
        return diag


def _run(args, graph: _Graph, stop: threading.Event) -> None:
    """Wait (bounded) for the tracker to be active, then log a summary line every second until
    ``--duration``, ``--frames`` or a signal."""
    t_ready = time.monotonic() + 120.0
    while not graph.tracker._active and time.monotonic() < t_ready and not stop.is_set():
        stop.wait(0.1)
    if not graph.tracker._active:
        log.error("the tracker did not become active: %s", graph.tracker._model_error or "timeout")
    t_end = None if args.live else time.monotonic() + args.duration
    while not stop.is_set() and (t_end is None or time.monotonic() < t_end):
        stop.wait(1.0)
        log.info(graph.summary.tick())
        if args.frames and graph.summary.frames >= args.frames:
            break


def _report(args, summary: Summary, published: int, diag: dict) -> float:
    """Write ``summary.json`` and log the totals; returns the fraction of processed frames with a face."""
    ratio = summary.with_face / summary.frames if summary.frames else 0.0
    report = {"source": args.source, "backend": args.detector, "frames_processed": summary.frames,
              "frames_with_face": summary.with_face, "face_ratio": round(ratio, 4), "faces": summary.faces,
              "track_ids": sorted(summary.ids), "frames_published": published,
              "frames_dropped": int(diag.get("dropped", 0)), "latency_p50_ms": float(diag["latency_p50_ms"]),
              "latency_p95_ms": float(diag["latency_p95_ms"]), "detector": diag["detector"]}
    with open(os.path.join(args.out, "summary.json"), "w") as fh:
        json.dump(report, fh, indent=2)
    log.info("face found in %d of %d processed frames (%.1f %%); %d published, %d dropped as stale; "
             "processing latency p50 %.1f ms, p95 %.1f ms",
             summary.with_face, summary.frames, 100 * ratio, published, report["frames_dropped"],
             report["latency_p50_ms"], report["latency_p95_ms"])
    log.info("wrote %s", ", ".join(os.path.join(args.out, f) for f in ("annotated.mp4", "annotated.png", "summary.json")))
    return ratio


def main(argv=None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.makedirs(args.out, exist_ok=True)
    rclpy.init()
    graph = _Graph(args)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    log.info("demo: %s -> face_tracker (%s) -> summary; writing %s/", args.source, args.detector, args.out)
    try:
        _run(args, graph, stop)
    finally:
        diag = graph.close()
        rclpy.try_shutdown()
    ratio = _report(args, graph.summary, graph.source.count, diag)
    return 1 if ratio < args.min_face_ratio else 0


if __name__ == "__main__":
    raise SystemExit(main())
