#!/bin/sh
# Seeder benchmark (issue 15; prints figures, asserts nothing): a live stream (130-s fixture,
# 12-segment window as P2P Media Loader deployments use, 2-s segments) watched by N PML 2.3.1
# browsers pinned to the 360p level, (a) alone and (b) with one seeder started first
# (`p2phlssrc mode=seeder seed-variants=730400` via examples/interop_peer, release build), for
# N = 4 and N = 8. Per run: origin egress (.ts bytes the origin served, all peers) as a multiple
# of one viewer's stream (the mean bytes a browser played), the browsers' P2P share, their
# time to first frame (page start -> "playing", median/max), the segments browsers took from
# the seeder vs from each other, and the seeder's CPU and peak RSS.
#
# HLS_CONFIG (JSON, default {"liveSyncDurationCount":11}) goes to every page's hls.js: what
# P2P Media Loader sets itself on the first level update, but only when it wins a race with
# hls.js's start position; a browser that loses it plays at the live edge, where PML fetches
# every segment over HTTP first (high demand), seeder or not. HLS_CONFIG= leaves it to PML.
# "at edge": browsers that started with fewer than 6 segments in their first second.
#
# "after start": the same from 16 s after the last browser launched (each browser fills its
# first 15 s of buffer over HTTP whatever the swarm holds: PML's high-demand rule).
# REPORT_ONLY=1 prints the tables of the runs already in OUT_DIR.
#
#   bench/seeder.sh [OUT_DIR] [DURATION_S]       (needs root, chromium, ffmpeg, npm ci)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET/tmp/seeder-bench}
DUR=${2:-80}
FX=$OUT/fixtures
HLS_CONFIG=${HLS_CONFIG-'{"liveSyncDurationCount":11}'}
mkdir -p "$OUT"
. "$ROOT/bench/fixture.sh"
bench_fixture "$FX/long" 130
[ -n "${REPORT_ONLY:-}" ] || (cd "$ROOT" && scripts/patch-crates.sh && cargo build -q --locked --release --example interop_peer)
SEEDER="exec $TARGET/release/examples/interop_peer --stay --duration $((DUR + 60)) --prop mode=seeder \
  --prop seed-variants=730400 --prop extra-headers=h,x-interop-peer=seeder"
RUN="$ROOT/tests/interop/netns.sh -t $((DUR + 300)) node $ROOT/tests/interop/run.mjs --fixtures $FX \
  --stream live/long/master.m3u8 --live-window 12 --pml 23 --duration $DUR --deadline $((DUR + 280))"

for n in 4 8; do
  [ -n "${REPORT_ONLY:-}" ] && continue
  $RUN --out "$OUT/alone-$n" --browsers "$n" ${HLS_CONFIG:+--hls "$HLS_CONFIG"} > "$OUT/alone-$n.log"
  $RUN --out "$OUT/seeder-$n" --browsers "$n" ${HLS_CONFIG:+--hls "$HLS_CONFIG"} \
    --external "$SEEDER" --external-lead 3 > "$OUT/seeder-$n.log"
done

python3 - "$OUT" <<'PY'
import json, os, re, statistics, sys
out = sys.argv[1]
rows = []
for n in [4, 8]:
    for kind in ["alone", "seeder"]:
        d = os.path.join(out, f"{kind}-{n}")
        r = json.load(open(os.path.join(d, "result.json")))
        bs = r["browsers"]
        origin = seeder_origin = 0
        for line in open(os.path.join(d, "origin.jsonl")):
            j = json.loads(line)
            if j["path"].endswith(".ts"):
                origin += j["bytes"]
                if j.get("peer") == "seeder": seeder_origin += j["bytes"]
        played = [b["httpBytes"] + b["p2pBytes"] for b in bs]
        # After start: from 16 s after the last launch (runner seconds; page times are ms
        # since the page started, about when it was launched).
        cut = max(b["launchedAt"] for b in bs) + 16
        late = [(sum(e["bytes"] for e in b["segmentLog"] if b["launchedAt"] + e["t"] / 1000 > cut and e["src"] == "http"),
                 sum(e["bytes"] for e in b["segmentLog"] if b["launchedAt"] + e["t"] / 1000 > cut and e["src"] == "p2p"))
                for b in bs]
        late_origin = sum(json.loads(l)["bytes"] for l in open(os.path.join(d, "origin.jsonl"))
                          if json.loads(l)["path"].endswith(".ts") and float(json.loads(l)["t"]) > cut)
        late_one = statistics.mean(h + p for h, p in late) if late else 1
        late_p2p = 100 * sum(p for _, p in late) / max(1, sum(h + p for h, p in late))
        one = statistics.mean(played) if played else 1
        http = sum(b["httpBytes"] for b in bs); p2p = sum(b["p2pBytes"] for b in bs)
        edge = sum(1 for b in bs if sum(1 for e in b["segmentLog"] if e["t"] < 1000) < 6)
        ttff = sorted(b["firstFrameAt"] for b in bs if b.get("firstFrameAt") is not None)
        seeder_ids = set(r["tracker"]["otherPeerIds"]) if kind == "seeder" else set()
        from_seeder = from_browsers = 0
        for b in bs:
            for e in b["segmentLog"]:
                if e["src"] != "p2p": continue
                if e["peer"] in seeder_ids: from_seeder += 1
                else: from_browsers += 1
        cpu = rss = "-"
        if kind == "seeder":
            for e in r["externals"]:
                for l in open(e["log"]).read().splitlines():
                    if l.startswith("RUSAGE "):
                        ru = json.loads(l[7:])
                        cpu = f"{100 * ru['cpu_ms'] / max(1, ru['wall_ms']):.1f}"
                        rss = f"{ru['peak_rss_kib'] / 1024:.1f}"
        rows.append([f"{n} browsers", kind, f"{origin / 1e6:.2f}", f"{one / 1e6:.2f}",
                     f"{origin / one:.2f}", f"{seeder_origin / one:.2f}",
                     f"{100 * p2p / max(1, http + p2p):.1f}", str(edge),
                     f"{late_origin / max(1, late_one):.2f}", f"{late_p2p:.1f}",
                     " ".join(f"{100 * b['p2pBytes'] / max(1, b['httpBytes'] + b['p2pBytes']):.0f}" for b in bs),
                     f"{ttff[len(ttff) // 2] / 1000:.2f}/{ttff[-1] / 1000:.2f}" if ttff else "-",
                     f"{from_seeder}/{from_browsers}", cpu, rss])
head = ["audience", "run", "origin MB", "one stream MB", "origin x stream", "seeder pulls x",
        "browsers P2P %", "at edge", "after start: origin x stream", "after start: P2P %", "per browser P2P %", "first frame s med/max", "P2P segs from seeder/browsers",
        "seeder CPU %", "seeder RSS MiB"]
w = [max(len(str(x[c])) for x in [head] + rows) for c in range(len(head))]
for x in [head] + rows:
    print("  ".join(str(c).ljust(w[k]) for k, c in enumerate(x)))
print("SEEDER_BENCH " + json.dumps([dict(zip(head, x)) for x in rows]))
PY
