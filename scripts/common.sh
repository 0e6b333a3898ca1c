# Shared by scripts/test.sh, scripts/demo.sh and bench/startup.sh (sourced, not run).
# Installs what the project needs on a fresh Debian 12 machine, idempotently, and runs commands
# under time limits. Environment: SKIP_APT=1 never calls apt-get; TIME_BUDGET (seconds, default
# 3600) caps the whole script: no step runs past it, whatever its own limit.

# A fresh machine of this kind has rustup's toolchain in ~/.cargo/bin, not always on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
export PATH

_started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(($(date +%s) - _started))" "$*"; }
die() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

# bounded SECS CMD...: run CMD under a time limit and stop the script with a message naming it
# when it fails or times out. CMD runs in the background so that an interrupt of this script
# (Ctrl-C, CI cancel) reaches the trap below, which stops it, and all it started, by PID.
_child=
_stop_child() {
  if [ -n "$_child" ]; then kill -TERM "$_child" 2>/dev/null || true; wait "$_child" 2>/dev/null || true; fi
}
trap '_stop_child; exit 130' INT TERM HUP
_deadline=$((_started + ${TIME_BUDGET:-3600}))
bounded() {
  local secs=$1 rc=0 left
  shift
  left=$((_deadline - $(date +%s)))
  [ "$left" -gt 0 ] || die "time budget (TIME_BUDGET=${TIME_BUDGET:-3600}s) used up before: $*"
  [ "$secs" -le "$left" ] || secs=$left
  # timeout signals its whole process group (cargo, rustc, test binaries...) when time is up.
  timeout --kill-after=30 "$secs" "$@" &
  _child=$!
  wait "$_child" || rc=$?
  _child=
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then die "timed out after ${secs}s: $*"; fi
  [ "$rc" -eq 0 ] || die "exit status $rc: $*"
}

# ---------------------------------------------------------------------------------------------
# System packages (Debian 12). See /work/shared/reference/build-notes.md for why each is here;
# never add libgstreamer-plugins-bad1.0-dev (pulls in ~566 MiB of OpenCV/VTK/MPI).
# ---------------------------------------------------------------------------------------------
APT_PACKAGES=(
  # build: the plugin and its -sys crates (ring builds C code)
  pkg-config gcc libc6-dev ca-certificates
  # scripts/patch-crates.sh: fetch and patch the registry crates of patches/
  curl patch
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  # run: elements the tests, demo and benchmark use (playbin, hlsdemux/hlsdemux2, tsdemux,
  # qtdemux, souphttpsrc, avdec_*)
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-libav
  # test fixtures (tests/common/fixtures.rs), the demo and benchmark streams
  ffmpeg
  # meson install check (meson.build)
  meson ninja-build
  # examples/player.py (tests/examples.rs): PyGObject and GStreamer's introspection data
  python3-gi gir1.2-gstreamer-1.0
  # cargo-c's build (openssl-sys, curl-sys), the .deb (dpkg-shlibdeps) and its clean-root check
  libssl-dev libcurl4-openssl-dev dpkg-dev mmdebstrap
  # interop suite (tests/interop): real P2P Media Loader peers in Debian's Chromium, inside a
  # private network namespace (unshare from util-linux, ip from iproute2)
  chromium fonts-dejavu-core iproute2 util-linux
)

install_system_packages() { install_packages "${APT_PACKAGES[@]}"; }

# The patched registry crates Cargo.toml's [patch.crates-io] points at (patches/README.md):
# needed before any cargo command.
prepare_patched_crates() {
  step "scripts/patch-crates.sh"
  bounded 300 "$(dirname "${BASH_SOURCE[0]}")/patch-crates.sh"
}

