#!/usr/bin/env bash
# Prepares the patched registry crates that Cargo.toml's [patch.crates-io] points at
# (.patched/<crate>-<version>). Run before any cargo command on a fresh checkout; the test
# command, the demo, the benchmarks and the meson build run it themselves.
#
#   scripts/patch-crates.sh
#
# For each directory patches/<crate>-<version>/: takes that exact crate from cargo's download
# cache (or from crates.io), checks its SHA-256 against the one below (the checksum Cargo.lock
# had for it), unpacks it, applies patches/<crate>-<version>/*.patch in order and moves the
# result to .patched/<crate>-<version>. Idempotent: a stamp of the inputs skips work already
# done. patches/README.md says what each patch fixes and why.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A SHA256=(
  [rtc-0.21.1]=4e2ca201de5ccc83aa3c08d49a2f08d7ed0aeeb2052fb1ccc517a8b77a6927ce
  [webrtc-0.21.1]=b621e736302bef784948cc8d8099fd0a8fdb5757693c80a344ffbe38c49387d2
)

die() { printf 'patch-crates.sh: %s\n' "$*" >&2; exit 1; }
command -v patch >/dev/null || die "needs patch(1) (apt-get install patch)"

for dir in patches/*/; do
  pkg=$(basename "$dir")
  name=${pkg%-*} version=${pkg##*-}
  sum=${SHA256[$pkg]:-}
  [ -n "$sum" ] || die "no checksum for $pkg in $0"
  out=.patched/$pkg
  stamp="$sum $(cat "$dir"*.patch | sha256sum | cut -c1-64)"
  if [ -f "$out/.p2pmedia-stamp" ] && [ "$(cat "$out/.p2pmedia-stamp")" = "$stamp" ]; then
    continue
  fi

  mkdir -p .patched
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "$pkg.crate" -print -quit 2>/dev/null || true)
  if [ -z "$crate" ]; then
    command -v curl >/dev/null || die "needs curl to download $pkg (apt-get install curl)"
    crate=.patched/$pkg.crate
    curl -sSfL --retry 3 --max-time 120 -o "$crate" \
      "https://static.crates.io/crates/$name/$pkg.crate" || die "could not download $pkg"
  fi
  echo "$sum  $crate" | sha256sum -c --quiet - || die "$crate does not have the expected checksum"

  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  tar -xzf "$crate" -C "$out.tmp" --strip-components=1
  for p in "$dir"*.patch; do
    patch -d "$out.tmp" -p1 --forward --quiet <"$p" || die "$p does not apply to $pkg"
  done
  echo "$stamp" >"$out.tmp/.p2pmedia-stamp"
  rm -rf "$out" "$crate.tmp" && mv "$out.tmp" "$out"
  rm -f ".patched/$pkg.crate"
  echo "patch-crates.sh: $out ready ($(ls "$dir"*.patch | wc -l) patches)"
done
