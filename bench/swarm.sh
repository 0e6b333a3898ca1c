#!/usr/bin/env bash
# Swarm benchmark (prints figures; not a test): element-only P2P swarms on 127.0.0.1.
#
#   bench/swarm.sh                     default runs (about 9 minutes on 2 cores)
#   RUNS=vod:4,live:4 bench/swarm.sh   choose runs: vod:N, live:N, pml-vod:N, pml-live:N
#   FULL=1 bench/swarm.sh              also live:8 and pml-live:4 (about 13 minutes)
#   bench/swarm.sh --set max-store-size=8388608   an element property for every peer
#
# Stream (examples/common/stream.rs, StreamSpec::swarm, generated once with ffmpeg and cached):
# 720p30 H.264 1.5 Mbit/s + AAC in MPEG-TS, 2-s segments, one variant, like the browser
# harness's 720p level. VOD runs play its first 60 s; live runs serve a sliding window of 10
# segments synthesised by the origin (tests/common/origin.rs, one more segment every 2 s) and
# last 90 s from the first join.
#
# Per run, `bench-play swarm` (examples/bench_play/swarm.rs) starts the origin (in its own
# process), the real tracker (tests/tracker/server.mjs, bittorrent-tracker 11.2.3) and N
# `bench-play peer` processes joining 4 s apart: p2phlssrc (ice-servers empty: host candidates
# only) -> fakesink sync=true on each pad, no demuxing or decoding. See that file for how
# stalls, first buffer, RSS/CPU and data-channel setup are measured. Prints one SWARM_RUN line
# per run (and its chart's `chart: PATH`), a table and a final `SWARM_BENCH {json}` line.
#
# Every process is stopped by PID: the tracker and the peers are children of bench-play, which
# kills them by PID and which they never outlive (their stdin is a pipe from it); the whole
# benchmark is bounded with `timeout`.
set -euo pipefail

cd "$(dirname "$0")/.."
TIME_BUDGET=${TIME_BUDGET:-3600}
# shellcheck source=scripts/common.sh
. scripts/common.sh

if [ -n "${RUNS:-}" ]; then
  runs=$RUNS
elif [ "${FULL:-0}" = 1 ]; then
  runs=vod:2,vod:4,vod:8,live:2,live:4,live:8,pml-vod:4,pml-live:4
else
  runs=vod:2,vod:4,vod:8,live:2,live:4,pml-vod:4
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-swarm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build_bench_play "$tmp"

step "swarm runs: $runs ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
# One SVG chart per run (per peer, HTTP and P2P bytes over time; the swarm's share), from the
# peers' per-second p2pmedia-stats: `chart: PATH` lines. CHART_DIR overrides where.
bounded "${SWARM_TIMEOUT:-1500}" "$bin" swarm --runs "$runs" \
  --chart-dir "${CHART_DIR:-$CARGO_TARGET_DIR/bench-charts/swarm-$(date -u +%Y%m%dT%H%M%SZ)}" "$@"
