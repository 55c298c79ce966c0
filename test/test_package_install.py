"""The ROS package builds with colcon, without warnings, and installs launch/config/model files and
executables (the model assets once, beside the code that loads them)."""

import os
import re

from test_ros_cli import colcon_install  # noqa: I100 - one colcon build per test session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_colcon_build_installs_share_files_without_warnings():
    build = colcon_install()
    out = build["stdout"] + build["stderr"]
    assert build["returncode"] == 0, out[-6000:]
    # No warning of any kind (SetuptoolsDeprecationWarning for data folders, stderr output...).
    assert "stderr output" not in build["stdout"], out[-6000:]
    assert not re.search(r"warning", out, re.IGNORECASE), out[-6000:]
    # compat/vision_msgs carries COLCON_IGNORE: a robot's real vision_msgs is never shadowed.
    assert "vision_msgs" not in build["stdout"]
    prefix = os.path.join(build["install"], "face_tracker_ros")
    share = os.path.join(prefix, "share", "face_tracker_ros")
    for rel in ("package.xml", "launch/face_tracker.launch.py", "config/face_tracker.yaml",
                "config/video_source.yaml", "config/fastdds_shm.xml", "config/face_tracker.rviz"):
        assert os.path.isfile(os.path.join(share, rel)), rel
    for launch in os.listdir(os.path.join(ROOT, "launch")):
        if launch.endswith(".py"):
            assert os.path.isfile(os.path.join(share, "launch", launch)), launch
    # The 20 MB of model assets install once, in the Python package (face_tracker_core/assets).
    assert not os.path.exists(os.path.join(share, "models")), "second copy of the assets under share/"
    assets = os.path.join(ROOT, "face_tracker_core", "assets")
    for asset in os.listdir(assets):
        if os.path.isfile(os.path.join(assets, asset)) and not asset.endswith(".py"):
            copies = [d for d, _, files in os.walk(prefix) if asset in files]
            assert len(copies) == 1 and copies[0].endswith(os.path.join("face_tracker_core", "assets")), \
                (asset, copies)
    libexec = os.path.join(prefix, "lib", "face_tracker_ros")
    for exe in ("face_tracker_node", "video_source_node", "face_capture_node", "face_reenactment_node",
                "face_tracker_demo", "face-tracker"):
        assert os.path.isfile(os.path.join(libexec, exe)), exe
    assert os.path.isfile(os.path.join(prefix, "share", "ament_index", "resource_index", "packages",
                                       "face_tracker_ros"))
