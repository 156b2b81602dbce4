#!/usr/bin/env bash
# `make bench` / `make soak`: wspush side by side with nginx + Nchan on loopback.
#
#   scripts/bench.sh [suite|soak|run] [wspush-bench flags...]
#
# Installs nginx, the Nchan module and redis-server (for the two-node
# scenario) when missing (Debian packages, needs root), builds wspush and the load generator in release mode, then runs
# target/release/wspush-bench. Markdown goes to stdout, JSON to target/bench/.
# Every load test talks to 127.0.0.0/8 only and stops by itself.
#
# WSPUSH_BENCH_BASELINE=REV (a commit, tag or branch) also builds wspush as
# of REV (in a detached worktree, its own target directory, both under
# target/bench/; kept as target/bench/wspush-SHORTREV for later runs) and runs
# it side by side with this build as `wspush@SHORTREV` (`--baseline-bin`).
#
# One group alone: e.g. `scripts/bench.sh suite --only channels,isolation,resume`
# or `scripts/bench.sh suite --only sse`.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-suite}"
[ $# -gt 0 ] && shift

if [ "$mode" != soak ]; then
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bench: installing redis-server" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
      # The package starts a system-wide instance: the benchmark runs its own.
      systemctl stop redis-server >/dev/null 2>&1 || service redis-server stop >/dev/null 2>&1 || true
    else
      echo "bench: redis-server missing and cannot install it (need root and apt-get): the two-node scenario will fail" >&2
    fi
  fi
  if ! command -v nginx >/dev/null 2>&1 || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bench: installing nginx + libnginx-mod-nchan" >&2
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >&2
    else
      echo "bench: nginx + Nchan missing and cannot install them (need root and apt-get): wspush only" >&2
    fi
  fi
fi

# The load generator holds up to 15,000 sockets; the server raises its own limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release -q -p wspush -p wspush-bench >&2

if [ -n "${WSPUSH_BENCH_BASELINE:-}" ] && [ "$mode" = suite ]; then
  rev=$(git rev-parse --short "$WSPUSH_BENCH_BASELINE^{commit}")
  bin="target/bench/wspush-$rev"
  if [ ! -x "$bin" ]; then
    echo "bench: building the baseline wspush at $rev" >&2
    src="$PWD/target/bench/baseline-src"
    git worktree remove --force "$src" >/dev/null 2>&1 || true
    git worktree add --detach "$src" "$rev" >&2
    CARGO_TARGET_DIR="$PWD/target/bench/baseline-target" cargo build --release -q --manifest-path "$src/Cargo.toml" -p wspush >&2
    mkdir -p target/bench
    cp target/bench/baseline-target/release/wspush "$bin"
    git worktree remove --force "$src" >&2
  fi
  set -- --baseline-bin "$bin" "$@"
fi

exec target/release/wspush-bench "$mode" "$@"
