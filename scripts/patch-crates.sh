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
  [rtc-sctp-0.21.1]=2eb430b379d90e7984306036d1646454a26b300c9c3256009eb8f7e0615e90b9
  [webrtc-0.21.1]=b621e736302bef784948cc8d8099fd0a8fdb5757693c80a344ffbe38c49387d2
)

die() { printf 'patch-crates.sh: %s\n' "$*" >&2; exit 1; }
command -v patch >/dev/null || die "needs patch(1) (apt-get install patch)"

# One run at a time (two scripts may start together); the lock lives as long as this shell.
mkdir -p .patched
exec 9>.patched/.lock
flock -w 300 9 || die "another patch-crates.sh held .patched/.lock for 5 minutes"

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

  work=$(mktemp -d .patched/.work.XXXXXX)
  crate=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "$pkg.crate" -print -quit 2>/dev/null || true)
  # cargo's cached copy if it is the right one, else crates.io's.
  if [ -z "$crate" ] || ! echo "$sum  $crate" | sha256sum -c --quiet - 2>/dev/null; then
    command -v curl >/dev/null || die "needs curl to download $pkg (apt-get install curl)"
    crate=$work/$pkg.crate
    curl -sSfL --retry 3 --max-time 120 -o "$crate" \
      "https://static.crates.io/crates/$name/$pkg.crate" || die "could not download $pkg"
    echo "$sum  $crate" | sha256sum -c --quiet - || die "$pkg from crates.io has another checksum"
  fi

  mkdir "$work/src"
  tar -xzf "$crate" -C "$work/src" --strip-components=1
  for p in "$dir"*.patch; do
    patch -d "$work/src" -p1 --forward --quiet <"$p" || die "$p does not apply to $pkg"
  done
  echo "$stamp" >"$work/src/.p2pmedia-stamp"
  # Only a complete, patched copy ever takes the place cargo reads.
  rm -rf "$out" && mv "$work/src" "$out" && rm -rf "$work"
  echo "patch-crates.sh: $out ready ($(ls "$dir"*.patch | wc -l) patches)"
done
