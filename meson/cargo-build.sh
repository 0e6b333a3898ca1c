#!/bin/sh
# Used by meson.build: build the plugin's cdylib with cargo and copy it to meson's output.
#   cargo-build.sh CARGO MANIFEST TARGET_DIR release|debug OUTPUT
set -eu
cargo=$1 manifest=$2 target_dir=$3 profile=$4 output=$5
case $profile in
  release) set -- --release ;;
  debug) set -- ;;
  *) echo "cargo-build.sh: unknown profile $profile" >&2; exit 2 ;;
esac
# Cargo.toml patches two registry crates (patches/README.md); prepare them first.
"$(dirname "$manifest")/scripts/patch-crates.sh"
# P2PMEDIA_CARGO_TARGETS=--all-targets lets scripts/test.sh reuse its own build: a --lib build
# unifies dependency features without the dev-dependencies and would recompile them.
# shellcheck disable=SC2086
"$cargo" build --locked ${P2PMEDIA_CARGO_TARGETS:---lib} "$@" --manifest-path "$manifest" --target-dir "$target_dir"
cp "$target_dir/$profile/libgstp2pmedia.so" "$output"
