#!/usr/bin/env bash
# Runs the interop suite (tests/interop.rs: real PML browsers and elements) N times in a row and
# tallies what issue 12 asks about: test failures, PML bytes-receiving-timeouts towards an
# element and between browsers, and UDP datagrams the kernel dropped (receive buffers full) in
# the runs' network namespaces. Prints one line per run and a summary; asserts nothing.
# Run it on an otherwise idle machine: it is about timing.
#
#   bench/interop-tally.sh [N]        (default 20; about 3 minutes per run)
#   FILTER=element bench/interop-tally.sh 5     only the tests whose name contains FILTER
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
filter=()
[ -z "${FILTER:-}" ] || filter=("$FILTER")
# Each run is bounded below (15 minutes); the budget covers N of them and the build.
export TIME_BUDGET=${TIME_BUDGET:-$((N * 900 + 1800))}
# shellcheck source=scripts/common.sh
. scripts/common.sh
prepare_patched_crates
install_npm_packages
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
step "cargo test --no-run --test interop"
bin=$(cargo test --locked --no-run --test interop --message-format=json |
  python3 -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "interop" and m.get("executable"):
        print(m["executable"])')
[ -x "$bin" ] || { echo "interop-tally.sh: no test binary" >&2; exit 1; }
# The suite builds the interop_peer example itself when it is stale; build it once here.
cargo build --locked --example interop_peer
logs=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-tally.XXXXXX")
step "interop suite x $N ($(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)); logs in $logs"
for i in $(seq 1 "$N"); do
  start=$(date +%s)
  rc=0
  # Not `bounded`: a failing run is a result to tally, not the end of the tally. The runner
  # keeps each test process's results under $CARGO_TARGET_TMPDIR/p2pmedia-interop/<pid>.
  timeout --kill-after=30 900 "$bin" "${filter[@]}" --nocapture >"$logs/run-$i.log" 2>&1 || rc=$?
  python3 - "$logs/run-$i.log" "$i" "$rc" "$(($(date +%s) - start))" <<'PY'
import json, re, sys
log, i, rc, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
text = open(log, errors="replace").read()
failed = re.findall(r"^test (\S+) \.\.\. FAILED", text, re.M)
passed = len(re.findall(r"^test \S+ \.\.\. ok", text, re.M))
to_el = to_el_timeouts = between = drops = 0
results = re.findall(r"^INTEROP_RESULT (\S+)", text, re.M)
for path in results:
    r = json.load(open(path))
    elements = set(r["tracker"]["otherPeerIds"])
    for b in r["browsers"]:
        for e in b["errors"]["segment"]:
            if e.get("peer") in elements:
                to_el += 1
                to_el_timeouts += e.get("type") == "bytes-receiving-timeout"
            else: between += 1
    drops += ((r.get("udp") or {}).get("counters") or {}).get("RcvbufErrors", 0) or 0
line = {"run": int(i), "rc": rc, "passed": passed, "failed": failed, "browser_runs": len(results), "timeouts_towards_elements": to_el_timeouts,
        "segment_errors_towards_elements": to_el, "segment_errors_between_browsers": between, "udp_rcvbuf_errors": drops, "secs": int(secs)}
print("TALLY_RUN " + json.dumps(line), flush=True)
open(log + ".json", "w").write(json.dumps(line))
PY
done
python3 - "$logs" "$N" <<'PY'
import json, glob, sys
runs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/run-*.log.json"))]
s = {"runs": len(runs), "runs_all_passed": sum(1 for r in runs if r["rc"] == 0 and not r["failed"] and r["browser_runs"]),
     "failures": [f"run {r['run']}: {t}" for r in runs for t in r["failed"]],
     "timeouts_towards_elements": sum(r["timeouts_towards_elements"] for r in runs),
     "segment_errors_towards_elements": sum(r.get("segment_errors_towards_elements", 0) for r in runs),
     "segment_errors_between_browsers": sum(r["segment_errors_between_browsers"] for r in runs),
     "udp_rcvbuf_errors": sum(r["udp_rcvbuf_errors"] for r in runs)}
print("TALLY " + json.dumps(s))
PY
