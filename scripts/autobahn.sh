#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client against wspush's /echo and fails
# on any FAILED case (9.*, 12.*, 13.* excluded, as ../shared/autobahn says).
# usage: scripts/autobahn.sh [full|quick]
set -euo pipefail
MODE=${1:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${AUTOBAHN_SHARED:-$ROOT/../shared/autobahn}
DEST=$ROOT/target/autobahn
REPORT=$DEST/report
[ -d "$SHARED" ] || { echo "autobahn: $SHARED not found" >&2; exit 1; }
[ -x "$DEST/wstest" ] || bash "$SHARED/setup.sh" "$DEST"
cargo build --release --bin wspush --manifest-path "$ROOT/Cargo.toml"

OUT=$(mktemp)
# Messages up to 16 MiB and pings an hour apart, so the suite measures the protocol only.
RUST_LOG=${RUST_LOG:-warn} "$ROOT/target/release/wspush" --ws-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
  --max-message-bytes 16777216 --ping-interval 3600 --pong-timeout 7200 --allowed-origin '*' >"$OUT" &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$OUT"' EXIT
for _ in $(seq 100); do grep -q '^wspush listening' "$OUT" && break; sleep 0.1; done
URL=$(sed -n 's/^wspush listening ws=\([^ ]*\) .*/\1/p' "$OUT")
[ -n "$URL" ] || { echo "autobahn: server did not start" >&2; exit 1; }
echo "autobahn: testing $URL ($MODE)"
rm -rf "$REPORT"
timeout 900 bash "$SHARED/run_fuzz.sh" "$DEST" "$URL" "$REPORT" "$MODE" | tee "$DEST/summary.txt"
if grep -q 'FAIL' "$DEST/summary.txt"; then
  echo "autobahn: FAILED cases above; report in $REPORT/index.html" >&2
  exit 1
fi
kill -0 $PID 2>/dev/null || { echo "autobahn: the server died during the run" >&2; exit 1; }
echo "autobahn: 0 FAILED"
