# Source this file (bash) to use the project's environment: the .venv (or a system ROS 2), the
# locally built interface packages, the Fast DDS profile and DDS traffic kept on this machine.
# shellcheck shell=bash
_ft_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f "$_ft_root/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$_ft_root/.venv/bin/activate"
fi
if [ -n "${VIRTUAL_ENV:-}" ] && [ -z "${ROS_DISTRO:-}" ]; then
  # ROS 2 from PyPI wheels: the venv is the ROS prefix.
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
_ft_compat="$_ft_root/.ros_compat/install"
if [ -d "$_ft_compat/lib" ]; then
  _ft_pyver="$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
  export PYTHONPATH="$_ft_compat/lib/$_ft_pyver/site-packages${PYTHONPATH:+:$PYTHONPATH}"
  export LD_LIBRARY_PATH="$_ft_compat/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export AMENT_PREFIX_PATH="$_ft_compat${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
# The ROS 2 tools built from source by scripts/setup.sh (ros2 CLI, launch_ros, hri_msgs); a sourced
# ROS 2 that has them all makes setup.sh skip that build (the folder is then absent).
_ft_tools="$_ft_root/.ros_tools/install"
if [ -d "$_ft_tools/lib" ]; then
  _ft_pyver="$(python3 -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')"
  # (each variable checked on its own: sourcing the venv's activate again resets PATH only)
  case ":${PYTHONPATH:-}:" in *":$_ft_tools/lib/$_ft_pyver/site-packages:"*) ;; *)
    export PYTHONPATH="$_ft_tools/lib/$_ft_pyver/site-packages${PYTHONPATH:+:$PYTHONPATH}" ;;
  esac
  case ":${LD_LIBRARY_PATH:-}:" in *":$_ft_tools/lib:"*) ;; *)
    export LD_LIBRARY_PATH="$_ft_tools/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
  case ":${AMENT_PREFIX_PATH:-}:" in *":$_ft_tools:"*) ;; *)
    export AMENT_PREFIX_PATH="$_ft_tools${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
  esac
  case ":$PATH:" in *":$_ft_tools/bin:"*) ;; *) export PATH="$_ft_tools/bin:$PATH" ;; esac
fi
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_ft_root/config/fastdds_shm.xml}"
# DDS traffic stays on this machine unless the user says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONDONTWRITEBYTECODE=1
unset _ft_compat _ft_tools _ft_pyver
