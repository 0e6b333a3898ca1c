#!/usr/bin/env bash
# Installs a .deb of the plugin (scripts/package-deb.sh) in a clean Debian 12 root, the way an
# operator would on a kiosk, and checks that GStreamer finds its elements there:
#
#   scripts/check-deb.sh PATH/gstreamer1.0-p2pmedia_VERSION_amd64.deb      (as root)
#
# The root is made with mmdebstrap --variant=apt (Essential packages + apt: no GStreamer, no
# compiler) from this machine's Debian mirror, then, inside it (chroot, with /proc, /dev and
# /sys mounted by mmdebstrap): `apt-get install ./the.deb` alone (apt resolves the package's
# declared Depends from the archive), then `ldd` of the installed plugin must find every library
# (a Depends missing fails here, not on a kiosk); then gstreamer1.0-tools, and
# `gst-inspect-1.0 p2phlssrc` and `p2pdashsrc` must load the plugin from
# /usr/lib/x86_64-linux-gnu/gstreamer-1.0. The root is deleted afterwards (KEEP=1 keeps it).
# About 1-2 minutes; every step bounded. Environment: MIRROR (default: first Debian URI in the
# apt sources), DEB_ROOT_DIR (default /var/tmp), KEEP=1.
set -euo pipefail

deb=${1:?usage: scripts/check-deb.sh PATH.deb}
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
[ -f "$deb" ] || { echo "check-deb.sh: no such file: $deb" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "check-deb.sh: run as root (mmdebstrap --mode=root, chroot)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "check-deb.sh: mmdebstrap missing (apt-get install mmdebstrap)" >&2; exit 1; }

if [ -z "${MIRROR:-}" ]; then
  MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -v '^\s*#' | grep -oE 'https?://[^ ]*/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi
SECURITY=${MIRROR%/debian*}/debian-security
root=$(mktemp -d "${DEB_ROOT_DIR:-/var/tmp}/p2pmedia-deb-root.XXXXXX")
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $root"; return; fi
  if findmnt -rn -o TARGET | grep -q "^$root/"; then
    echo "check-deb.sh: mounts still under $root; not deleting it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
rmdir "$root" # mmdebstrap wants to create it (or an empty directory)

name=$(basename "$deb")
t0=$(date +%s)
# The hooks run as root outside the root; "$1" is the root. Output of gst-inspect-1.0 goes to
# the log so a failure shows it.
timeout --kill-after=30 900 mmdebstrap --mode=root --variant=apt --format=directory \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends /tmp/$name" \
  --customize-hook='chroot "$1" dpkg -L gstreamer1.0-p2pmedia' \
  --customize-hook='so=/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstp2pmedia.so
      chroot "$1" ldd "$so" >"$1/tmp/ldd.txt" 2>&1 || { cat "$1/tmp/ldd.txt"; exit 1; }
      if grep -q "not found" "$1/tmp/ldd.txt"; then
        cat "$1/tmp/ldd.txt"; echo "the package does not depend on every library the plugin needs"; exit 1
      fi
      echo "libraries of the plugin, all brought by its Depends: $(wc -l <"$1/tmp/ldd.txt")"' \
  --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends gstreamer1.0-tools" \
  --customize-hook='for e in p2phlssrc p2pdashsrc; do
      chroot "$1" env GST_REGISTRY=/tmp/registry.bin gst-inspect-1.0 "$e" >"$1/tmp/inspect-$e.txt" 2>&1 ||
        { cat "$1/tmp/inspect-$e.txt"; echo "gst-inspect-1.0 $e failed in the clean root"; exit 1; }
      # (/lib is /usr/lib on Debian 12: merged /usr; GStreamer names it either way)
      grep -Eq "^\s+Filename\s+(/usr)?/lib/x86_64-linux-gnu/gstreamer-1.0/libgstp2pmedia.so$" "$1/tmp/inspect-$e.txt" ||
        { cat "$1/tmp/inspect-$e.txt"; echo "$e not loaded from the installed file"; exit 1; }
      grep -E "^\s+(Filename|Version)" "$1/tmp/inspect-$e.txt" | sed "s/^/$e: /"
    done' \
  bookworm "$root" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main"
echo "check-deb.sh: $name installed with its dependencies in a clean Debian 12 root; gst-inspect-1.0 found p2phlssrc and p2pdashsrc ($(($(date +%s) - t0)) s)"
