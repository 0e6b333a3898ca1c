#!/bin/sh
# Side-by-side table of the target scenarios (http-only, pml, ours) from the swarm simulator:
# 4 peers 60-s VOD joining 4 s apart; 10 / 100 / 1000 peers 10-min live.
# Usage: bench/sim-table.sh [seed]     (total CPU time is printed at the end)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --example swarm-sim
/usr/bin/time -f 'total CPU %U s user, %e s wall' \
    target/release/examples/swarm-sim --compare --seed "${1:-1}"
