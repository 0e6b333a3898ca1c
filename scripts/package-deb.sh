#!/usr/bin/env bash
# Builds a Debian package of the plugin with dpkg-deb: gstreamer1.0-p2pmedia_<version>_amd64.deb,
# which installs libgstp2pmedia.so into /usr/lib/x86_64-linux-gnu/gstreamer-1.0 (Debian's
# GStreamer plugin directory, so every GStreamer application finds it).
#
#   scripts/package-deb.sh [--so PATH] [--out DIR]
#
#   --so PATH   package this libgstp2pmedia.so (default: `cargo build --release --locked --lib`
#               and take target/release/libgstp2pmedia.so)
#   --out DIR   where the .deb goes (default: target/debian)
#
# Version from Cargo.toml; Depends computed from the library's ELF dependencies with
# dpkg-shlibdeps (libc6, libgcc-s1, libglib2.0-0, libgstreamer1.0-0, ...); Recommends the
# GStreamer plugin sets that playback needs (playbin, demuxers, decoders). The library is
# stripped. Prints the path of the .deb on its last line.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$(pwd)
so=
out=$repo/target/debian
while [ $# -gt 0 ]; do
  case $1 in
    --so) so=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "package-deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps strip; do
  command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done

if [ -z "$so" ]; then
  timeout 3600 cargo build --release --locked --lib
  so=${CARGO_TARGET_DIR:-$repo/target}/release/libgstp2pmedia.so
fi
[ -f "$so" ] || { echo "package-deb.sh: no such file: $so" >&2; exit 1; }

package=gstreamer1.0-p2pmedia
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "package-deb.sh: no version in Cargo.toml" >&2; exit 1; }
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

work=$(mktemp -d "${TMPDIR:-/tmp}/p2pmedia-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
plugindir=usr/lib/$multiarch/gstreamer-1.0
install -d "$root/$plugindir" "$root/DEBIAN" "$root/usr/share/doc/$package"
install -m 0644 "$so" "$root/$plugindir/libgstp2pmedia.so"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/$plugindir/libgstp2pmedia.so"
cat >"$root/usr/share/doc/$package/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: gst-plugin-p2pmedia
Source: $(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)

Files: *
License: MPL-2.0
 On Debian systems the full text of the Mozilla Public License 2.0 is in
 /usr/share/common-licenses/MPL-2.0.
EOF

# dpkg-shlibdeps wants a debian/control naming the package, in its working directory.
mkdir -p "$work/src/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" >"$work/src/debian/control"
depends=$(cd "$work/src" && dpkg-shlibdeps -O -e"$root/$plugindir/libgstp2pmedia.so" 2>"$work/shlibdeps.err" |
  sed -n 's/^shlibs:Depends=//p') ||
  { cat "$work/shlibdeps.err" >&2; echo "package-deb.sh: dpkg-shlibdeps failed" >&2; exit 1; }
[ -n "$depends" ] || { cat "$work/shlibdeps.err" >&2; echo "package-deb.sh: no dependencies found" >&2; exit 1; }
# The plugin is built against GStreamer 1.22's API (gstreamer-rs feature v1_22), whatever
# the oldest symbol version it happens to link says.
depends=$(printf '%s' "$depends" | sed 's/libgstreamer1\.0-0 ([^)]*)/libgstreamer1.0-0 (>= 1.22.0)/')
size=$(du -k -s "$root/usr" | cut -f1)

cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: p2pmedia developers <p2pmedia@example.invalid>
Installed-Size: $size
Depends: $depends
Recommends: gstreamer1.0-plugins-base, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad
Suggests: gstreamer1.0-libav, gstreamer1.0-tools
Section: libs
Priority: optional
Homepage: $(sed -n 's/^repository *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
Description: GStreamer HLS/DASH sources that share segments with P2P Media Loader swarms
 The p2pmedia plugin (libgstp2pmedia.so) has two source elements: p2phlssrc plays
 HLS and p2pdashsrc plays MPEG-DASH over HTTP(S), like hlsdemux2/dashdemux2, and
 both trade segments over WebRTC data channels with browsers running P2P Media
 Loader (WebTorrent trackers), taking each segment from the origin about once per
 swarm. playbin and uridecodebin pick them for p2phls+http(s):// and
 p2pdash+http(s):// URIs.
EOF

mkdir -p "$out"
deb=$out/${package}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p' | grep -E '^ (Package|Version|Architecture|Depends|Section):'
echo "$deb"
