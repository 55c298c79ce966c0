#!/usr/bin/env bash
# Regenerate requirements/lock.txt from the current .venv (after changing requirements/*.txt).
# The ROS wheels also register their Python packages under the bare ROS name (e.g. `rclpy`
# beside `ros-rclpy`); only the `ros-*` names exist on PyPI, so the bare duplicates are dropped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. .venv/bin/activate
python -m pip freeze --exclude-editable | python -c '
import re, sys
lines = [l.strip() for l in sys.stdin if l.strip() and not l.startswith("-e ")]
norm = lambda l: re.split("[=<>@ ]", l)[0].lower().replace("_", "-")
names = {norm(l) for l in lines}
keep = [l for l in lines if norm(l).startswith("ros-") or "ros-" + norm(l) not in names]
keep = [l for l in keep if norm(l) != "face-tracker-ros"]
print("# Exact versions CI tests (Python 3.11, no system ROS). Regenerate: scripts/lock.sh")
print("\n".join(keep))
' > requirements/lock.txt
echo "requirements/lock.txt: $(grep -vc '^#' requirements/lock.txt) packages"
