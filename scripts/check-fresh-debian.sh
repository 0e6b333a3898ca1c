#!/usr/bin/env bash
# Runs the README's two commands (scripts/demo.sh, then the test command through .ci/run, as CI
# does) in a clean Debian 12 root, to prove that they install everything they need on a fresh
# machine.
#
#   scripts/check-fresh-debian.sh [REV]        (as root; REV defaults to HEAD)
#
# What "fresh" means here: a fresh machine of this kind is Debian 12 plus what the kind preinstalls.
#   * Debian: `debootstrap --variant=minbase bookworm`, from the mirror in this machine's apt sources
#     (the minbase tarball is cached in $FRESH_DIR and unpacked anew for every run; --rebootstrap
#     makes a new one). The root gets this machine's Debian apt sources (bookworm, -updates,
#     -security) so it sees the same package versions as a real machine.
#   * Rust: the kind ships rustup's toolchain in /root/.rustup and /root/.cargo/bin. Both are
#     bind-mounted read-only; CARGO_HOME is otherwise empty, so every crate is downloaded again.
#   * Node.js 20 + npm 11 (preinstalled on the kind, used by later issues): /usr/bin/node and
#     /usr/lib/node_modules are bind-mounted read-only when this machine has them.
#   * The workplace's egress CA certificates (/usr/local/share/ca-certificates), the CA variables
#     of its environment (NODE_EXTRA_CA_CERTS, SSL_CERT_FILE, ...) and /root/.npmrc.
#   * Nothing else: no gcc, pkg-config, GStreamer, ffmpeg, meson, git; scripts/test.sh installs them.
# The repository is not bind-mounted: REV is cloned into the root (a clean checkout, as in CI), so
# uncommitted changes are not tested and no build output lands in the working tree.
#
# Mounts live in a private mount namespace (unshare --mount), so they vanish with it even if this
# script is killed; the root is deleted afterwards unless KEEP=1.
#
# Environment: FRESH_DIR (default /var/tmp/p2pmedia-fresh-debian), FRESH_TIMEOUT (seconds for the
# test command, default 1800), MIRROR (default: first Debian URI in /etc/apt/sources.list*), KEEP=1.
set -euo pipefail

FRESH_DIR=${FRESH_DIR:-/var/tmp/p2pmedia-fresh-debian}
FRESH_TIMEOUT=${FRESH_TIMEOUT:-1800}
PATH_IN_ROOT=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[fresh-debian %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '[fresh-debian] FAILED: %s\n' "$*" >&2; exit 1; }

bind_ro() { # SRC DST: read-only bind mount (DST is created as a file or a directory like SRC)
  if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")" && : >"$2"; fi
  mount --bind "$1" "$2"
  mount -o remount,bind,ro "$2"
}

# ---- phase 2: inside a private mount namespace (re-executed by phase 1) -------------------------
if [ "${1:-}" = --inside ]; then
  root=$2
  # Make the root a mount point, as / is on a real machine (unshare --mount in the tests
  # needs it: "cannot change root filesystem propagation" otherwise).
  mount --bind "$root" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --make-rslave "$root/dev"
  mount -t sysfs -o ro sysfs "$root/sys"
  bind_ro /root/.rustup "$root/root/.rustup"
  bind_ro /root/.cargo/bin "$root/root/.cargo/bin"
  if [ -x /usr/bin/node ] && [ -d /usr/lib/node_modules/npm ]; then
    bind_ro /usr/bin/node "$root/usr/bin/node"
    bind_ro /usr/lib/node_modules "$root/usr/lib/node_modules"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  fi
  # The workplace's CA settings, which every machine here has in its environment.
  ca_env=()
  for v in NODE_EXTRA_CA_CERTS SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE GIT_SSL_CAINFO; do
    if [ -n "${!v:-}" ]; then ca_env+=("$v=${!v}"); fi
  done
  rc=0
  # The README's two commands, as written, in order: the demo, then the tests (via .ci/run).
  chroot "$root" /usr/bin/env -i HOME=/root PATH="$PATH_IN_ROOT" LANG=C.UTF-8 TERM=dumb "${ca_env[@]}" \
    /bin/bash -c 'set -e; cd /src/p2pmedia; t0=$(date +%s)
      scripts/demo.sh; t1=$(date +%s)
      echo "[fresh-debian] scripts/demo.sh passed in $((t1 - t0)) s"
      .ci/run; t2=$(date +%s)
      echo "[fresh-debian] .ci/run passed in $((t2 - t1)) s"' || rc=$?
  # Stop anything the test command left behind in the root, by PID.
  for p in /proc/[0-9]*; do
    if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
      log "stopping leftover process ${p#/proc/}: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
      kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
  done
  exit "$rc"
