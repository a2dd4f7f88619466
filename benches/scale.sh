#!/usr/bin/env bash
# Issue 13's single-machine figures besides the TigerBeetle table (benches/peers/tigerbeetle.sh):
# the default workload and the lone caller (interleaved, ROUNDS each), then a ledger of
# SMALL_FLOWS and one of LARGE_FLOWS flows over SCALE_ACCOUNTS accounts written with
# `--batch 8189` (reopen time and peak RSS of each), and `purse account` end to end (open,
# query, close) on the large one, ROUNDS times. Every run goes through benches/measure.sh, which
# waits for an idle machine and says how much CPU other processes used meanwhile.
#
#   cargo build --release -p purse-cli && benches/scale.sh
#   ROUNDS=1 LARGE_FLOWS=2000000 benches/scale.sh        # a quicker look
#
# Output: one line per run on stderr while it goes, the raw reports in LOGS, and a summary on
# stdout (also written to OUT).
set -euo pipefail
shopt -s inherit_errexit

PURSE_BIN=${PURSE_BIN:-target/release/purse}
ROUNDS=${ROUNDS:-3}
DEFAULT_FLOWS=${DEFAULT_FLOWS:-1000000}
LONE_FLOWS=${LONE_FLOWS:-20000}
SCALE_ACCOUNTS=${SCALE_ACCOUNTS:-100000}
SMALL_FLOWS=${SMALL_FLOWS:-1000000}
LARGE_FLOWS=${LARGE_FLOWS:-10000000}
PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
LOGS=${LOGS:-$(mktemp -d "$PARENT/purse-scale-logs-XXXXXX")}
mkdir -p "$LOGS"
OUT=${OUT:-$LOGS/summary.md}
here=$(cd "$(dirname "$0")" && pwd)
measure="$here/measure.sh"

[[ -x $PURSE_BIN ]] || { echo "no purse binary at $PURSE_BIN: cargo build --release -p purse-cli" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to read the reports" >&2; exit 2; }

# The fields of one bench report, as one line.
summarize() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l, g, c = r["latency_us"], r["group_commit"], r["cpu_ms"]
print(f'flows_per_s={r["run"]["flows_per_second"]} p50_us={l["p50"]} p99_us={l["p99"]} p999_us={l["p999"]} '
      f'max_us={l["max"]} reopen_ms={r["recovery"]["reopen_ms"]} peak_rss_mib={r["memory"]["peak_rss_bytes"] >> 20} '
      f'rss_after_run_mib={r["memory"]["peak_rss_bytes_after_run"] >> 20} fsync_p50_us={r["fdatasync_floor_us"]["p50"]} '
      f'fsync_p99_us={r["fdatasync_floor_us"]["p99"]} writer_ms={c["writer"]} syncer_ms={c["syncer"]} '
      f'callers_ms={c["callers"]} sled_ms={c["sled"]} writer_idle_ms={g["writer_idle_ms"]} '
      f'durability_wait_ms={g["writer_durability_wait_ms"]} fsyncs={r["fsyncs"]} passed={r["check"]["passed"]}')
PY
}

# run NAME ARGS…: one bench through measure.sh; its summary line on stderr and in LOGS/NAME.line.
run() {
    local name=$1; shift
    local report="$LOGS/$name.json"
    "$measure" "$PURSE_BIN" "$@" >"$report" 2>"$LOGS/$name.err"
    local line; line="$(summarize "$report") $(grep '^measure:' "$LOGS/$name.err" | tail -1)"
    echo "$name $line" | tee "$LOGS/$name.line" >&2
}

for round in $(seq 1 "$ROUNDS"); do
    run "default-$round" bench --flows "$DEFAULT_FLOWS"
    run "lone-$round" bench --concurrency 1 --flows "$LONE_FLOWS"
done

small=$(mktemp -d "$PARENT/purse-scale-small-XXXXXX")
large=$(mktemp -d "$PARENT/purse-scale-large-XXXXXX")
trap 'rm -rf "$small" "$large"' EXIT
rmdir "$small" "$large"   # purse bench --data wants a missing or empty directory
run small bench --batch 8189 --flows "$SMALL_FLOWS" --accounts "$SCALE_ACCOUNTS" --data "$small"
run large bench --batch 8189 --flows "$LARGE_FLOWS" --accounts "$SCALE_ACCOUNTS" --data "$large"
du -sh "$large" >&2

for round in $(seq 1 "$ROUNDS"); do
    start=$(date +%s%N)
    "$PURSE_BIN" --data "$large" account --account-id acct-000001 >"$LOGS/account-$round.json"
    end=$(date +%s%N)
    echo "account-$round ms=$(( (end - start) / 1000000 ))" | tee "$LOGS/account-$round.line" >&2
done

{
    echo "# purse scale run, $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo '```'
    cat "$LOGS"/*.line
    echo '```'
} | tee "$OUT"
