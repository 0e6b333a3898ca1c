#!/usr/bin/env bash
# The demo (README's first command): installs what it needs on a fresh Debian 12 machine,
# builds the demo (debug: it shares its build with scripts/test.sh and starts sooner), then
# generates a local HLS stream, serves it on 127.0.0.1 and plays it through p2phlssrc in real
# time (about 30 s), printing a progress line per second and a summary.
#
#   scripts/demo.sh [--peers N] [--stagger S] [--duration S] [--uri URL]
#   scripts/demo.sh --serve [--port 8080] [--duration S]
#
# DEMO_TIMEOUT (seconds, default 3600) bounds the demo itself, --serve included.
set -euo pipefail

cd "$(dirname "$0")/.."
TIME_BUDGET=${TIME_BUDGET:-7200}
# shellcheck source=scripts/common.sh
. scripts/common.sh

install_system_packages
step "cargo build --locked --example demo"
bounded 1800 cargo build --locked --example demo
step "demo $*"
bounded "${DEMO_TIMEOUT:-3600}" cargo run --locked --quiet --example demo -- "$@"
