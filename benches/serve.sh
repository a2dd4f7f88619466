#!/usr/bin/env bash
# The native API over loopback against the same workload in process, interleaved, one fresh
# ledger per run (docs/performance.md, "purse serve"):
#
#   benches/serve.sh target/release/purse            # ROUNDS=3 FLOWS=300000 CONNECTIONS=1024
#
# Each round runs `purse bench` (in process, 1,024 callers) and then `purse serve` on a fresh
# data directory with `purse bench --http` driving it over CONNECTIONS keep-alive connections
# from a second process on the same machine. It prints one line per run and, at the end, the
# median and spread of each mode's flows/s and p99, and the HTTP median as a share of the
# in-process one. The reports are kept in OUT (default a temporary directory).
set -euo pipefail
purse=$(realpath "${1:?usage: benches/serve.sh PATH/TO/purse}")
rounds=${ROUNDS:-3}
flows=${FLOWS:-300000}
connections=${CONNECTIONS:-1024}
out=${OUT:-$(mktemp -d)}
here=$(dirname "$0")

field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['run']['flows_per_second'], r['latency_us']['p50'], r['latency_us']['p99'])" "$1"; }

for round in $(seq 1 "$rounds"); do
    QUIET_WAIT=${QUIET_WAIT:-60} "$here/measure.sh" "$purse" bench --flows "$flows" > "$out/inproc-$round.json" 2> "$out/inproc-$round.err"
    echo "in-process round $round: $(field "$out/inproc-$round.json") ($(tail -1 "$out/inproc-$round.err"))"
    data="$out/ledger-$round"
    key=$("$purse" --data "$data" keys add --scope admin --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    PURSE_LOG=warn "$purse" --data "$data" serve --listen 127.0.0.1:0 > "$out/serve-$round.out" 2> "$out/serve-$round.err" &
    server=$!
    for _ in $(seq 1 100); do [ -s "$out/serve-$round.out" ] && break; sleep 0.1; done
    url=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$out/serve-$round.out")
    QUIET_WAIT=${QUIET_WAIT:-60} "$here/measure.sh" "$purse" bench --http "$url" --api-key "$key" --flows "$flows" \
        --connections "$connections" > "$out/http-$round.json" 2> "$out/http-$round.err"
    kill -TERM "$server"; wait "$server"
    echo "http round $round: $(field "$out/http-$round.json") ($(tail -1 "$out/http-$round.err"))"
done

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def runs(mode):
    reports = [json.load(open(f"{out}/{mode}-{r}.json")) for r in range(1, rounds + 1)]
    return [r["run"]["flows_per_second"] for r in reports], [r["latency_us"]["p99"] for r in reports]
summary = {}
for mode in ("inproc", "http"):
    tput, p99 = runs(mode)
    summary[mode] = statistics.median(tput)
    print(f"{mode}: flows/s median {statistics.median(tput):,.0f} ({min(tput):,}-{max(tput):,}), "
          f"p99 median {statistics.median(p99):,.0f} us ({min(p99):,}-{max(p99):,})")
print(f"http / in-process: {summary['http'] / summary['inproc']:.1%}  (reports in {out})")
PY
