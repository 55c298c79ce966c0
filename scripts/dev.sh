#!/usr/bin/env bash
# One entry point: set up (idempotent), then run a job.
#   scripts/dev.sh demo [--live] [--source /dev/video0|file.mp4] [...]   the main job, no camera needed
#   scripts/dev.sh test [pytest args]                                     the test suite
#   scripts/dev.sh bench <name>                                           a benchmark (benchmarks/<name>.py)
#   scripts/dev.sh run <command...>                                       any command in the environment
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
job="${1:-demo}"; shift || true
"$root/scripts/setup.sh"
# shellcheck disable=SC1091
. "$root/scripts/env.sh"
# Each run gets its own DDS domain unless one is given, so parallel runs never cross-talk.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 100 ))}"
case "$job" in
  demo) exec face_tracker_demo "$@" ;;
  test) exec "$root/scripts/run_tests.sh" "$@" ;;
  bench) name="$1"; shift; exec python "benchmarks/$name.py" "$@" ;;
  run) exec "$@" ;;
  *) echo "usage: $0 demo|test|bench NAME|run CMD..." >&2; exit 2 ;;
esac