install_packages() { # PACKAGE...: apt-get install those not installed yet
  local p status missing=()
  for p in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    step "apt: all $# packages present, skipping"
    return
  fi
  [ "${SKIP_APT:-0}" != 1 ] || die "missing packages and SKIP_APT=1: ${missing[*]}"
  step "apt: installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: install ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  bounded 600 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -q update
  bounded 1200 "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 -q install -y \
    --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------------------------
# npm packages, pinned by committed package-lock.json files. ADD NEW ONES HERE: each directory
# (relative to the repository root) holding a package.json + package-lock.json, e.g. the
# playwright-core browser harness of a later issue. Installed with `npm ci --ignore-scripts`
# (bittorrent-tracker only installs that way), again only when the lock file changed.
# Never let a tool download a browser: Chromium is Debian's `chromium` (add it to APT_PACKAGES).
# ---------------------------------------------------------------------------------------------
NPM_DIRS=(
  tests/tracker # bittorrent-tracker 11.2.3 server for tests/tracker.rs and tests/p2p.rs
  tests/interop # hls.js 1.7.4, p2p-media-loader 2.3.1 + 2.2.2, playwright-core, bittorrent-tracker
)

install_npm_packages() {
  local dir stamp want
  # Machines of this kind come with Node.js 20 and npm 11; elsewhere take Debian's.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    install_packages nodejs npm
  fi
  # Node.js trusts only its bundled CAs; let it use the system store too (a local CA installed
  # with ca-certificates, such as an egress proxy's), unless the environment already says.
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  fi
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
}

# ---------------------------------------------------------------------------------------------
# cargo-c (`cargo cinstall`, scripts/test.sh's cargo-c install check), pinned. Its prebuilt
# release binaries are on GitHub, which these machines cannot reach (only package registries),
# so it is built from crates.io once with `cargo install --locked` into a cache outside the
# repository and reused while the stamp says the pinned version (0.10.24: its rust-version is
# 1.95, the machines' toolchain). `--debug`: cargo-c only drives cargo, so an unoptimised build
# serves as well and builds in about half the time. CARGO_C_ROOT overrides the cache directory.
# ---------------------------------------------------------------------------------------------
# clear_tool_root DIR: remove an outdated or half-done install of ours (and its build dir)
# before installing again; a non-empty DIR without our stamp is someone else's (CARGO_C_ROOT
# and AQUATIC_ROOT can be pointed anywhere): refuse rather than delete it.
clear_tool_root() {
  local dir=$1
  if [ -d "$dir" ] && [ ! -f "$dir/.p2pmedia-version" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] &&
    [ ! -d "$dir.build" ]; then
    die "$dir is not empty and was not installed by this script: remove it or choose another directory"
  fi
  rm -rf "$dir" "$dir.build"
}

CARGO_C_VERSION=0.10.24+cargo-0.98.0
CARGO_C_ROOT=${CARGO_C_ROOT:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/p2pmedia/cargo-c-$CARGO_C_VERSION}

install_cargo_c() {
  install_cached_crate cargo-c "$CARGO_C_VERSION" "$CARGO_C_ROOT" cargo-cinstall --debug
  PATH="$CARGO_C_ROOT/bin:$PATH"
}

# install_cached_crate CRATE VERSION ROOT BIN [CARGO INSTALL ARGS...]: `cargo install --locked`
# the pinned VERSION into ROOT once; later calls skip while ROOT/bin/BIN exists and the stamp
# (written only after a complete install) says VERSION.
install_cached_crate() {
  local crate=$1 version=$2 root=$3 binary=$4
  shift 4
  if [ -x "$root/bin/$binary" ] && [ "$(cat "$root/.p2pmedia-version" 2>/dev/null)" = "$version" ]; then
    step "$crate $version present in $root, skipping"
  else
    step "cargo install --locked $* $crate $version (once; cached in $root)"
    clear_tool_root "$root"
    bounded 1800 env -u CARGO_TARGET_DIR cargo install --locked --quiet "$@" --root "$root" \
      --target-dir "$root.build" --version "=$version" "$crate"
    rm -rf "$root.build"
    echo "$version" >"$root/.p2pmedia-version"
  fi
}

# ---------------------------------------------------------------------------------------------
# aquatic_ws, the Rust WebTorrent tracker (tests/common/aquatic.rs: element swarms and a browser
# run through it), pinned. Built from crates.io once with `cargo install --locked
# --no-default-features` (no io_uring, no Prometheus; about 3 minutes on 2 cores) into a cache
# outside the repository, reused while the stamp says the pinned version. AQUATIC_ROOT overrides
# the cache directory; tests find the binary through AQUATIC_WS.
# ---------------------------------------------------------------------------------------------
AQUATIC_VERSION=0.9.0
AQUATIC_ROOT=${AQUATIC_ROOT:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/p2pmedia/aquatic_ws-$AQUATIC_VERSION}

install_aquatic_ws() {
  install_cached_crate aquatic_ws "$AQUATIC_VERSION" "$AQUATIC_ROOT" aquatic_ws --no-default-features
  export AQUATIC_WS="$AQUATIC_ROOT/bin/aquatic_ws"
}

# ---------------------------------------------------------------------------------------------
# The benchmarks that drive `bench-play` (bench/swarm.sh, upload.sh, soak.sh): install what they
# need, build the release example once and set `bin` to it; a temporary GStreamer registry
# under `$1` (a directory the caller removes) keeps a stale registry cache out of the figures.
# ---------------------------------------------------------------------------------------------
build_bench_play() {
  install_system_packages
  prepare_patched_crates
  install_npm_packages
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  step "cargo build --locked --release --example bench-play"
  bounded 1800 cargo build --locked --release --example bench-play
  bin=$CARGO_TARGET_DIR/release/examples/bench-play
  export GST_REGISTRY="$1/registry.bin"
}
