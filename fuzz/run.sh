#!/usr/bin/env bash
# Builds one fuzz target and runs it for a bounded time, then prints libFuzzer's counts.
#   fuzz/run.sh TARGET [SECONDS=60] [extra libFuzzer args...]
# Targets: wire_decode hls_parse dash_parse sidx_parse tracker_proto sdp_remote.
# Niced, one job, one worker: the machine is shared. The stable toolchain runs cargo-fuzz via
# RUSTC_BOOTSTRAP=1; cargo-fuzz itself is installed once (pinned) and reused after that.
# The corpus (fuzz/corpus/TARGET, git-ignored) is seeded by fuzz/seed.sh on first use; crashes
# land in fuzz/artifacts/TARGET (git-ignored); reproducers worth keeping go to
# fuzz/regressions/TARGET (committed).
set -euo pipefail
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [libFuzzer args...]}
secs=${2:-60}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    nice -n 19 cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked -j1
fi
export RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS=1
# The same flags for build and run, so `run` finds nothing to rebuild. No sanitizer: the code
# is safe Rust, and ASan's leak checker trips on deliberate process-lifetime statics.
flags=(-O -a -s none)
nice -n 19 cargo fuzz build "${flags[@]}" "$target"

corpus=corpus/$target
if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    "$here/seed.sh" "$target"
fi
mkdir -p "artifacts/$target"
# Committed crash reproducers (fuzz/regressions/TARGET) are replayed first as a second corpus
# directory; libFuzzer only adds new inputs to the first one.
extra=()
[ -d "regressions/$target" ] && extra=("regressions/$target")
log=$(mktemp "${TMPDIR:-/tmp}/fuzz-$target.XXXXXX.log")
set +e
# KEEP_GOING=1: libFuzzer's fork mode with one child at a time, which records a crash in
# artifacts/ and goes on fuzzing instead of stopping at the first one.
# Default: one plain libFuzzer process (-jobs=1 -workers=1 would mean the same single job, but
# run as a child whose output goes to ./fuzz-0.log).
mode=()
[ "${KEEP_GOING:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
nice -n 19 cargo fuzz run "${flags[@]}" "$target" "$corpus" ${extra[@]+"${extra[@]}"} -- \
    -max_total_time="$secs" ${mode[@]+"${mode[@]}"} -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=10 "$@" >"$log" 2>&1
rc=$?
set -e
# libFuzzer's own summary: the last status line (#N DONE/pulse cov: ft: corp: exec/s: rss:)
# and the final stats block.
grep -E '^#[0-9]+' "$log" | tail -1
grep -E 'CRASH|crash-|oom-|timeout-' "$log" | grep -E 'artifact|Test unit written' | head -5 || true
grep -E '^stat::' "$log" || true
grep -E 'memory: new peak' "$log" | tail -1 || true
if [ $rc -ne 0 ]; then
    grep -E -A15 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -40
    echo "libFuzzer exited with $rc; full log: $log; inputs in fuzz/artifacts/$target"
fi
exit $rc
