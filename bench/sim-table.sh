#!/bin/sh
# The swarm simulator's target tables (a benchmark: prints figures, asserts nothing).
#   bench/sim-table.sh [seed]          issue table: 100 and 1,000 peers, 10-min live, with
#                                      --rtt-ms 40 --loss 0.01 --churn 0.05 --liars 2 --drip 2,
#                                      policy ours and pml side by side
#   CLEAN=1 bench/sim-table.sh [seed]  the fault-free target scenarios (http, pml, ours)
#   PEERS="100" bench/sim-table.sh     only these swarm sizes
# The 1,000-peer runs take minutes each on one core; CPU time is printed per run.
# Last line: `chart: PATH`, an SVG of the P2P share per run against the target
# (target/bench-charts/sim-table.svg, or CHART).
set -eu
cd "$(dirname "$0")/.."
scripts/patch-crates.sh
cargo build --release --quiet --example swarm-sim
sim=target/release/examples/swarm-sim
seed=${1:-1}
if [ "${CLEAN:-0}" = 1 ]; then
  /usr/bin/time -f 'total CPU %U s user, %e s wall' "$sim" --compare --seed "$seed"
  exit 0
fi
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
faults="--rtt-ms 40 --loss 0.01 --churn 0.05 --liars 2 --drip 2"
printf '%-6s %-5s %7s %7s %7s %6s %9s %8s %8s %9s %8s\n' peers policy p2p limit target stalls stall_ms origin_x wasted% wrong cpu_s
for n in ${PEERS:-100 1000}; do
  stagger=$([ "$n" -ge 1000 ] && echo 0.05 || echo 0.5)
  for policy in ours pml; do
    out=$( { /usr/bin/time -f 'CPU %U' "$sim" --peers "$n" --stream live --duration 600 --stagger "$stagger" \
      --seed "$seed" --policy "$policy" $faults --quiet; } 2>&1)
    json=$(printf '%s\n' "$out" | sed -n 's/^SIM_RESULT //p')
    cpu=$(printf '%s\n' "$out" | sed -n 's/^CPU //p')
    printf '%s\n' "$json" | python3 -c '
import json, sys
r = json.load(sys.stdin)
n, policy, cpu = sys.argv[1], sys.argv[2], float(sys.argv[3])
wasted = 100.0 * r["wasted_http_bytes"] / max(1, r["origin_bytes"])
print("%-6s %-5s %6.1f%% %6.1f%% %6.1f%% %6d %9d %8.2f %7.2f%% %9d %8.1f" % (n, policy,
      100 * r["p2p_share"], 100 * r["limit"], 95 * r["limit"], r["stalls"], r["stall_ms_total"],
      r["origin_x"], wasted, r["wrong_segments"], cpu))
with open(sys.argv[4], "a") as f:
    f.write(json.dumps({"label": "%s peers, %s" % (n, policy),
                        "values": [100 * min(r["p2p_share"], 0.95 * r["limit"]),
                                   100 * max(0, r["p2p_share"] - 0.95 * r["limit"])],
                        "note": "%.1f %% P2P (target %.1f %%), %d stalls" % (100 * r["p2p_share"],
                                95 * r["limit"], r["stalls"])}) + "\n")' "$n" "$policy" "$cpu" "$rows"
  done
done
echo "targets (ours): zero stalls, p2p >= 0.95 x limit, wasted < 1 % of origin bytes, 1,000 peers < 60 s CPU"
chart=${CHART:-target/bench-charts/sim-table.svg}
mkdir -p "$(dirname "$chart")"
python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"title": "bench/sim-table.sh: P2P share, 10-min live with faults (seed %s)" % sys.argv[2],
                  "unit": "%", "series": ["P2P share up to 0.95 x limit (the target)", "above the target"],
                  "rows": rows}))' "$rows" "$seed" | python3 bench/bar_chart.py "$chart"
