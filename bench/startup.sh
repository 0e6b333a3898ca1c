#!/usr/bin/env bash
# Startup and cost benchmark (prints figures; not a test).
#
#   bench/startup.sh            (REPS=N repetitions per player, default 7)
#   FORMAT=dash bench/startup.sh  the same content as fMP4 MPEG-DASH (SegmentTemplate $Number$):
#                                 p2pdashsrc vs dashdemux2 (playbin3) vs dashdemux (playbin)
#
# Plays the same local stream (30 s of 720p25 H.264 3 Mbit/s + AAC in MPEG-TS, 4-s segments,
# one-variant master playlist, served on 127.0.0.1 by tests/common/origin.rs) with
#   p2phlssrc   playbin  uri=p2phls+http://...   (this plugin, release build)
#   hlsdemux2   playbin3 uri=http://...          (souphttpsrc + hlsdemux2)
#   hlsdemux    playbin  uri=http://...          (souphttpsrc + legacy hlsdemux)
# one fresh process per run (examples/bench-play.rs), runs interleaved and the order rotated
# every repetition, decoding as fast as possible to fakesinks. Per run: time from PLAYING to
# the first decoded video frame (and to the first buffer out of the HLS element), CPU time
# (user+system) and peak RSS of the whole process.
# Prints every run, then medians and the ratios against hlsdemux2 (dashdemux2 for DASH).
# Targets: time to first frame <= 1.1x and CPU <= 1.2x of that reference.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
TIME_BUDGET=${TIME_BUDGET:-3600}
# shellcheck source=scripts/common.sh
. scripts/common.sh
REPS=${REPS:-7}
FORMAT=${FORMAT:-hls}
case $FORMAT in hls | dash) ;; *) die "FORMAT must be hls or dash" ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-bench.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap '_stop_child; exit 130' INT TERM HUP

install_system_packages
prepare_patched_crates
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
step "cargo build --locked --release --example bench-play"
bounded 1800 cargo build --locked --release --example bench-play
bin=$CARGO_TARGET_DIR/release/examples/bench-play
export GST_REGISTRY="$tmp/registry.bin"

step "generating (cached) and serving the benchmark stream"
"$bin" serve "$FORMAT" >"$tmp/url" 2>"$tmp/serve.log" &
server=$!
for _ in $(seq 600); do
  [ -s "$tmp/url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.log"; die "bench-play serve exited"; }
  sleep 0.5
done
[ -s "$tmp/url" ] || die "no stream URL after 300 s"
url=$(head -n 1 "$tmp/url")
echo "stream: $url"

case $FORMAT in
  hls) players=(p2phlssrc hlsdemux2 hlsdemux) scheme=p2phls+ ;;
  dash) players=(p2pdashsrc dashdemux2 dashdemux) scheme=p2pdash+ ;;
esac
ours=${players[0]} ref=${players[1]}
run() { # NAME: one run, prints bench-play's line
  case $1 in
    "$ours") set -- playbin "$scheme$url" ;;
    "$ref") set -- playbin3 "$url" ;;
    *) set -- playbin "$url" ;;
  esac
  bounded 120 "$bin" play --player "$1" --uri "$2" --timeout 100
}

step "warm-up (registry, page cache), not counted"
for p in "${players[@]}"; do run "$p" >/dev/null; done

step "$REPS repetitions x ${#players[@]} players, interleaved"
: >"$tmp/results"
for rep in $(seq "$REPS"); do
  for i in "${!players[@]}"; do
    p=${players[$(((i + rep - 1) % ${#players[@]}))]}
    line=$(run "$p")
    printf '%-10s rep %d  %s\n' "$p" "$rep" "$line"
    echo "$p $line" >>"$tmp/results"
  done
done

# Medians per player and field, then ratios against the *demux2 player.
median() { # PLAYER FIELD
  awk -v p="$1" -v f="$2" '$1 == p { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' \
    "$tmp/results" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
step "medians of $REPS runs"
ref_ttff=$(median "$ref" ttff_ms)
ref_cpu=$(median "$ref" cpu_ms)
printf '%-10s %-9s %9s %13s %8s %13s %7s %9s %8s\n' player via ttff_ms first_out_ms cpu_ms peak_rss_MiB frames ttff/ref cpu/ref
for p in "${players[@]}"; do
  case $p in "$ref") via=playbin3 ;; *) via=playbin ;; esac
  ttff=$(median "$p" ttff_ms)
  out=$(median "$p" first_out_ms)
  cpu=$(median "$p" cpu_ms)
  rss=$(median "$p" rss_kib)
  frames=$(median "$p" frames)
  awk -v p="$p" -v via="$via" -v t="$ttff" -v o="$out" -v c="$cpu" -v r="$rss" -v fr="$frames" \
    -v rt="$ref_ttff" -v rc="$ref_cpu" 'BEGIN { printf "%-10s %-9s %9.1f %13.1f %8.0f %13.1f %7d %8.2fx %7.2fx\n",
      p, via, t, o, c, r / 1024, fr, t / rt, c / rc }'
done
ttff=$(median "$ours" ttff_ms)
cpu=$(median "$ours" cpu_ms)
awk -v t="$ttff" -v c="$cpu" -v rt="$ref_ttff" -v rc="$ref_cpu" -v ref="$ref" 'BEGIN {
  printf "targets: time to first frame <= 1.10x %s: %.2fx %s; CPU <= 1.20x %s: %.2fx %s\n",
    ref, t / rt, (t / rt <= 1.1 ? "MET" : "NOT MET"), ref, c / rc, (c / rc <= 1.2 ? "MET" : "NOT MET") }'