fi

# ---- phase 1 ------------------------------------------------------------------------------------
rebootstrap=0
rev=HEAD
for arg in "$@"; do
  case $arg in
    --rebootstrap) rebootstrap=1 ;;
    -*) die "unknown option $arg" ;;
    *) rev=$arg ;;
  esac
done
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, mount, chroot)"
repo=$(cd "$(dirname "$0")/.." && pwd)
sha=$(git -C "$repo" rev-parse --verify "$rev^{commit}")
start=$(date +%s)

if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  timeout 600 apt-get -o DPkg::Lock::Timeout=600 -q update
  timeout 600 apt-get -o DPkg::Lock::Timeout=600 -q install -y --no-install-recommends debootstrap
fi

if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -v '^\s*#' | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

mkdir -p "$FRESH_DIR"
tarball=$FRESH_DIR/bookworm-minbase.tar.gz
if [ ! -s "$tarball" ] || [ "$rebootstrap" = 1 ]; then
  boot=$FRESH_DIR/debootstrap.tmp
  rm -rf --one-file-system "$boot"
  log "debootstrap --variant=minbase bookworm from $MIRROR"
  timeout 900 debootstrap --variant=minbase bookworm "$boot" "$MIRROR" >"$FRESH_DIR/debootstrap.log" 2>&1 ||
    { tail -n 20 "$FRESH_DIR/debootstrap.log"; die "debootstrap failed (log: $FRESH_DIR/debootstrap.log)"; }
  tar -C "$boot" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf --one-file-system "$boot"
  log "cached minbase root in $tarball ($(du -h "$tarball" | cut -f1))"
fi

root=$FRESH_DIR/root.$$
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then log "kept $root"; return; fi
  if [ -d "$root" ]; then
    # Mounts were private to the namespace; refuse to delete if any is visible anyway.
    if findmnt -rn -o TARGET | grep -q "^$root/"; then
      log "mounts still under $root; not deleting it"
    else
      rm -rf --one-file-system "$root"
    fi
  fi
}
trap cleanup EXIT
mkdir -p "$root"
tar -C "$root" -xzf "$tarball"

# This machine's Debian sources (not third-party ones, whose keys the root lacks) and DNS.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -f "$root/etc/apt/sources.list"
fi
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# The workplace's network settings every machine here has: its egress CA (picked up when
# scripts/test.sh installs ca-certificates) and npm's user config.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /root/.npmrc "$root/root/.npmrc" 2>/dev/null || true
mkdir -p "$root/root/.cargo"
cp /root/.cargo/env "$root/root/.cargo/env" 2>/dev/null || true

log "clean checkout of $(git -C "$repo" log -1 --format='%h %s' "$sha")"
git clone --quiet --no-checkout "$repo" "$root/src/p2pmedia"
git -C "$root/src/p2pmedia" checkout --quiet --detach "$sha"

log "running scripts/demo.sh and .ci/run in the fresh root (limit ${FRESH_TIMEOUT}s); log: $FRESH_DIR/run.log"
t0=$(date +%s)
set +e
timeout --kill-after=30 "$FRESH_TIMEOUT" unshare --mount --propagation private "$0" --inside "$root" \
  2>&1 | tee "$FRESH_DIR/run.log"
rc=${PIPESTATUS[0]}
set -e
t1=$(date +%s)
if [ "$rc" -eq 0 ]; then
  log "PASSED: scripts/demo.sh and .ci/run succeeded on a fresh Debian 12 root in $((t1 - t0)) s (whole check $((t1 - start)) s)"
else
  log "FAILED: exit status $rc after $((t1 - t0)) s (log: $FRESH_DIR/run.log)"
fi
exit "$rc"
