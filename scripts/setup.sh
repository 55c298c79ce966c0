#!/usr/bin/env bash
# Set up everything face_tracker needs, idempotently (a re-run with nothing changed takes seconds).
#
#  * With a ROS 2 install sourced (ROS_DISTRO set: Humble, Jazzy, Kilted), that ROS is used: a
#    .venv with --system-site-packages gets only the Python dependencies.
#  * Without ROS 2 (a desk machine, CI), a .venv gets pinned dependencies from PyPI, including
#    the ROS 2 kilted wheels, and the interface packages no registry has (vision_msgs, tf2_msgs) are built
#    from compat/ into .ros_compat/ — unless a real vision_msgs is importable, which always wins.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[setup] %s\n' "$*" >&2; }
PY="${PYTHON:-python3}"

stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

if [ ! -x .venv/bin/python ]; then
  if [ -n "${ROS_DISTRO:-}" ]; then
    log "using the sourced ROS 2 $ROS_DISTRO (venv with system site packages)"
    "$PY" -m venv --system-site-packages .venv
  else
    log "creating .venv"
    "$PY" -m venv .venv
  fi
fi
# shellcheck disable=SC1091
. .venv/bin/activate

if [ -n "${ROS_DISTRO:-}" ]; then
  reqs=(requirements/python.txt requirements/dev.txt)
  pip_args=(-r requirements/python.txt -r requirements/dev.txt)
else
  reqs=(requirements/lock.txt)
  pip_args=(-r requirements/lock.txt)
fi
want="$(stamp_of "${reqs[@]}" setup.py)"
if [ "$(cat .venv/.ft_deps 2>/dev/null)" != "$want" ]; then
  log "installing Python dependencies (${reqs[*]}); the first time takes a few minutes"
  # (this machine's pip config names local mirrors that may be absent: drop those warnings)
  quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
  quiet python -m pip install -q --disable-pip-version-check --upgrade pip
  quiet python -m pip install -q --disable-pip-version-check "${pip_args[@]}"
  quiet python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >/dev/null
  echo "$want" > .venv/.ft_deps
fi

# shellcheck disable=SC1091
. scripts/env.sh

if python -c "import vision_msgs.msg" 2>/dev/null && [ ! -d .ros_compat/install ]; then
  log "vision_msgs found: $(python -c 'import vision_msgs, os; print(os.path.dirname(vision_msgs.__file__))')"
else
  want="$(stamp_of compat/vision_msgs/CMakeLists.txt compat/vision_msgs/package.xml compat/vision_msgs/msg/*.msg \
    compat/tf2_msgs/CMakeLists.txt compat/tf2_msgs/package.xml compat/tf2_msgs/msg/*.msg)-$(python -c 'import sys; print(sys.version_info[:2])')"
  if [ "$(cat .ros_compat/.stamp 2>/dev/null)" != "$want" ]; then
    log "building the vision_msgs and tf2_msgs interfaces into .ros_compat/ (about 60 s)"
    prefix="${VIRTUAL_ENV}"
    if [ -z "${ROS_DISTRO:-}" ]; then
      # The wheels' exported CMake files name the wheel builder's Python; point them at ours.
      pyinc="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
      npinc="$(python -c 'import numpy; print(numpy.get_include())')"
      { grep -rl --include="*.cmake" "/opt/python/cp3" "$prefix/share" 2>/dev/null || true; } | while read -r f; do
        sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g" "$f"
      done
    fi
    rm -rf .ros_compat && mkdir -p .ros_compat/src
    cp -r compat/vision_msgs compat/tf2_msgs .ros_compat/src/
    (cd .ros_compat && colcon --log-base log build --merge-install --event-handlers console_direct- \
        --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$(command -v python)" >build.log 2>&1) \
      || { log "vision_msgs build failed; see .ros_compat/build.log"; tail -30 .ros_compat/build.log >&2; exit 1; }
    echo "$want" > .ros_compat/.stamp
    # shellcheck disable=SC1091
    . scripts/env.sh
  fi
fi
python -c "import rclpy, vision_msgs.msg, sensor_msgs.msg, face_tracker_core" \
  || { log "environment check failed"; exit 1; }
log "ready ($(python --version), $(python -c 'import vision_msgs, os; print("vision_msgs from " + os.path.dirname(vision_msgs.__file__))'))"
