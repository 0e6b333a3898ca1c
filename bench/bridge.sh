#!/bin/sh
# Mixed-version benchmark (issue 13; prints figures, asserts nothing): three P2P Media Loader
# families cannot share a swarm, so 2 + 2 + 2 browsers of PML 2.3.1, 2.2.2 and 0.6.2 (hls.js
# pages, 360p pinned, joining one after another in the order 23, 22, 06, 23, 22, 06) watching
# the same VOD (the 130-s fixture, 2-s segments) form three swarms of two. Two runs:
#   alone   the six browsers
#   bridge  the six browsers and one element started first with
#           compat=pml-2.3+pml-2.2+pml-0.6 (examples/interop_peer, release build, playing as
#           fast as it can): it fetches each segment once, plays through its 2.3 swarm and
#           serves the same bytes in the 2.2 and 0.6 swarms.
# Per run: origin egress (.ts bytes the origin served, everybody) as a multiple of one viewer's
# stream (the mean bytes a browser played), the element's own origin pull, the P2P share per
# family, and the P2P segments browsers took from the element vs from each other.
# REPORT_ONLY=1 prints the table of the runs already in OUT_DIR.
#
#   bench/bridge.sh [OUT_DIR] [DURATION_S]       (needs root, chromium, ffmpeg, npm ci)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET/tmp/bridge-bench}
DUR=${2:-60}
FX=$OUT/fixtures
mkdir -p "$OUT"
. "$ROOT/bench/fixture.sh"
bench_fixture "$FX/long" 130
[ -n "${REPORT_ONLY:-}" ] || (cd "$ROOT" && scripts/patch-crates.sh && cargo build -q --locked --release --example interop_peer)
BRIDGE="exec $TARGET/release/examples/interop_peer --stay --duration $((DUR + 90)) \
  --prop compat=pml-2.3+pml-2.2+pml-0.6 --prop min-bitrate=700000 --prop start-bitrate=100000000 \
  --prop extra-headers=h,x-interop-peer=bridge"
RUN="$ROOT/tests/interop/netns.sh -t $((DUR + 400)) node $ROOT/tests/interop/run.mjs --fixtures $FX \
  --stream long/master.m3u8 --pml 23,22,06 --browsers 6 --duration $DUR --deadline $((DUR + 380))"

if [ -z "${REPORT_ONLY:-}" ]; then
  $RUN --out "$OUT/alone" > "$OUT/alone.log"
  $RUN --out "$OUT/bridge" --external "$BRIDGE" --external-lead 3 > "$OUT/bridge.log"
fi

python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
rows = []
for kind in ["alone", "bridge"]:
    d = os.path.join(out, kind)
    r = json.load(open(os.path.join(d, "result.json")))
    bs = r["browsers"]
    origin = bridge_origin = 0
    for line in open(os.path.join(d, "origin.jsonl")):
        j = json.loads(line)
        if j["path"].endswith(".ts"):
            origin += j["bytes"]
            if j.get("peer") == "bridge":
                bridge_origin += j["bytes"]
    one = statistics.mean(b["httpBytes"] + b["p2pBytes"] for b in bs)
    fam = {}
    for b in bs:
        h, p = fam.get(b["pml"], (0, 0))
        fam[b["pml"]] = (h + b["httpBytes"], p + b["p2pBytes"])
    share = lambda h, p: f"{100 * p / max(1, h + p):.1f}"
    http = sum(b["httpBytes"] for b in bs)
    p2p = sum(b["p2pBytes"] for b in bs)
    ids = set(r["tracker"]["otherPeerIds"]) if kind == "bridge" else set()
    from_el = from_br = 0
    for b in bs:
        for e in b["segmentLog"]:
            if e["src"] == "p2p":
                if e["peer"] in ids:
                    from_el += 1
                else:
                    from_br += 1
    cpu = rss = "-"
    for e in r.get("externals", []):
        for l in open(e["log"]).read().splitlines():
            if l.startswith("RUSAGE "):
                ru = json.loads(l[7:])
                cpu = f"{100 * ru['cpu_ms'] / max(1, ru['wall_ms']):.1f}"
                rss = f"{ru['peak_rss_kib'] / 1024:.1f}"
    rows.append([kind, f"{origin / 1e6:.2f}", f"{one / 1e6:.2f}", f"{origin / one:.2f}",
                 f"{bridge_origin / one:.2f}", share(http, p2p),
                 share(*fam.get("23", (0, 0))), share(*fam.get("22", (0, 0))),
                 share(*fam.get("06", (0, 0))),
                 " ".join(f"{b['label']}:{100 * b['p2pBytes'] / max(1, b['httpBytes'] + b['p2pBytes']):.0f}" for b in bs),
                 f"{from_el}/{from_br}", cpu, rss])
head = ["run", "origin MB", "one stream MB", "origin x stream", "element pulls x", "browsers P2P %",
        "2.3 P2P %", "2.2 P2P %", "0.6 P2P %", "per browser P2P %", "P2P segs from element/browsers",
        "element CPU %", "element RSS MiB"]
w = [max(len(str(x[c])) for x in [head] + rows) for c in range(len(head))]
for x in [head] + rows:
    print("  ".join(str(c).ljust(w[k]) for k, c in enumerate(x)))
print("BRIDGE_BENCH " + json.dumps([dict(zip(head, x)) for x in rows]))
PY
