"""Launch files, checked without ``launch`` installed, and run for real where launch_ros exists.

Every ``launch/*.launch.py`` declares what it starts in a module-level ``NODES`` tuple of
``(executable, node name, params file in config/, condition argument or None)``; these tests
check each executable is an installed console script, each params file exists, and every key of
the params file is a parameter the node really declares (instantiating the node in rclpy).
"""

import glob
import importlib.metadata
import importlib.util
import os

import pytest
import yaml

from ros_helpers import RosHarness  # noqa: I100 - sets the DDS environment first

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_FILES = sorted(glob.glob(os.path.join(ROOT, "launch", "*.launch.py")))


def _load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path).replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # must not need `launch` at import time
    return mod


def _console_scripts():
    eps = importlib.metadata.entry_points(group="console_scripts")
    def norm(name):
        return name.lower().replace("_", "-").replace(".", "-")

    return {ep.name: ep.value for ep in eps if ep.dist is not None and norm(ep.dist.name) == "face-tracker-ros"}


def _flatten(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        else:
            yield key


def _node_class(module_name):
    from rclpy.node import Node

    mod = importlib.import_module(module_name)
    classes = [c for c in vars(mod).values() if isinstance(c, type) and issubclass(c, Node)
               and c.__module__ == mod.__name__]
    assert len(classes) == 1, f"{module_name}: expected one node class, found {classes}"
    return classes[0]


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=os.path.basename)
def test_launch_file_is_consistent(path):
    mod = _load(path)
    assert hasattr(mod, "generate_launch_description")
    assert mod.NODES, "NODES must list what the launch file starts"
    scripts = _console_scripts()
    source = open(path).read()
    for executable, name, params, _cond in mod.NODES:
        assert executable in scripts, f"{executable} is not a console script of face_tracker_ros"
        assert f'"{executable}"' in source, f"{executable} listed in NODES but not launched"
        params_path = os.path.join(ROOT, "config", params)
        assert os.path.isfile(params_path), params_path
        doc = yaml.safe_load(open(params_path))
        assert list(doc) == ["/**"], f"{params}: parameters must be keyed '/**' so namespaces work"
        keys = set(_flatten(doc["/**"]["ros__parameters"]))
        cls = _node_class(scripts[executable].split(":")[0])
        with RosHarness() as ros:
            overrides = []
            if executable == "video_source_node":
                from rclpy.parameter import Parameter

                overrides = [Parameter("num_frames", value=1)]
            node = ros.add(cls(context=ros.context, parameter_overrides=overrides))
            declared = set(node._parameters) - {"use_sim_time", "start_type_description_service"}
        assert keys <= declared, f"{params}: keys the node does not declare: {sorted(keys - declared)}"
        missing = declared - keys
        assert not missing, f"{params}: declared parameters without a default in the YAML: {sorted(missing)}"


def test_launch_runs_for_real(monkeypatch):
    """face_tracker.launch.py through the real ``launch.LaunchService`` (in this process), with the
    package installed by colcon: the tracker reaches active and publishes detections."""
    from test_ros_cli import colcon_install, ros_env

    env = ros_env()  # skips without the ROS 2 tools; builds the package once per session
    launch_ros = pytest.importorskip("launch_ros", reason="launch_ros not importable: run scripts/setup.sh")
    import launch
    import threading

    from vision_msgs.msg import Detection2DArray

    from ros_helpers import Collector

    assert launch_ros and hasattr(launch, "LaunchService"), launch
    for key in ("AMENT_PREFIX_PATH", "PATH", "PYTHONPATH", "LD_LIBRARY_PATH"):
        monkeypatch.setenv(key, env.get(key, ""))
    share = os.path.join(colcon_install()["install"], "face_tracker_ros", "share", "face_tracker_ros")
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    ls = launch.LaunchService()
    ls.include_launch_description(launch.LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "face_tracker.launch.py")),
        launch_arguments={"namespace": "in_process"}.items())]))
    result = {}

    def probe():  # the launch service must run in the main thread: the probe runs beside it
        try:
            with RosHarness() as ros:
                col = Collector(ros.node("launch_probe"), Detection2DArray, "/in_process/detections")
                result["detections"] = ros.wait_for(lambda: any(m.detections for m in col.snapshot()), 90)
        finally:
            ls.shutdown()

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    rc = ls.run(shutdown_when_idle=False)
    t.join(timeout=30)
    assert result.get("detections"), "no detection from the launched tracker"
    assert rc == 0, rc
