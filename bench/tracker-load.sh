#!/usr/bin/env bash
# Tracker load benchmark (prints figures; not a test), issue 14 item 4: N live swarms, one
# p2phlssrc each, all in one `bench-play tracker-load` process against the strict tracker
# (tests/tracker/strict.mjs, which prints every message it receives), re-announcing at the
# interval the tracker asks for. Per window: announces with offers and other messages the
# tracker received, messages per swarm per minute, the process's CPU (% of one core), RSS,
# live PeerConnections; then `TRACKER_LOAD {json}`. Flat = later windows like the first full one.
#
#   bench/tracker-load.sh                                   50 swarms, 180 s, 20-s interval
#   bench/tracker-load.sh --swarms 20 --secs 120 --interval-s 10 --window-s 20
#
# Every process is stopped by PID (the tracker is bench-play's child; the pipelines are in
# bench-play); the whole run is bounded with `timeout`.
set -euo pipefail

cd "$(dirname "$0")/.."
TIME_BUDGET=${TIME_BUDGET:-1800}
# shellcheck source=scripts/common.sh
. scripts/common.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-tracker-load.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build_bench_play "$tmp"

step "tracker-load run ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
bounded "${TRACKER_LOAD_TIMEOUT:-900}" "$bin" tracker-load "$@"
