#!/usr/bin/env bash
# Run the test suite in the project environment (called by `scripts/dev.sh test` and CI).
# DDS traffic stays on this machine: LOCALHOST discovery, a private ROS_DOMAIN_ID, and, where the
# kernel allows it (root or user namespaces), a private network namespace with only `lo` up.
# Extra arguments go to pytest (default: everything but the `slow` real-training tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck disable=SC1091
. scripts/env.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 100 ))}"
export MPLBACKEND=Agg
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(-m "not slow")
cmd=(python -m pytest "${args[@]}")
set +e
if [ "${FT_NO_NETNS:-0}" != 1 ] && unshare -n true 2>/dev/null; then
  echo "[tests] in a private network namespace (lo only), ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
  unshare -n bash -c 'ip link set lo up 2>/dev/null || true; exec "$@"' _ "${cmd[@]}"
elif [ "${FT_NO_NETNS:-0}" != 1 ] && unshare -rn true 2>/dev/null; then
  echo "[tests] in a private user+network namespace (lo only), ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
  unshare -rn bash -c 'ip link set lo up 2>/dev/null || true; exec "$@"' _ "${cmd[@]}"
else
  echo "[tests] no network namespace available: LOCALHOST discovery only, ROS_DOMAIN_ID=$ROS_DOMAIN_ID" >&2
  "${cmd[@]}"
fi
rc=$?
set -e
# pytest exit 5 = no test collected: that is a failure of the suite, not a pass.
[ $rc -eq 5 ] && { echo "[tests] no test was collected" >&2; exit 1; }
exit $rc
