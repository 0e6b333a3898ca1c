#!/usr/bin/env bash
# Regenerates docs/plugins/gst_plugins_cache.json (hotdoc's plugin description) from the BUILT
# plugin, or checks that the committed file matches it.
#
#   scripts/plugin-cache.sh          # rewrite docs/plugins/gst_plugins_cache.json
#   scripts/plugin-cache.sh --check  # exit 1 and print the diff when it differs (CI)
#
# Builds the plugin and `examples/plugin_cache.rs` (debug, --locked; a no-op after
# `cargo build --all-targets`), then runs the example on target/debug/libgstp2pmedia.so.
# Environment: CARGO_TARGET_DIR (default ./target).
set -euo pipefail

cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = "--check" ] && check=1
target=${CARGO_TARGET_DIR:-$PWD/target}
committed=docs/plugins/gst_plugins_cache.json

timeout 1500 cargo build --locked --lib --example plugin_cache
new=$(mktemp "${TMPDIR:-/tmp}/gst_plugins_cache.XXXXXX.json")
trap 'rm -f "$new"' EXIT
timeout 60 "$target/debug/examples/plugin_cache" "$target/debug/libgstp2pmedia.so" >"$new"

if [ "$check" = 1 ]; then
  if ! diff -u "$committed" "$new"; then
    echo "error: $committed differs from the built plugin (diff above);" \
      "run scripts/plugin-cache.sh and commit the result" >&2
    exit 1
  fi
  echo "$committed matches the built plugin"
else
  mkdir -p "$(dirname "$committed")"
  cp "$new" "$committed"
  echo "wrote $committed"
fi
