"""Every node shuts down cleanly under any signal sequence, as real processes.

Sequences: SIGINT; SIGINT twice 5-50 ms apart (``ros2 launch`` without a terminal forwards one on
top of the process group's); SIGINT then SIGTERM; SIGTERM alone. Each node runs as its console
script, busy (images flowing from a video source process, the capture node writing files), and gets
the sequence at a random moment. Required: exit status 0 within 20 s, no traceback or
``KeyboardInterrupt``, no "publisher's context is invalid", the frame worker stopped (its "stopped"
line, no "still busy"), and every capture file complete (images decode, labels parse, no temporary
files).

CI runs each sequence twice per node, once for the reenactment node (its TensorFlow start-up takes
~10 s); ``-m slow`` runs the 20/20 check (``FT_SIGNAL_REPEATS`` overrides both).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import pytest

from ros_helpers import RosHarness  # noqa: F401,I100 - sets the DDS environment (domain, localhost) first

from face_tracker_ros.processes import stop_processes  # noqa: E402

SEQUENCES = {
    "SIGINT": [(signal.SIGINT, 0)],
    "SIGINT+SIGINT": [(signal.SIGINT, 0), (signal.SIGINT, (5, 50))],
    "SIGINT+SIGTERM": [(signal.SIGINT, 0), (signal.SIGTERM, (5, 50))],
    "SIGTERM": [(signal.SIGTERM, 0)],
}
TOPIC = "/signal_test/image"
#: per node: extra parameters, the log line that says it is busy, the worker's name (None: no worker)
NODES: Dict[str, dict] = {
    "video_source_node": {"params": ["width:=320", "height:=240"], "ready": r"publishing '", "worker": None},
    "face_tracker_node": {"params": ["detector.backend:=haar", "no_input_warn_s:=60.0"],
                          "ready": r"processing '", "worker": "face_tracker_worker"},
    "face_capture_node": {"params": ["min_interval_s:=0.0", "write_labels:=true", "detector.backend:=haar"],
                          "ready": r"frames saved this session", "worker": None},
    "face_reenactment_node": {"params": [], "ready": r"rendering '", "worker": "face_reenactment_worker"},
}
BAD = re.compile(r"Traceback|KeyboardInterrupt|context is invalid|RCLError|still busy|never retrieved")


def _exe(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (pip install -e . / scripts/setup.sh)")
    return path


class NodeProcess:
    """One node process with its output in a file."""

    def __init__(self, exe: str, params: List[str], index: int, work: str) -> None:
        self.log_path = os.path.join(work, f"{os.path.basename(exe)}_{index}.log")
        args = [exe, "--ros-args", "-r", f"image:={TOPIC}", "-r", f"__node:={os.path.basename(exe)}_{index}"]
        if os.path.basename(exe) == "video_source_node":
            args = [exe, "--ros-args", "-r", f"image:=/signal_test/own_{index}", "-r", f"__node:=vs_{index}"]
        for p in params:
            args += ["-p", p]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_for(self, pattern: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.output()):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _capture_files_complete(out_dir: str) -> List[str]:
    """Problems with the capture folder: unreadable images, bad labels, leftover temporary files."""
    import cv2

    problems = []
    for root, _dirs, files in os.walk(out_dir):
        for f in files:
            path = os.path.join(root, f)
            if f.endswith((".jpg", ".png")):
                if cv2.imread(path) is None:
                    problems.append(f"unreadable image {f}")
            elif f.endswith(".json"):
                try:
                    json.load(open(path))
                except ValueError as exc:
                    problems.append(f"bad JSON {f}: {exc}")
            else:
                problems.append(f"unexpected file {f} (temporary?)")
    return problems


def run_trial(node: str, sequence: str, index: int, work: str, rng: random.Random) -> Optional[str]:
    """Start ``node``, wait until it is busy, send ``sequence`` at a random moment; ``None`` when the
    shutdown was clean, else what went wrong (with the output's tail)."""
    spec = NODES[node]
    params = list(spec["params"])
    out_dir = None
    if node == "face_capture_node":
        out_dir = os.path.join(work, f"captures_{index}")
        params.append(f"output_dir:={out_dir}")
    p = NodeProcess(_exe(node), params, index, work)
    try:
        if not p.wait_for(spec["ready"], 180):
            return f"not ready: rc {p.proc.poll()}\n{p.output()[-2000:]}"
        time.sleep(rng.uniform(0.1, 0.8))  # somewhere inside a frame, or between two
        for sig, delay in SEQUENCES[sequence]:
            if delay:
                time.sleep(rng.uniform(*delay) / 1000.0)
            p.proc.send_signal(sig)
        try:
            rc = p.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            return f"still running 20 s after {sequence}\n{p.output()[-2000:]}"
        out = p.output()
        problems = [line for line in out.splitlines() if BAD.search(line)]
        if rc != 0:
            problems.insert(0, f"exit status {rc}")
        if spec["worker"] and f"{spec['worker']} stopped" not in out:
            problems.append(f"no '{spec['worker']} stopped' line")
        if out_dir is not None:
            problems += _capture_files_complete(out_dir)
        return None if not problems else "; ".join(problems) + "\n" + out[-2000:]
    finally:
        p.kill()


@pytest.fixture(scope="module")
def camera():
    """A synthetic camera process publishing TOPIC for the nodes under test."""
    work = tempfile.mkdtemp(prefix="ft_signals_cam_")
    log = open(os.path.join(work, "camera.log"), "w")
    proc = subprocess.Popen([_exe("video_source_node"), "--ros-args", "-r", f"image:={TOPIC}",
                             "-r", "__node:=signal_test_camera", "-p", "width:=320", "-p", "height:=240"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield proc
    stop_processes([proc], signal.SIGINT, kill_group=True)
    log.close()
    shutil.rmtree(work, ignore_errors=True)


def _run(node: str, repeats: int, tmp_path) -> Dict[str, List[Optional[str]]]:
    """Every sequence ``repeats`` times for ``node``, two trials at a time."""
    rng = random.Random(hash(node) & 0xFFFF)
    jobs = [(seq, i) for i in range(repeats) for seq in SEQUENCES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {(seq, i): pool.submit(run_trial, node, seq, k, str(tmp_path), random.Random(rng.random()))
                   for k, (seq, i) in enumerate(jobs)}
    out: Dict[str, List[Optional[str]]] = {seq: [] for seq in SEQUENCES}
    for (seq, _i), fut in futures.items():
        out[seq].append(fut.result())
    return out


def _report(node: str, results: Dict[str, List[Optional[str]]]) -> str:
    return ", ".join(f"{seq} {sum(r is None for r in rs)}/{len(rs)}" for seq, rs in results.items()) + f" ({node})"


@pytest.mark.parametrize("node", list(NODES))
def test_clean_shutdown_under_signals(node, camera, tmp_path):
    repeats = int(os.environ.get("FT_SIGNAL_REPEATS", "1" if node == "face_reenactment_node" else "2"))
    results = _run(node, repeats, tmp_path)
    failures = [f"{seq}: {r}" for seq, rs in results.items() for r in rs if r is not None]
    assert not failures, _report(node, results) + "\n" + "\n\n".join(failures[:3])


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("node", list(NODES))
def test_clean_shutdown_under_signals_20_of_20(node, camera, tmp_path):
    results = _run(node, int(os.environ.get("FT_SIGNAL_REPEATS", "20")), tmp_path)
    print(_report(node, results))
    failures = [f"{seq}: {r}" for seq, rs in results.items() for r in rs if r is not None]
    assert not failures, _report(node, results) + "\n" + "\n\n".join(failures[:3])
