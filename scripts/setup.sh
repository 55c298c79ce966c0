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

# The wheels' exported CMake files name the wheel builder's Python; point them at ours.
fix_wheel_cmake() {
  [ -n "${ROS_DISTRO:-}" ] && return 0
  local pyinc npinc
  pyinc="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  npinc="$(python -c 'import numpy; print(numpy.get_include())')"
  { grep -rl --include="*.cmake" "/opt/python/cp3" "$VIRTUAL_ENV/share" 2>/dev/null || true; } | while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g; s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g" "$f"
  done
}

# hri_msgs' snapshot is its catkin (ROS 1) release: the message definitions carry over to ROS 2 (see
# below) and the build files are written here for ament.
port_hri_msgs() {
  local from="$1" to="$2"
  mkdir -p "$to/msg"
  # ROS 1's implicit `Header` is spelled std_msgs/Header in ROS 2; AudioFeatures has ROS 1-only
  # field names (ZCR, MFCC) that ROS 2 rejects, so it is left out.
  python - "$from/msg" "$to/msg" <<'PY'
import contextlib, io, pathlib, re, sys
from rosidl_adapter.parser import parse_message_string
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.msg")):
    text = re.sub(r"^Header(\s)", r"std_msgs/Header\1", f.read_text(), flags=re.M)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parse_message_string("hri_msgs", f.stem, text)
    except Exception:  # noqa: BLE001 - not a valid ROS 2 definition
        print(f"[setup] hri_msgs: {f.name} is not valid in ROS 2, left out", file=sys.stderr)
        continue
    (pathlib.Path(sys.argv[2]) / f.name).write_text(text)
PY
  [ -f "$from/LICENSE" ] && cp "$from/LICENSE" "$to/"
  cat > "$to/package.xml" <<'XML'
<?xml version="1.0"?>
<package format="3">
  <name>hri_msgs</name>
  <version>0.9.0</version>
  <description>REP-155 (ros4hri) messages, built for ROS 2 from the upstream message definitions.</description>
  <maintainer email="severin.lemaignan@pal-robotics.com">Severin Lemaignan</maintainer>
  <license>BSD</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>std_msgs</depend>
  <depend>sensor_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
XML
  cat > "$to/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.8)
project(hri_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(std_msgs REQUIRED)
find_package(sensor_msgs REQUIRED)
file(GLOB _msgs RELATIVE "${CMAKE_CURRENT_SOURCE_DIR}" "${CMAKE_CURRENT_SOURCE_DIR}/msg/*.msg")
list(SORT _msgs)
rosidl_generate_interfaces(${PROJECT_NAME} ${_msgs} DEPENDENCIES std_msgs sensor_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CMAKE
}

# shellcheck disable=SC1091
. scripts/env.sh

# The venv is a ROS prefix (AMENT_PREFIX_PATH) without colcon's local_setup.* files: colcon build
# warns about it, and an install/setup.bash built here would chain to a missing script. Its
# environment comes from scripts/env.sh, so these are empty.
if [ -z "${ROS_DISTRO:-}" ]; then
  for ext in sh bash zsh; do
    [ -f "$VIRTUAL_ENV/local_setup.$ext" ] || \
      printf '# face_tracker: this venv'"'"'s ROS environment comes from scripts/env.sh\n' > "$VIRTUAL_ENV/local_setup.$ext"
  done
fi

if python -c "import vision_msgs.msg" 2>/dev/null && [ ! -d .ros_compat/install ]; then
  log "vision_msgs found: $(python -c 'import vision_msgs, os; print(os.path.dirname(vision_msgs.__file__))')"
else
  want="$(stamp_of compat/vision_msgs/CMakeLists.txt compat/vision_msgs/package.xml compat/vision_msgs/msg/*.msg \
    compat/tf2_msgs/CMakeLists.txt compat/tf2_msgs/package.xml compat/tf2_msgs/msg/*.msg)-$(python -c 'import sys; print(sys.version_info[:2])')"
  if [ "$(cat .ros_compat/.stamp 2>/dev/null)" != "$want" ]; then
    log "building the vision_msgs and tf2_msgs interfaces into .ros_compat/ (about 60 s)"
    fix_wheel_cmake
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
# The ROS 2 command-line tools (ros2 launch/topic/param/lifecycle..., launch_ros) and hri_msgs: no
# registry has them, ../shared/ros2/src has their unmodified sources. Built once into .ros_tools/
# (rebuilt when those sources change) unless a sourced ROS 2 already provides them.
ros2_src="${FT_ROS2_SRC:-$root/../shared/ros2/src}"
if [ -n "${ROS_DISTRO:-}" ] && command -v ros2 >/dev/null && python -c "import launch_ros, ros2cli, hri_msgs.msg" 2>/dev/null; then
  log "ROS 2 tools from the sourced ROS 2 $ROS_DISTRO"
elif [ ! -d "$ros2_src/launch_ros" ]; then
  log "no ROS 2 tool sources at $ros2_src (set FT_ROS2_SRC): ros2 CLI / launch tests will skip"
else
  want="$(cd "$ros2_src" && find . -type f -not -path '*/.git/*' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)-$(python -c 'import sys; print(sys.version_info[:2])')"
  if [ "$(cat .ros_tools/.stamp 2>/dev/null)" != "$want" ]; then
    log "building the ROS 2 tools and hri_msgs into .ros_tools/ (about 2 min)"
    fix_wheel_cmake
    rm -rf .ros_tools && mkdir -p .ros_tools/src
    for d in "$ros2_src"/*/; do [ "$(basename "$d")" = hri_msgs ] || cp -r "$d" .ros_tools/src/; done
    port_hri_msgs "$ros2_src/hri_msgs" .ros_tools/src/hri_msgs
    # (byte-compiled: the ros2 command starts faster)
    (cd .ros_tools && env -u PYTHONDONTWRITEBYTECODE colcon --log-base log build --merge-install --event-handlers console_direct- \
        --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$(command -v python)" >build.log 2>&1) \
      || { log "ROS 2 tools build failed; see .ros_tools/build.log"; tail -30 .ros_tools/build.log >&2; exit 1; }
    rm -rf .ros_tools/build .ros_tools/src
    echo "$want" > .ros_tools/.stamp
  fi
  # shellcheck disable=SC1091
  . scripts/env.sh
  python -c "import launch_ros, ros2cli, hri_msgs.msg" && command -v ros2 >/dev/null \
    || { log "ROS 2 tools check failed (.ros_tools/)"; exit 1; }
fi
python -c "import rclpy, vision_msgs.msg, sensor_msgs.msg, face_tracker_core" \
  || { log "environment check failed"; exit 1; }
log "ready ($(python --version), $(python -c 'import vision_msgs, os; print("vision_msgs from " + os.path.dirname(vision_msgs.__file__))'))"
