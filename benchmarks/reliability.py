"""Reliability figures of the face tracker node (not a test): load, faults, fuzzing.

Runs ``face_tracker_node`` as a separate process and drives it from this one:

* load: synthetic 640x480 camera at 30, 60 and 120 fps; end-to-end latency (receive - stamp)
  p95 vs the single-frame processing time measured at 2 fps; RSS growth of the node process;
* faults: model file corrupted (reload refused), model file removed (reload refused) and put
  back (reload accepted), publisher destroyed and re-created, a burst of malformed frames;
* fuzzing: random ``sensor_msgs/Image`` messages (hypothesis: encodings, sizes, steps, data);
* crashes: the node process must still be alive and processing good frames after each phase.

    scripts/dev.sh bench reliability [--seconds 60] [--detector default]

Writes runs/bench/reliability.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import stats_ms, table, write  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))

import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rcl_interfaces.msg import Parameter as ParamMsg, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from face_tracker_core.cli.options import add_detector_option  # noqa: E402
from face_tracker_core.sources import SyntheticCamera  # noqa: E402
from face_tracker_ros.conversions import bgr_to_image  # noqa: E402
from face_tracker_ros.params import image_qos  # noqa: E402
from face_tracker_ros.processes import stop_processes  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


class Driver(Node):
    def __init__(self):
        super().__init__("reliability_driver")
        self.lock = threading.Lock()
        self.latencies, self.received = [], 0
        self.pub = self.create_publisher(Image, "image", image_qos(False, 1))
        self.create_subscription(Detection2DArray, "detections", self._on_dets, 50)
        self.diag = {}
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10)
        self.set_cli = self.create_client(SetParameters, "/face_tracker/set_parameters")
        self.reload_cli = self.create_client(Trigger, "/face_tracker/reload_model")
        cam = SyntheticCamera(640, 480, 30.0)
        self.frames = [cam.read() for _ in range(60)]

    def _on_dets(self, msg):
        now = self.get_clock().now().nanoseconds * 1e-9
        with self.lock:
            self.received += 1
            self.latencies.append((now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)) * 1e3)

    def _on_diag(self, msg):
        for st in msg.status:
            if "face tracking" in st.name:
                self.diag = {kv.key: kv.value for kv in st.values}

    def reset(self):
        with self.lock:
            self.latencies, self.received = [], 0

    def stream(self, fps: float, seconds: float):
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            msg = bgr_to_image(self.frames[sent % len(self.frames)], Image().header, "bgr8")
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = "camera_optical_frame"
            self.pub.publish(msg)
            sent += 1
            time.sleep(max(0.0, t0 + sent / fps - time.monotonic()))
        return sent

    def call(self, client, request, timeout=30.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(client.srv_name)
        fut = client.call_async(request)
        t0 = time.monotonic()
        while not fut.done() and time.monotonic() - t0 < timeout:
            time.sleep(0.01)
        return fut.result()

    def set_model(self, path: str):
        p = ParamMsg(name="detector.model_path",
                     value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=path))
        return self.call(self.set_cli, SetParameters.Request(parameters=[p])).results[0]

    def alive_and_processing(self, proc, timeout: float = 20.0) -> bool:
        """The node process is up and answers good frames (within ``timeout`` seconds)."""
        self.reset()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout and proc.poll() is None:
            self.stream(10, 1.0)
            if self.received > 0:
                return True
        return proc.poll() is None and self.received > 0


def malformed(rng: np.random.Generator) -> Image:
    m = Image()
    m.height, m.width = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    m.encoding = str(rng.choice(["bgr8", "rgb8", "mono8", "yuv422", "32FC1", "nonsense", "", "rgba8"]))
    m.step = int(rng.integers(0, 256))
    m.data = rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
    return m


def fuzz_messages(n: int):
    """Random Image messages drawn with hypothesis (shrinking is irrelevant here: we only draw)."""
    from hypothesis import strategies as st

    strat = st.builds(
        lambda h, w, enc, step, size, big: (h, w, enc, step, size, big),
        st.integers(0, 2000), st.integers(0, 2000),
        st.one_of(st.sampled_from(["bgr8", "rgb8", "mono8", "mono16", "yuv422", "yuv422_yuy2", "bgra8",
                                   "32FC1", "16UC1"]), st.text(max_size=10)),
        st.integers(0, 10000), st.integers(0, 20000), st.booleans())
    out = []
    for _ in range(n):
        h, w, enc, step, size, big = strat.example()
        m = Image()
        m.height, m.width, m.encoding, m.step, m.is_bigendian = h, w, enc, step, int(big)
        m.data = bytes(size)
        out.append(m)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the 120 fps phase")
    ap.add_argument("--short", type=float, default=15.0, help="duration of the 30 and 60 fps phases")
    add_detector_option(ap, "detector backend of the node under test")
    ap.add_argument("--fuzz", type=int, default=300)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="ft_reliability_")
    cascade = os.path.join(tmp, "model.xml")
    shutil.copy(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"), cascade)
    cmd = ["face_tracker_node", "--ros-args", "-p", f"detector.backend:={args.detector}", "--log-level", "error"]
    proc = subprocess.Popen(cmd)
    rclpy.init()
    drv = Driver()
    # One callback thread: a thread pool here only adds GIL contention with the publishing loop.
    ex = SingleThreadedExecutor()
    ex.add_node(drv)
    threading.Thread(target=ex.spin, daemon=True).start()
    t0 = time.monotonic()
    while drv.pub.get_subscription_count() < 1 and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    time.sleep(2.0)
    crashes = 0

    # single-frame processing time: 2 fps, nothing queued
    drv.reset()
    drv.stream(2.0, 10.0)
    time.sleep(1.0)
    single = stats_ms(drv.latencies)["median"]
    load_rows = []
    for fps, secs in ((30.0, args.short), (60.0, args.short), (120.0, args.seconds)):
        drv.stream(fps, 3.0)  # warm-up at this rate
        drv.reset()
        rss0 = rss_mb(proc.pid)
        sent = drv.stream(fps, secs)
        time.sleep(1.0)
        rss1 = rss_mb(proc.pid)
        s = stats_ms(drv.latencies)
        held = s.get("p95", 1e9) < 3 * single
        crashes += proc.poll() is not None
        load_rows.append({"fps_in": fps, "seconds": secs, "sent": sent, "processed": s["n"],
                          "latency_p50_ms": s.get("median"), "latency_p95_ms": s.get("p95"),
                          "single_frame_ms": single, "p95_below_3x_single": held,
                          "rss_start_mb": round(rss0, 1), "rss_end_mb": round(rss1, 1),
                          "rss_growth_pct": round(100 * (rss1 - rss0) / rss0, 2),
                          "dropped_total": drv.diag.get("dropped", "?")})

    faults = []

    def fault(name, ok):
        faults.append({"fault": name, "survived": bool(ok) and proc.poll() is None})

    r = drv.set_model(cascade)
    fault("load a new model file (accepted)", r.successful and drv.alive_and_processing(proc))
    with open(cascade, "r+b") as fh:
        fh.truncate(200)
    r = drv.set_model(cascade + ".missing")
    fault("set a missing model file (refused, old kept)", (not r.successful) and drv.alive_and_processing(proc))
    res = drv.call(drv.reload_cli, Trigger.Request())
    fault("reload a corrupted model file (refused, old kept)",
          (not res.success) and drv.alive_and_processing(proc))
    os.remove(cascade)
    res = drv.call(drv.reload_cli, Trigger.Request())
    fault("reload a removed model file (refused, old kept)", (not res.success) and drv.alive_and_processing(proc))
    shutil.copy(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"), cascade)
    res = drv.call(drv.reload_cli, Trigger.Request())
    fault("model file restored and reloaded (accepted)", res.success and drv.alive_and_processing(proc))
    drv.destroy_publisher(drv.pub)
    time.sleep(2.0)
    drv.pub = drv.create_publisher(Image, "image", image_qos(False, 1))
    t1 = time.monotonic()
    while drv.pub.get_subscription_count() < 1 and time.monotonic() - t1 < 30:
        time.sleep(0.05)
    fault("publisher destroyed and re-created", drv.alive_and_processing(proc))
    rng = np.random.default_rng(0)
    for _ in range(500):
        drv.pub.publish(malformed(rng))
    fault("burst of 500 malformed frames", drv.alive_and_processing(proc))
    fuzz = fuzz_messages(args.fuzz)
    for m in fuzz:
        drv.pub.publish(m)
        time.sleep(0.002)
    fuzz_ok = drv.alive_and_processing(proc)
    crashes += proc.poll() is not None
    diag = dict(drv.diag)

    stop_processes([proc], signal.SIGTERM)
    ex.shutdown()
    drv.destroy_node()
    rclpy.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    summary = {"backend": args.detector, "load_held": all(r["p95_below_3x_single"] for r in load_rows),
               "max_rss_growth_pct": max(r["rss_growth_pct"] for r in load_rows),
               "faults_survived": f"{sum(f['survived'] for f in faults)}/{len(faults)}",
               "bad_inputs_tried": 500 + len(fuzz), "fuzz_survived": fuzz_ok, "crashes": crashes,
               "node_bad_frames_counted": diag.get("bad_frames"), "node_errors": diag.get("errors")}
    md = ("Load\n\n" + table(load_rows, list(load_rows[0])) + "\n\nFaults\n\n" + table(faults, ["fault", "survived"])
          + "\n\nSummary\n\n" + table([summary], list(summary)))
    write("reliability", {"summary": summary, "load": load_rows, "faults": faults}, md)
    return 0 if crashes == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
