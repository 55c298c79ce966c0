"""The package as a ROS 2 user runs it: colcon build, ``ros2 launch``, ``ros2 lifecycle/topic/param``.

Real tools, real processes: the package is built once per test session with colcon into a temporary
workspace (:func:`colcon_install`), each launch file runs through ``ros2 launch`` (the README's
commands and variants), and the ``ros2`` CLI inspects the running graph. The tools come from a
sourced ROS 2 or from ``.ros_tools/`` (built by ``scripts/setup.sh`` from ``../shared/ros2/src``).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Dict, List, Optional

import pytest

from ros_helpers import RosHarness  # noqa: F401,I100 - sets the DDS environment (domain, localhost) first

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BUILD: Dict[str, object] = {}


def _tracked_files() -> List[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return [f for f in out if f and os.path.isfile(os.path.join(ROOT, f))]


def colcon_install() -> Dict[str, object]:
    """Build this checkout with ``colcon build --packages-select face_tracker_ros`` (the README's
    command) in a temporary workspace, once per process. Returns ``{"ws", "install", "stdout",
    "stderr", "returncode", "env"}``; ``env`` is the environment with ``install/local_setup.bash``
    sourced. Skips when colcon is not installed."""
    if _BUILD:
        return _BUILD
    if shutil.which("colcon") is None:
        pytest.skip("colcon not installed (scripts/setup.sh installs it)")
    ws = tempfile.mkdtemp(prefix="ft_colcon_")
    atexit.register(shutil.rmtree, ws, True)
    src = os.path.join(ws, "src", "face_tracker")
    for f in _tracked_files():
        os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(src, f))
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's shell: setuptools byte-compiles (no warning)
    res = subprocess.run(["colcon", "build", "--packages-select", "face_tracker_ros"], cwd=ws, env=env,
                         capture_output=True, text=True, timeout=600)
    _BUILD.update(ws=ws, install=os.path.join(ws, "install"), stdout=res.stdout, stderr=res.stderr,
                  returncode=res.returncode, env=None)
    if res.returncode == 0:
        dump = subprocess.run(["bash", "-c", ". install/local_setup.bash && env -0"], cwd=ws, env=os.environ,
                              capture_output=True, text=True, check=True).stdout
        _BUILD["env"] = dict(kv.split("=", 1) for kv in dump.split("\0") if "=" in kv)
    return _BUILD


def ros_env() -> Dict[str, str]:
    """Environment with the package installed and the ros2 CLI available (else skip)."""
    if shutil.which("ros2") is None:
        pytest.skip("the ros2 CLI is not available: source a ROS 2 install or run scripts/setup.sh "
                    "(builds it from ../shared/ros2/src into .ros_tools/)")
    build = colcon_install()
    assert build["returncode"] == 0, f"colcon build failed:\n{build['stdout'][-3000:]}\n{build['stderr'][-3000:]}"
    return dict(build["env"])


def ros2(*args: str, timeout: float = 30.0, check: bool = True) -> str:
    """Run ``ros2 <args>`` and return its stdout (with ``check=False``: stdout + stderr, any status).
    Callers pass ``--no-daemon``: no ros2 daemon outlives the test."""
    res = subprocess.run(["ros2", *args], env=ros_env(), capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, f"ros2 {' '.join(args)}: rc {res.returncode}\n{res.stdout}\n{res.stderr}"
        return res.stdout
    return res.stdout + res.stderr


def wait_until(fn, timeout: float, interval: float = 0.5):
    """Call ``fn`` until it returns a truthy value or ``timeout`` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Launch:
    """``ros2 launch face_tracker_ros <file> <args>`` in its own session, output in a file.

    :meth:`stop` does what Ctrl-C in its terminal does: SIGINT to the whole process group (so each
    node gets SIGINT from the terminal and another one from ``ros2 launch``), then waits for every
    process to end; :meth:`problems` lists tracebacks and dead processes.
    """

    def __init__(self, launch_file: str, *args: str, extra: Optional[List[List[str]]] = None) -> None:
        self.env = ros_env()
        self.log = tempfile.NamedTemporaryFile(prefix="ft_launch_", suffix=".log", delete=False)
        self.procs = [subprocess.Popen(["ros2", "launch", "face_tracker_ros", launch_file, *args], env=self.env,
                                       stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)]
        for cmd in extra or []:  # e.g. a camera started on its own (ros2 run ...)
            self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def output(self) -> str:
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def problems(self) -> List[str]:
        out = self.output()
        return [line for line in out.splitlines()
                if re.search(r"Traceback|process has died|InvalidParameterType|context is invalid", line)]

    def stop(self, timeout: float = 40.0) -> List[int]:
        """Ctrl-C to ``ros2 launch``, then to the extra processes; their exit statuses (a process
        still running after ``timeout`` s is killed: -9). The output is kept in ``self.final``."""
        codes = []
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
            try:
                codes.append(p.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                codes.append(p.wait())
        self.final = self.output()
        os.unlink(self.log.name)
        return codes

    def __enter__(self) -> "Launch":
        return self

    def __exit__(self, *exc) -> None:
        if any(p.poll() is None for p in self.procs):
            self.stop()


def ros2_ok(*args: str, timeout: float = 20.0) -> str:
    """``ros2 <args>`` repeated until it succeeds ("Node not found": not discovered yet); its stdout."""
    res = wait_until(lambda: (lambda r: r if r.returncode == 0 else None)(
        subprocess.run(["ros2", *args], env=ros_env(), capture_output=True, text=True, timeout=30)), timeout)
    assert res is not None, f"ros2 {' '.join(args)} kept failing: {ros2(*args, check=False)}"
    return res.stdout


def ros2_until(args: List[str], predicate, timeout: float = 20.0) -> str:
    """``ros2 <args>`` repeated until ``predicate(stdout)`` (graph queries need discovery first)."""
    out = wait_until(lambda: (lambda o: o if predicate(o) else "")(ros2(*args, check=False)), timeout)
    assert out, f"ros2 {' '.join(args)}: condition not met; last output:\n{ros2(*args, check=False)}"
    return out


def lifecycle_state(node: str) -> str:
    res = subprocess.run(["ros2", "lifecycle", "get", "--no-daemon", node], env=ros_env(), capture_output=True,
                         text=True, timeout=30)
    return res.stdout.strip()


def wait_active(node: str, launch: Launch, timeout: float = 90.0) -> None:
    state = wait_until(lambda: "active [3]" in lifecycle_state(node) or launch.problems(), timeout)
    assert state is True, f"{node} not active: {lifecycle_state(node)!r}; problems: {launch.problems()}\n" \
        + launch.output()[-4000:]


DETECTIONS, IMAGE = "vision_msgs/msg/Detection2DArray", "sensor_msgs/msg/Image"


def echo_once(topic: str, msg_type: str, field: Optional[str] = None, timeout: float = 60.0) -> str:
    """``ros2 topic echo --once`` of ``topic`` (one message, or fail after ``timeout`` s). The type is
    given: without a daemon, the CLI has not discovered the publisher when it starts."""
    res = subprocess.run(["ros2", "topic", "echo", "--once", "--no-daemon", *(["--field", field] if field else []),
                          topic, msg_type],
                         env=ros_env(), capture_output=True, text=True, timeout=timeout + 5)
    assert res.returncode == 0 and res.stdout.strip(), f"no message on {topic}: {res.stdout}{res.stderr}"
    return res.stdout


def detections_with_faces(topic: str, tries: int = 10) -> str:
    """First message on ``topic`` that holds a detection (the synthetic camera always shows a face)."""
    out = ""
    for _ in range(tries):
        out = echo_once(topic, DETECTIONS)
        if "bbox" in out:
            return out
    raise AssertionError(f"no detection on {topic} in {tries} messages: {out[-500:]}")


@pytest.fixture(scope="module")
def default_launch():
    """The README's first command: ``ros2 launch face_tracker_ros face_tracker.launch.py``."""
    with Launch("face_tracker.launch.py") as launch:
        wait_active("/face_tracker/face_tracker", launch)
        yield launch
        codes = launch.stop()
        assert codes == [0], codes


def test_launch_reaches_active_and_publishes(default_launch):
    ros2_until(["lifecycle", "get", "--no-daemon", "/face_tracker/face_tracker"], lambda o: "active [3]" in o)
    out = detections_with_faces("/face_tracker/detections")
    assert "frame_id: camera_optical_frame" in out, out
    assert "center" in out and "face" in out
    ros2_until(["node", "list", "--no-daemon", "--spin-time", "2"],
               lambda o: {"/face_tracker/face_tracker", "/video_source"} <= set(o.split()))
    assert not default_launch.problems(), default_launch.problems()


def test_param_describe_get_set(default_launch):
    node = "/face_tracker/face_tracker"
    out = ros2_ok("param", "describe", "--no-daemon", node, "tracking.min_hits")
    assert "detections before a track is reported" in out and "Min value: 1" in out, out
    out = ros2_ok("param", "describe", "--no-daemon", node, "detector.backend")
    assert "Read only: true" not in out and "Description:" in out
    assert "Set parameter successful" in ros2_ok("param", "set", "--no-daemon", node, "tracking.min_hits", "3")
    assert "3" in ros2_ok("param", "get", "--no-daemon", node, "tracking.min_hits")
    ros2_until(["param", "set", "--no-daemon", node, "tracking.reid", "true"],  # refused: read-only
               lambda o: "read-only" in o.lower() or "failed" in o.lower())


def test_readme_variants_own_camera_namespace_params_file(tmp_path):
    """``start_source:=false image:=…`` with a camera started on its own, ``namespace:=``,
    ``params_file:=`` — together, in one launch."""
    params = tmp_path / "tracker.yaml"
    text = open(os.path.join(ROOT, "config", "face_tracker.yaml")).read()
    params.write_text(re.sub(r"min_hits: \d+", "min_hits: 4", text))
    camera = ["ros2", "run", "face_tracker_ros", "video_source_node", "--ros-args",
              "-r", "image:=/front_cam/image_raw", "-p", "width:=320", "-p", "height:=240"]
    with Launch("face_tracker.launch.py", "start_source:=false", "image:=/front_cam/image_raw",
                "namespace:=front", f"params_file:={params}", extra=[camera]) as launch:
        wait_active("/front/face_tracker", launch)
        assert "4" in ros2_ok("param", "get", "--no-daemon", "/front/face_tracker", "tracking.min_hits")
        detections_with_faces("/front/detections")
        ros2_until(["node", "list", "--no-daemon", "--spin-time", "2"],  # the camera: ours (ros2 run)
                   lambda o: {"/front/face_tracker", "/video_source"} <= set(o.split()))
        problems = launch.problems()
        codes = launch.stop()
    assert not problems, problems
    assert codes == [0, 0], f"{codes}\n{launch.final[-4000:]}"
    readme = open(os.path.join(ROOT, "README.md")).read()
    for variant in ("start_source:=false image:=", "namespace:=", "params_file:="):
        assert variant in readme, variant


def test_capture_launch_saves_frames(tmp_path):
    out_dir = tmp_path / "captures"
    with Launch("capture.launch.py", "start_source:=true", f"output_dir:={out_dir}") as launch:
        frames = wait_until(lambda: sorted(out_dir.glob("*.jpg")) if out_dir.is_dir() else [], 90)
        assert frames, launch.output()[-3000:]
        echo_once("/camera/image_raw", IMAGE, field="header.frame_id")
        problems = launch.problems()
        codes = launch.stop()
    assert not problems, problems
    assert codes == [0], codes


def test_capture_launch_source_index_is_a_string(tmp_path):
    """``source:=0`` reaches the node as the string '0' (camera 0), not an INTEGER parameter."""
    with Launch("capture.launch.py", "start_source:=true", "source:=0", f"output_dir:={tmp_path}") as launch:
        # no camera here: the node says it cannot open source '0' and exits 1; with one it publishes
        seen = wait_until(lambda: re.search(r"\[video_source\]: (0: (no such|cannot open)|publishing ')",
                                            launch.output()), 60)
        output = launch.output()
        launch.stop()
    assert seen, output[-3000:]
    assert "InvalidParameterType" not in output and "INTEGER" not in output, output[-3000:]


def test_reenactment_launch_publishes():
    with Launch("reenactment.launch.py") as launch:
        wait_active("/face_reenactment/face_reenactment", launch, timeout=180)
        echo_once("/face_reenactment/image_reenacted", IMAGE, field="header.frame_id", timeout=120)
        problems = launch.problems()
        codes = launch.stop()
    assert not problems, problems
    assert codes == [0], codes


def test_two_robots_are_isolated():
    """Two namespaced trackers with their own cameras on one host: each publishes its own
    detections and subscribes only to its own robot's camera (issue 23 acceptance 3)."""
    with Launch("two_robots.launch.py") as launch:
        for robot in ("robot1", "robot2"):
            wait_active(f"/{robot}/face_tracker/face_tracker", launch)
        for robot, other in (("robot1", "robot2"), ("robot2", "robot1")):
            dets = detections_with_faces(f"/{robot}/face_tracker/detections")
            assert f"frame_id: {robot}/camera_optical_frame" in dets, dets  # its own camera's frames
            info = ros2_until(["node", "info", "--no-daemon", "--spin-time", "2",
                               f"/{robot}/face_tracker/face_tracker"],
                              lambda o: f"/{robot}/camera/image_raw" in o and "detections" in o)
            subs = info.split("Subscribers:")[1].split("Publishers:")[0]
            assert f"/{robot}/camera/image_raw" in subs and f"/{other}/" not in subs, info
            pubs = info.split("Publishers:")[1].split("Service Servers:")[0]
            assert f"/{robot}/face_tracker/detections" in pubs and f"/{other}/" not in pubs, info
            # one camera per robot: the other robot's camera does not publish here
            ros2_until(["topic", "info", "--no-daemon", "--spin-time", "2", f"/{robot}/camera/image_raw"],
                       lambda o: "Publisher count: 1" in o)
        problems = launch.problems()
        codes = launch.stop()
    assert not problems, problems
    assert codes == [0], codes
