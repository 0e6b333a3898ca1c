#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what it needs on a fresh Debian 12
# machine (idempotently), then checks fmt, builds once (debug), runs clippy, the meson install check
# (which reuses that build), the .deb in a clean root, cargo cinstall into a DESTDIR and all
# tests.
#
#   scripts/test.sh
#
# Environment:
#   CARGO_TARGET_DIR   shared cargo target directory (default: ./target)
#   SKIP_APT=1         never call apt-get (fail later if something is missing)
#   TIME_BUDGET        seconds for the whole run (default 4800; CI allows 90 minutes)
#   CINSTALL=0         skip the cargo cinstall check (saves ~15-25 minutes on a fresh machine)
#
# Every step is bounded with `timeout`; the first failure stops the run with a non-zero status.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
# Under CI's 90 minutes with room to report: a fresh machine needs about 45 (cargo-c and
# aquatic_ws builds included).
export TIME_BUDGET=${TIME_BUDGET:-4800}
# shellcheck source=scripts/common.sh
. scripts/common.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1. System packages, 2. pinned npm packages (none yet): see scripts/common.sh.
install_system_packages
prepare_patched_crates
install_npm_packages
# The Rust WebTorrent tracker the element swarm tests also run through (pinned, built once).
install_aquatic_ws

# ---------------------------------------------------------------------------------------------
# 3. Build once (debug), lint.
# ---------------------------------------------------------------------------------------------
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# No stale registry cache from earlier runs or other checkouts.
export GST_REGISTRY="$tmp/gst-registry.bin"
step "toolchain: $(cargo --version), $(rustc --version); GStreamer $(pkg-config --modversion gstreamer-1.0)"

step "cargo fmt --check"
# Our package only: `--all` would also take the patched registry crates in .patched/.
bounded 120 cargo fmt -- --check

step "cargo build --locked --all-targets (debug)"
bounded 1500 cargo build --locked --all-targets

step "cargo clippy --all-targets --locked -- -D warnings"
bounded 900 cargo clippy --all-targets --locked -- -D warnings

# The plugin description (hotdoc's gst_plugins_cache.json) regenerated from the built plugin
# must equal the committed one: the docs never drift from the code.
step "scripts/plugin-cache.sh --check (docs/plugins/gst_plugins_cache.json)"
bounded 300 scripts/plugin-cache.sh --check

# ---------------------------------------------------------------------------------------------
# 4. meson install check: meson drives cargo (reusing the debug build above, so nothing is
#    compiled again), installs into a temporary prefix, and GStreamer finds the installed .so.
# ---------------------------------------------------------------------------------------------
step "meson setup/compile/install into a temporary prefix"
bounded 120 meson setup "$tmp/meson-build" --prefix "$tmp/prefix" \
  -Dcargo_profile=debug -Dcargo_target_dir="$CARGO_TARGET_DIR"
bounded 600 env P2PMEDIA_CARGO_TARGETS=--all-targets ninja -C "$tmp/meson-build"
bounded 600 env P2PMEDIA_CARGO_TARGETS=--all-targets ninja -C "$tmp/meson-build" install >/dev/null
so=$(find "$tmp/prefix" -name libgstp2pmedia.so -print -quit)
[ -n "$so" ] || die "ninja install put no libgstp2pmedia.so under $tmp/prefix"
echo "installed: ${so#"$tmp"/}"

# inspect_installed SO LABEL: gst-inspect-1.0 must load both elements from exactly that file.
inspect_installed() {
  local file=$1 label=$2 element rc
  for element in p2phlssrc p2pdashsrc; do
    step "gst-inspect-1.0 $element from $label"
    rc=0
    GST_PLUGIN_PATH=$(dirname "$file") GST_REGISTRY="$tmp/inspect-registry-${label// /-}.bin" \
      timeout 60 gst-inspect-1.0 "$element" >"$tmp/inspect.txt" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$tmp/inspect.txt"; die "gst-inspect-1.0 $element: exit status $rc"; }
    grep -q "Filename.*$file" "$tmp/inspect.txt" ||
      { grep -E 'Filename|Name' "$tmp/inspect.txt"; die "$element was not loaded from $file"; }
  done
}
inspect_installed "$so" "the installed plugin"
grep -E '^\s+(Filename|Version|Long-name)' "$tmp/inspect.txt" || true

# ---------------------------------------------------------------------------------------------
# 4b. The .deb (scripts/package-deb.sh, from the meson-installed .so above: no other build) is
#     installed in a clean Debian 12 root (scripts/check-deb.sh, mmdebstrap) where
#     gst-inspect-1.0 must find both elements. Then `cargo cinstall --prefix=/usr
#     --libdir=lib/x86_64-linux-gnu` into a DESTDIR, checked the same way. On a fresh machine
#     that costs the pinned cargo-c's build (once, cached) and cargo-c's own build of the
#     dependencies (its target-triple directory); CINSTALL=0 skips it.
# ---------------------------------------------------------------------------------------------
if [ "${CINSTALL:-1}" = 1 ]; then
  install_cargo_c
  step "cargo cinstall --prefix=/usr --libdir=lib/x86_64-linux-gnu (DESTDIR=<tmp>/cinstall)"
  bounded 1500 cargo cinstall --locked --debug --library-type cdylib --prefix=/usr \
    --libdir=lib/x86_64-linux-gnu --destdir "$tmp/cinstall"
  cso=$tmp/cinstall/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstp2pmedia.so
  [ -f "$cso" ] || { find "$tmp/cinstall" -type f; die "cargo cinstall put no $cso"; }
  inspect_installed "$cso" "the cargo-c install"
fi

step "scripts/package-deb.sh (the meson-installed .so), then install it in a clean Debian 12 root"
bounded 300 scripts/package-deb.sh --so "$so" --out "$tmp/deb" >"$tmp/deb.txt"
cat "$tmp/deb.txt"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
bounded 900 "${as_root[@]}" scripts/check-deb.sh "$(tail -n 1 "$tmp/deb.txt")"

# ---------------------------------------------------------------------------------------------
# 5. All tests (unit, integration, doc), last: the longest step. --no-fail-fast runs every test
#    binary even when one fails, so a failure report is complete.
# ---------------------------------------------------------------------------------------------
step "cargo test --locked --no-fail-fast"
bounded 1500 cargo test --locked --no-fail-fast

step "all checks passed in $(($(date +%s) - _started)) s"
