#!/bin/sh
# Run a command inside a private network namespace whose only interface is loopback, and a
# private PID namespace: when the command exits (or the outer `timeout` kills it), the kernel
# kills every process it left behind (browsers, external peers). Needs root (as in CI).
#   tests/interop/netns.sh [-t SECONDS] CMD [ARGS...]     (default hard limit 600 s)
# Example: tests/interop/netns.sh node tests/interop/run.mjs --fixtures F --out O --browsers 2
set -eu
LIMIT=600
if [ "${1:-}" = "-t" ]; then LIMIT=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [-t SECONDS] CMD [ARGS...]" >&2; exit 2; }
# sh is PID 1 of the new PID namespace; it forwards nothing, so it runs the command as a child
# (a PID 1 node would ignore SIGINT/SIGTERM without handlers) and exits with its status.
exec timeout --kill-after=10 "$LIMIT" unshare --net --pid --fork --kill-child=TERM --mount-proc -- \
  sh -c 'ip link set lo up && "$@"' sh "$@"
