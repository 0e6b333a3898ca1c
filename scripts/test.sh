#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what it needs on a fresh Debian 12
# machine (idempotently), builds once, then runs fmt, clippy, all tests and the meson install check.
#
#   scripts/test.sh
#
# Environment:
#   CARGO_TARGET_DIR   shared cargo target directory (default: ./target)
#   SKIP_APT=1         never call apt-get (fail later if something is missing)
#
# Every step is bounded with `timeout`; the first failure stops the run with a non-zero status.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)

# A fresh machine of this kind has rustup's toolchain in ~/.cargo/bin, not always on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
export PATH

started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# Run a command under a time limit; name the step when it fails.
bounded() {
  local secs=$1; shift
  local rc=0
  timeout --kill-after=30 "$secs" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "timed out after ${secs}s: $*"; fi
  [ "$rc" -eq 0 ] || die "exit status $rc: $*"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-test.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# 1. System packages (Debian 12). See /work/shared/reference/build-notes.md for why each is here;
#    never add libgstreamer-plugins-bad1.0-dev (pulls in ~566 MiB of OpenCV/VTK/MPI).
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(
  # build: the plugin and its -sys crates (ring builds C code)
  pkg-config gcc libc6-dev ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # run: elements the tests and demo use (hlsdemux/hlsdemux2, tsdemux, qtdemux, avdec_*)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  # test fixtures (tests/common/fixtures.rs) and the demo stream
  ffmpeg
  # meson install check (meson.build)
  meson ninja-build
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  step "apt: all ${#APT_PACKAGES[@]} packages present, skipping"
elif [ "${SKIP_APT:-0}" = 1 ]; then
  die "missing packages and SKIP_APT=1: ${missing[*]}"
else
  step "apt: installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  bounded 600 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -q update
  bounded 1200 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -q install -y \
    --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------------------------------------
# 2. npm packages (pinned): SPOT FOR LATER ISSUES.
#    Add each directory that holds a committed package.json + package-lock.json (e.g. the
#    bittorrent-tracker and playwright-core harness) to NPM_DIRS. They are installed with
#    `npm ci --ignore-scripts` (bittorrent-tracker only installs that way; never download
#    browsers: Chromium comes from Debian's `chromium` package, add it to APT_PACKAGES).
# ---------------------------------------------------------------------------------------------
NPM_DIRS=()
for dir in "${NPM_DIRS[@]}"; do
  [ -f "$dir/package-lock.json" ] || die "$dir/package-lock.json missing"
  stamp="$dir/node_modules/.p2pmedia-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    step "npm: $dir up to date"
  else
    step "npm: npm ci in $dir"
    bounded 600 npm ci --ignore-scripts --no-audit --no-fund --prefix "$dir"
    echo "$want" >"$stamp"
  fi
done

# ---------------------------------------------------------------------------------------------
# 3. Build once, lint, test.
# ---------------------------------------------------------------------------------------------
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# No stale registry cache from earlier runs or other checkouts.
export GST_REGISTRY="$tmp/gst-registry.bin"
step "toolchain: $(cargo --version), $(rustc --version); GStreamer $(pkg-config --modversion gstreamer-1.0)"

step "cargo fmt --check"
bounded 120 cargo fmt --all -- --check

step "cargo build --locked --all-targets (debug)"
bounded 1800 cargo build --locked --all-targets

step "cargo clippy --all-targets --locked -- -D warnings"
bounded 1200 cargo clippy --all-targets --locked -- -D warnings

step "cargo test --locked"
bounded 1800 cargo test --locked

# ---------------------------------------------------------------------------------------------
# 4. meson install check: meson drives cargo (reusing the debug build above, so nothing is
#    compiled again), installs into a temporary prefix, and GStreamer finds the installed .so.
# ---------------------------------------------------------------------------------------------
step "meson setup/compile/install into a temporary prefix"
bounded 120 meson setup "$tmp/meson-build" --prefix "$tmp/prefix" \
  -Dcargo_profile=debug -Dcargo_target_dir="$CARGO_TARGET_DIR"
bounded 600 ninja -C "$tmp/meson-build"
bounded 120 ninja -C "$tmp/meson-build" install >/dev/null
so=$(find "$tmp/prefix" -name libgstp2pmedia.so -print -quit)
[ -n "$so" ] || die "ninja install put no libgstp2pmedia.so under $tmp/prefix"
echo "installed: ${so#"$tmp"/}"

step "gst-inspect-1.0 p2phlssrc from the installed plugin"
export GST_PLUGIN_PATH
GST_PLUGIN_PATH=$(dirname "$so")
rc=0
timeout 60 gst-inspect-1.0 p2phlssrc >"$tmp/inspect.txt" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/inspect.txt"; die "gst-inspect-1.0 p2phlssrc: exit status $rc"; }
grep -q "Filename.*$so" "$tmp/inspect.txt" ||
  { grep -E 'Filename|Name' "$tmp/inspect.txt"; die "p2phlssrc was not loaded from $so"; }
grep -E '^\s+(Filename|Version|Long-name)' "$tmp/inspect.txt" || true

step "all checks passed in $(($(date +%s) - started)) s"
