"""Start-up benchmark (not a test): how soon a started tracker answers and detects, from process start.

Each run measures, from the moment the process is started (``Popen``):

1. ``face_tracker_node`` alone (``autostart``: it configures, i.e. loads the model, by itself), a
   synthetic camera already publishing: first answer of the lifecycle ``get_state`` service and of
   the parameter service ``get_parameters`` (DDS discovery included) and the state the node reported
   then (``configuring`` = answered while the model loads), and the first ``detections`` message
   holding a face.
2. ``ros2 launch face_tracker_ros face_tracker.launch.py`` (camera, lifecycle configure + activate
   by the launch file) -> first ``detections`` message holding a face. Needs the ``ros2`` CLI
   (a sourced ROS 2 or ``.ros_tools/``); the package is built with colcon into a temporary workspace.

    scripts/dev.sh bench bench_startup [--runs 5] [--backend default]

Writes runs/bench/bench_startup.json and .md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import ROOT, stats_ms, table, write  # noqa: E402

from face_tracker_ros.processes import stop_processes  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))


class Probe:
    """An rclpy node in this process: service clients and a detections subscription."""

    def __init__(self, ns: str) -> None:
        import rclpy
        from lifecycle_msgs.srv import GetState
        from rcl_interfaces.srv import GetParameters
        from rclpy.executors import SingleThreadedExecutor
        from vision_msgs.msg import Detection2DArray

        self.rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"startup_probe_{os.getpid()}", context=self.context)
        self.get_state = self.node.create_client(GetState, f"{ns}/get_state")
        self.get_params = self.node.create_client(GetParameters, f"{ns}/get_parameters")
        self.GetState, self.GetParameters = GetState, GetParameters
        self.first_face: Optional[float] = None
        self.node.create_subscription(Detection2DArray, ns.rsplit("/", 1)[0] + "/detections", self._on_det, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = False
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def _on_det(self, msg) -> None:
        if msg.detections and self.first_face is None:
            self.first_face = time.monotonic()

    def first_answer(self, client, request, deadline: float):
        """(monotonic time of the first response, response) or (None, None)."""
        while time.monotonic() < deadline:
            if not client.service_is_ready():
                time.sleep(0.005)
                continue
            fut = client.call_async(request)
            t_end = min(deadline, time.monotonic() + 0.5)
            while not fut.done() and time.monotonic() < t_end:
                time.sleep(0.002)
            if fut.done() and fut.result() is not None:
                return time.monotonic(), fut.result()
        return None, None

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.node.destroy_node()
        self.rclpy.shutdown(context=self.context)


def node_run(backend: str, timeout: float) -> Dict[str, object]:
    """One cold start of face_tracker_node (camera already running)."""
    ns = f"/startup_{os.getpid()}_{int(time.time() * 1000) % 100000}"
    cam = subprocess.Popen(["video_source_node", "--ros-args", "-r", f"image:={ns}/image", "-r",
                            f"__node:=cam_{ns.split('_')[-1]}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    probe = Probe(f"{ns}/face_tracker")
    time.sleep(1.0)  # the camera is up before the tracker starts
    t0 = time.monotonic()
    proc = subprocess.Popen(["face_tracker_node", "--ros-args", "-r", f"__ns:={ns}", "-p",
                             f"detector.backend:={backend}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = t0 + timeout
        t_state, state = probe.first_answer(probe.get_state, probe.GetState.Request(), deadline)
        t_params, _ = probe.first_answer(probe.get_params, probe.GetParameters.Request(names=["autostart"]),
                                         deadline)
        while probe.first_face is None and time.monotonic() < deadline:
            time.sleep(0.01)
        ms = (lambda t: round((t - t0) * 1e3, 1) if t is not None else None)
        return {"get_state_ms": ms(t_state), "get_parameters_ms": ms(t_params),
                "state_at_first_answer": state.current_state.label if state else None,
                "first_detection_ms": ms(probe.first_face)}
    finally:
        stop_processes([proc, cam], kill_group=True)
        probe.close()


def colcon_install() -> Optional[str]:
    """This checkout built with colcon into a temporary workspace; its install/ folder."""
    if shutil.which("colcon") is None:
        return None
    ws = tempfile.mkdtemp(prefix="ft_bench_ws_")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for f in files:
        if os.path.isfile(os.path.join(ROOT, f)):
            os.makedirs(os.path.dirname(os.path.join(ws, "src", "ft", f)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(ws, "src", "ft", f))
    subprocess.run(["colcon", "build", "--packages-select", "face_tracker_ros"], cwd=ws, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return os.path.join(ws, "install")


def launch_run(install: str, timeout: float) -> Dict[str, object]:
    """One ``ros2 launch face_tracker_ros face_tracker.launch.py`` -> first detection with a face."""
    ns = f"ft{os.getpid()}_{int(time.time() * 1000) % 100000}"
    probe = Probe(f"/{ns}/face_tracker")
    cmd = f". {install}/local_setup.bash && exec ros2 launch face_tracker_ros face_tracker.launch.py namespace:={ns}"
    t0 = time.monotonic()
    proc = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while probe.first_face is None and time.monotonic() < t0 + timeout:
            time.sleep(0.01)
        return {"launch_first_detection_ms": round((probe.first_face - t0) * 1e3, 1) if probe.first_face else None}
    finally:
        stop_processes([proc], kill_group=True)
        probe.close()


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="cold starts of each kind")
    ap.add_argument("--backend", default="default", help="tracker detector.backend")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a run counts as failed")
    args = ap.parse_args(argv)
    node_runs = [node_run(args.backend, args.timeout) for _ in range(args.runs)]
    install = colcon_install() if shutil.which("ros2") else None
    launch_runs = [launch_run(install, args.timeout) for _ in range(args.runs)] if install else []
    rows, summary = [], {}
    for key, runs in (("get_state_ms", node_runs), ("get_parameters_ms", node_runs),
                      ("first_detection_ms", node_runs), ("launch_first_detection_ms", launch_runs)):
        vals = [r[key] for r in runs if r.get(key) is not None]
        summary[key] = dict(stats_ms(vals), max=max(vals) if vals else None, failed=len(runs) - len(vals))
        rows.append({"from process start to": key.replace("_ms", "").replace("_", " "), **summary[key]})
    states = [r["state_at_first_answer"] for r in node_runs]
    md = ("Start-up, milliseconds from process start (`face_tracker_node`: camera already publishing; "
          f"`ros2 launch`: camera and tracker started by the launch file); backend `{args.backend}`, "
          f"{args.runs} cold starts each. State at the first get_state answer: {states}.\n\n"
          + table(rows, ["from process start to", "n", "median", "p95", "max", "failed"]))
    write("bench_startup", {"backend": args.backend, "runs": args.runs, "summary": summary,
                            "node_runs": node_runs, "launch_runs": launch_runs}, md)


if __name__ == "__main__":
    main()
