#!/bin/sh
# Runs one seeder (p2phlssrc/p2pdashsrc mode=seeder ! fakesink) per channel URL with a status
# line per channel every second; stops cleanly on SIGINT/SIGTERM (issue 15). Arguments go to
# examples/seed.rs:
#   scripts/seed.sh [--tracker URL]... [--prop NAME=VALUE]... [--interval S] URL...
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
(cd "$ROOT" && scripts/patch-crates.sh >/dev/null && cargo build -q --locked --release --example seed)
exec "$TARGET/release/examples/seed" "$@"
