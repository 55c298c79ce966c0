"""The core is framework-free: every module imports with rclpy made unimportable."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "rclpy" or name.startswith("rclpy.") or name.split(".")[0] in ("rclpy", "launch", "launch_ros"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import face_tracker_core
failed = []
for m in pkgutil.walk_packages(face_tracker_core.__path__, "face_tracker_core."):
    try:
        importlib.import_module(m.name)
    except ImportError as exc:
        if "blocked" in str(exc):
            failed.append(f"{m.name}: {exc}")
assert "rclpy" not in sys.modules
print("\n".join(failed) or "OK")
sys.exit(1 if failed else 0)
"""


def test_core_imports_without_rclpy():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith("OK")
