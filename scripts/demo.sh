#!/usr/bin/env bash
# The demo (README's first command): installs what it needs on a fresh Debian 12 machine,
# builds the demo (debug: it shares its build with scripts/test.sh and starts sooner), then
# generates a local HLS stream, serves it on 127.0.0.1, starts a real WebTorrent tracker
# (tests/tracker, bittorrent-tracker 11.2.3) and plays the stream in real time through 4
# p2phlssrc peers joining 4 s apart that share segments over WebRTC (about 45 s), printing a
# table of HTTP vs P2P bytes per peer every second and a summary. At the end it writes an SVG
# chart of those per-second figures (per peer, bytes from the origin and from peers; the swarm's
# P2P share; examples/common/chart.rs) and prints its path on the last line, `chart: PATH`
# (default target/demo-chart.svg; `--chart PATH` to choose).
#
#   scripts/demo.sh [--peers N] [--stagger S] [--duration S] [--uri URL] [--no-p2p] [--chart PATH]
#   scripts/demo.sh --serve [--port 8080] [--duration S]
#
# DEMO_TIMEOUT (seconds, default 3600) bounds the demo itself, --serve included.
set -euo pipefail

cd "$(dirname "$0")/.."
TIME_BUDGET=${TIME_BUDGET:-7200}
# shellcheck source=scripts/common.sh
. scripts/common.sh

install_system_packages
prepare_patched_crates
install_npm_packages
step "cargo build --locked --example demo"
bounded 1800 cargo build --locked --example demo
step "demo $*"
bounded "${DEMO_TIMEOUT:-3600}" cargo run --locked --quiet --example demo -- "$@"
