"""The ROS package builds with colcon and installs launch/config/model files and executables."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return [f for f in out if os.path.isfile(os.path.join(ROOT, f))]


@pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon not installed")
def test_colcon_build_installs_share_files(tmp_path):
    src = tmp_path / "src" / "face_tracker"
    for f in _tracked_files():
        dst = src / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), dst)
    res = subprocess.run(["colcon", "--log-base", str(tmp_path / "log"), "build", "--build-base",
                          str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
                          "--base-paths", str(tmp_path / "src"), "--event-handlers", "console_direct-"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # compat/vision_msgs carries COLCON_IGNORE: a robot's real vision_msgs is never shadowed.
    assert "vision_msgs" not in res.stdout
    share = tmp_path / "install" / "face_tracker_ros" / "share" / "face_tracker_ros"
    for rel in ("package.xml", "launch/face_tracker.launch.py", "config/face_tracker.yaml",
                "config/video_source.yaml", "config/fastdds_shm.xml", "config/face_tracker.rviz"):
        assert (share / rel).is_file(), rel
    for launch in os.listdir(os.path.join(ROOT, "launch")):
        assert (share / "launch" / launch).is_file(), launch
    assets = os.path.join(ROOT, "face_tracker_core", "assets")
    for asset in (os.listdir(assets) if os.path.isdir(assets) else []):
        if os.path.isfile(os.path.join(assets, asset)):
            assert (share / "models" / asset).is_file(), asset
    libexec = tmp_path / "install" / "face_tracker_ros" / "lib" / "face_tracker_ros"
    for exe in ("face_tracker_node", "video_source_node", "face_tracker_demo", "face-tracker"):
        assert (libexec / exe).is_file(), exe
    assert (tmp_path / "install" / "face_tracker_ros" / "share" / "ament_index" / "resource_index" /
            "packages" / "face_tracker_ros").is_file()
