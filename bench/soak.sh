#!/usr/bin/env bash
# Soak benchmark (prints figures; not a test, not in CI): a long live session with misbehaving
# peers, churn and tracker restarts, all on 127.0.0.1.
#
#   bench/soak.sh                      60 minutes (about 62 with the build when warm)
#   MINUTES=3 bench/soak.sh            shorter
#   CHECK_DETECTOR=1 MINUTES=2 bench/soak.sh
#                                      the origin itself serves wrong segments (about 1 in 5):
#                                      checks that the wrong-bytes count sees them
#   bench/soak.sh --peers 8 --liars 2 --churn-every 120 --tracker-restart-every 300
#                                      any `bench-play soak` option (see below)
#
# `bench-play soak` (examples/bench_play/soak.rs) serves the swarm benchmark's 120-s clip
# (720p30 H.264 1.5 Mbit/s + AAC, 2-s MPEG-TS segments) as a live sliding window that loops
# with EXT-X-DISCONTINUITY for as long as the soak lasts, starts the real tracker
# (tests/tracker/server.mjs) and 6 peers (--peers): 4 element peers (`bench-play soak-peer`:
# p2phlssrc -> fakesink sync=true, every pushed segment hashed and compared with the origin's)
# and 2 liars (--liars; `bench-play liar`, examples/bench_play/liar.rs: join the same swarm,
# announce every segment of the window, answer with garbage, another segment's bytes (stale) or
# a byte every 1.9 s (drip)). Every --churn-every s (180) one honest peer is killed by PID and a
# fresh one joins (peer slot 0 is never churned: its RSS series is the long one), and one liar
# comes back with a new peer id and the next behaviour; every --tracker-restart-every s (600)
# the tracker is killed by PID and started again on the same port.
#
# Prints a SOAK_MIN line per minute (RSS/fds per live element peer, P2P share, stalls, wrong
# segments, liar connections) and at the end a summary and `SOAK_RESULT {json}`: RSS slope
# (KiB/min, least squares over the second half of each process's samples), open fds at
# start/end/max, stalls (count, total ms), P2P share, origin bytes / unique segment bytes, and
# wrong segments (must be 0).
#
# Runs at niceness 10 (the machine may be shared). Every process is stopped by PID: the
# tracker, peers and liars are children of bench-play, which kills them by PID and which they
# never outlive (their stdin is a pipe from it, and each has an --until-ms deadline); the whole
# run is bounded with `timeout`.
set -euo pipefail

# Niceness 10 for everything (build and soak), once: `nice bench/soak.sh` stays at 10 too, not
# 19, where the peers would be starved by the other work on a shared machine.
if [ "$(nice)" -lt 10 ]; then exec nice -n $((10 - $(nice))) "$0" "$@"; fi

cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-60}
# Whole script: the build (up to 30 min when cold), the soak and 5 minutes of margin.
TIME_BUDGET=${TIME_BUDGET:-$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 2100 }')}
# shellcheck source=scripts/common.sh
. scripts/common.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-soak.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build_bench_play "$tmp"

extra=()
[ "${CHECK_DETECTOR:-0}" = 1 ] && extra+=(--detector-check)
# The soak itself, plus 5 minutes for the stream generation (cached after the first time)
# and the peers' exit.
limit=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 300 }')
step "soak: $MINUTES min ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
bounded "${SOAK_TIMEOUT:-$limit}" "$bin" soak --minutes "$MINUTES" "${extra[@]}" "$@"
