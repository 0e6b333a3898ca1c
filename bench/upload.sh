#!/usr/bin/env bash
# Upload benchmark (prints figures; not a test): what one seeding element spends serving peers.
#
#   bench/upload.sh                          8 downloaders (about 2 minutes on 2 cores)
#   bench/upload.sh --downloaders 4          fewer (or more) downloaders
#   PERF=1 bench/upload.sh                   also `perf record --call-graph dwarf` on the seeder over the window
#                                            (then: perf report -i "$CARGO_TARGET_DIR/upload.perf")
#
# Stream (examples/common/stream.rs, StreamSpec::upload, generated once with ffmpeg and cached):
# 60 s of 720p30 H.264 4.8 Mbit/s + AAC in MPEG-TS, 2-s segments, about 5 Mbit/s in all.
#
# `bench-play upload` (examples/bench_play/upload.rs) starts the origin (in its own process, not a peer's),
# the real tracker (tests/tracker/server.mjs) and one seeder, a `bench-play peer` with
# max-upload-rate=0 (unlimited; the element's default is 2 MB/s per swarm) and fakesink
# sync=false that fetches the whole VOD over HTTP. Then 8 downloaders join 0.5 s apart:
# p2p-upload=false (they never serve each other, so the seeder serves every P2P byte),
# fakesink sync=true and p2p-download-time-window=10 s, so that after a first 10-s burst each
# pulls at playback rate: 8 x 5 Mbit/s from the seeder. Over the serving window (first
# downloader spawned -> last EOS) it prints the seeder's CPU (user+system from /proc, all
# threads) as % of one core, the bytes it uploaded and the rate, CPU-ms per MB uploaded (and
# that extrapolated to 5 MB/s = 8 x 5 Mbit/s), its CPU per thread name, and a final
# `UPLOAD_BENCH {json}` line. Target: <= 10 % of one core at 8 x 5 Mbit/s.
#
# Every process is stopped by PID (children of bench-play, which they never outlive: their
# stdin is a pipe from it); the whole benchmark is bounded with `timeout`.
set -euo pipefail

cd "$(dirname "$0")/.."
TIME_BUDGET=${TIME_BUDGET:-1800}
# shellcheck source=scripts/common.sh
. scripts/common.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-upload.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

build_bench_play "$tmp"

perf_args=()
if [ "${PERF:-0}" = 1 ]; then
  perf_args=(--perf-out "$CARGO_TARGET_DIR/upload.perf")
fi
step "upload run ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
bounded "${UPLOAD_TIMEOUT:-600}" "$bin" upload "${perf_args[@]}" "$@"
