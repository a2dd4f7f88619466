#!/usr/bin/env bash
# The TigerBeetle peer of `purse bench`, a measurement script (not part of CI): TigerBeetle's own
# `tigerbeetle benchmark` (a single-replica cluster on loopback plus its load generator, in
# batches of 1, 100 and 8,189 transfers), next to `purse bench` with the same batch sizes and,
# with WITH_POSTGRES=1, the PostgreSQL peer (postgres-recharge.sh beside this file), interleaved
# round by round, and one markdown table of every run plus each row's median and spread.
#
# TigerBeetle of a pinned version, into PEER_CACHE once: the official release binary from its
# GitHub release, or, when that cannot be downloaded (or with TB_FROM_SOURCE=1), built from the
# release's commit with the Zig its build pins, installed from PyPI's `ziglang` wheel (pip) into
# a virtualenv beside it. The source is TB_SOURCE: a git URL or a local clone or mirror (`git
# clone` of it, then a checkout of TB_COMMIT). Or any binary given as TIGERBEETLE_BIN.
#
#   benches/peers/tigerbeetle.sh                                  # from the workspace root
#   TB_FROM_SOURCE=1 TB_SOURCE=/path/to/tigerbeetle.git benches/peers/tigerbeetle.sh
#   ROUNDS=1 BATCHES=8189 benches/peers/tigerbeetle.sh
#   TIGERBEETLE_BIN=/path/to/tigerbeetle benches/peers/tigerbeetle.sh  # an installed binary
#   INSTALL_ONLY=1 benches/peers/tigerbeetle.sh                   # download (or find) it and stop
#   sudo WITH_POSTGRES=1 benches/peers/tigerbeetle.sh             # also the PostgreSQL peer (root)
#
# Every run goes through benches/measure.sh (waits up to QUIET_WAIT s for an idle machine and
# reports the CPU other processes used meanwhile: foreign_cpu well above 0 means a shared run).
# Data lives on the same disk as purse bench's ($TMPDIR or /tmp); each run starts from an empty
# data file or directory, removed afterwards. Raw outputs are kept in LOGS.
#
# Output: one line per run on stderr while it goes, e.g.
#   run 2026-07-01T12:00:00Z round=1 tigerbeetle batch=8189 count=2000000 per_s=123456 p99_ms=12 max_ms=30 foreign_cpu_s=0.10
# then the markdown table on stdout, also written to OUT. TigerBeetle's figures are its own
# ("load accepted = N tx/s", and latency percentiles of whole batches with 1 ms resolution);
# purse's are its report's run.flows_per_second and latency_us (with --batch: of one call of
# --batch commands, with purse's default of 4 calls in flight; `tigerbeetle benchmark` keeps one
# batch in flight, --clients=1: PURSE_EXTRA="--concurrency 1" gives purse the same).
set -euo pipefail
shopt -s inherit_errexit   # a failure inside $(…) stops the script too

# Pinned: TigerBeetle 0.17.8 (released 2026-06-19), the official x86_64 Linux release binary.
TB_TAG=${TB_TAG:-0.17.8}
TB_URL=${TB_URL:-https://github.com/tigerbeetle/tigerbeetle/releases/download/$TB_TAG/tigerbeetle-x86_64-linux.zip}
# Its source: the commit of the 0.17.8 release ("release: 2026-06-19"), built with Zig 0.14.1
# (TigerBeetle's zig/download.sh at that commit), as its release script builds it, less the
# multiversion parts (past releases' binaries, which need GitHub too).
TB_SOURCE=${TB_SOURCE:-https://github.com/tigerbeetle/tigerbeetle.git}
TB_COMMIT=${TB_COMMIT:-b1ca77a3af89b4cdc34fa2b91b472e7af6d1eb02}
TB_CLIENT_MIN=${TB_CLIENT_MIN:-0.16.4}
ZIG_VERSION=${ZIG_VERSION:-0.14.1}
TB_FROM_SOURCE=${TB_FROM_SOURCE:-0}
TIGERBEETLE_BIN=${TIGERBEETLE_BIN:-}
PEER_CACHE=${PEER_CACHE:-$HOME/.cache/purse-peers}
INSTALL_ONLY=${INSTALL_ONLY:-0}

BATCHES=${BATCHES:-"1 100 8189"}
TRANSFERS=${TRANSFERS:-2000000}
# At one transfer a batch each request waits for its own commit: far fewer, or it takes hours.
TRANSFERS_BATCH1=${TRANSFERS_BATCH1:-20000}
ACCOUNTS=${ACCOUNTS:-10000}
ROUNDS=${ROUNDS:-3}
# Empty: TigerBeetle's default grid cache (1 GiB). The replica's RSS is in the table.
TB_CACHE_GRID=${TB_CACHE_GRID:-}
TB_EXTRA=${TB_EXTRA:-}

WITH_PURSE=${WITH_PURSE:-1}
PURSE_BIN=${PURSE_BIN:-target/release/purse}
PURSE_EXTRA=${PURSE_EXTRA:-}
# Without a --batch flag in purse bench, one run per round of the default workload instead.
PURSE_CONCURRENCY=${PURSE_CONCURRENCY:-1024}
WITH_POSTGRES=${WITH_POSTGRES:-0}
PG_CLIENTS=${PG_CLIENTS:-"1 64 1024"}
PG_DURATION=${PG_DURATION:-30}

QUIET_WAIT=${QUIET_WAIT:-600}
PARENT=${TB_DATA_PARENT:-${TMPDIR:-/tmp}}
OUT=${OUT:-/tmp/peers-table.md}
LOGS=${LOGS:-${OUT%.md}-logs}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
measure=$root/benches/measure.sh

say() { echo "tigerbeetle.sh: $*" >&2; }
die() { say "$*"; exit 1; }

work=$(mktemp -d "$PARENT/purse-peers-XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# --- TigerBeetle: the installed binary, or the pinned release ------------------------------

tigerbeetle_binary() {
    if [[ -n $TIGERBEETLE_BIN ]]; then
        [[ -x $TIGERBEETLE_BIN ]] || die "TIGERBEETLE_BIN=$TIGERBEETLE_BIN is not executable"
        echo "$TIGERBEETLE_BIN"; return
    fi
    local dir=$PEER_CACHE/tigerbeetle-release-$TB_TAG built=$PEER_CACHE/tigerbeetle-source-$TB_TAG
    if [[ -x $dir/tigerbeetle ]]; then echo "$dir/tigerbeetle"; return; fi
    if [[ -x $built/tigerbeetle ]]; then echo "$built/tigerbeetle"; return; fi
    if [[ $TB_FROM_SOURCE != 1 ]]; then
        command -v curl >/dev/null && command -v unzip >/dev/null || die "installing needs curl and unzip"
        say "downloading $TB_URL into $dir"
        rm -rf "$dir.partial"; mkdir -p "$dir.partial"
        if curl --fail --location --silent --show-error --output "$dir.partial/tigerbeetle.zip" "$TB_URL" &&
            unzip -q "$dir.partial/tigerbeetle.zip" -d "$dir.partial"; then
            rm -rf "$dir"; mv "$dir.partial" "$dir"
            echo "$dir/tigerbeetle"; return
        fi
        rm -rf "$dir.partial"
        say "could not download $TB_URL: building $TB_TAG from its source instead"
    fi
    build_from_source "$built"
    echo "$built/tigerbeetle"
}

build_from_source() { # into
    local into=$1 zig=$PEER_CACHE/ziglang-$ZIG_VERSION src=$PEER_CACHE/tigerbeetle-src
    command -v git >/dev/null && command -v python3 >/dev/null || die "building needs git and python3"
    if [[ ! -x $zig/bin/python ]]; then
        say "installing Zig $ZIG_VERSION from PyPI (ziglang) into $zig"
        rm -rf "$zig"; python3 -m venv "$zig" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
        "$zig/bin/pip" install --quiet "ziglang==$ZIG_VERSION" >&2 || die "pip install ziglang==$ZIG_VERSION failed"
    fi
    [[ $("$zig/bin/python" -m ziglang version) == "$ZIG_VERSION" ]] || die "$zig does not run Zig $ZIG_VERSION"
    if [[ ! -d $src/.git ]]; then
        say "cloning $TB_SOURCE into $src"
        rm -rf "$src"; git clone --quiet "$TB_SOURCE" "$src" >&2 || die "could not clone $TB_SOURCE: give TB_SOURCE or TIGERBEETLE_BIN"
    fi
    git -C "$src" checkout --quiet --detach "$TB_COMMIT" >&2 ||
        die "$TB_SOURCE has no commit $TB_COMMIT (fetch it, or give TB_SOURCE a clone that has it)"
    say "building TigerBeetle $TB_TAG at $TB_COMMIT with Zig $ZIG_VERSION (single-threaded compile: minutes)"
    (cd "$src" && "$zig/bin/python" -m ziglang build -Drelease "-Dconfig-release=$TB_TAG" \
        "-Dconfig-release-client-min=$TB_CLIENT_MIN" "-Dgit-commit=$TB_COMMIT" \
        --global-cache-dir "$PEER_CACHE/zig-cache") >&2 || die "zig build of TigerBeetle failed"
    rm -rf "$into.partial"; mkdir -p "$into.partial"
    cp "$src/zig-out/bin/tigerbeetle" "$into.partial/"
    echo "$TB_COMMIT zig $ZIG_VERSION" >"$into.partial/BUILT_FROM"
    rm -rf "$into"; mv "$into.partial" "$into"
}

tb=$(tigerbeetle_binary)
tb_version=$("$tb" version 2>/dev/null | head -1 || true)
[[ -n $TIGERBEETLE_BIN || $tb_version == *"$TB_TAG"* ]] || die "$tb says \"$tb_version\", not $TB_TAG"
say "TigerBeetle: $tb ($tb_version)"
if [[ $INSTALL_ONLY == 1 ]]; then exit 0; fi

# --- purse ----------------------------------------------------------------------------------

purse=$PURSE_BIN
[[ $purse == /* ]] || purse=$root/$purse
purse_batch=0
if [[ $WITH_PURSE == 1 ]]; then
    [[ -x $purse ]] || die "$purse is missing: build it first (cargo build --release), or WITH_PURSE=0"
    # A copy, so that every round runs the same build even if target/ is rebuilt meanwhile.
    cp "$purse" "$work/purse"; purse_built=$(date -u -r "$purse" +%Y-%m-%dT%H:%M:%SZ); purse=$work/purse
    "$purse" bench --help | grep -q -- '--batch' && purse_batch=1
    [[ $purse_batch == 1 ]] || say "$purse bench has no --batch: batch runs skipped, one --concurrency $PURSE_CONCURRENCY run per round instead"
fi
unset PURSE_DATA   # purse bench then uses a fresh directory in $TMPDIR

# --- runs -----------------------------------------------------------------------------------

mkdir -p "$LOGS"
runs=$work/runs.tsv   # time round system shape count per_s p50_ms p99_ms p999_ms max_ms rss foreign note
: >"$runs"
export QUIET_WAIT
stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
foreign_of() { sed -n 's/^measure: .*foreign_cpu=\([0-9.]*\).*/\1/p' "$1" | tail -1; }

count_for() { if [[ $1 == 1 ]]; then echo "$TRANSFERS_BATCH1"; else echo "$TRANSFERS"; fi; }

run_tigerbeetle() { # round batch
    local round=$1 batch=$2 count t log dir status=0
    count=$(count_for "$batch")
    t=$(stamp); log=$LOGS/r$round-tigerbeetle-b$batch.log
    dir=$(mktemp -d "$PARENT/purse-tb-XXXXXX")
    local cmd=("$tb" benchmark "--file=$dir/0_0.tigerbeetle.benchmark"
        "--account-count=$ACCOUNTS" "--transfer-count=$count" "--transfer-batch-count=$batch")
    if [[ -n $TB_CACHE_GRID ]]; then cmd+=("--cache-grid=$TB_CACHE_GRID"); fi
    # shellcheck disable=SC2206
    if [[ -n $TB_EXTRA ]]; then cmd+=($TB_EXTRA); fi
    echo "# $t ${cmd[*]}" >"$log"
    (cd "$dir" && "$measure" "${cmd[@]}") >>"$log" 2>&1 || status=$?
    rm -rf "$dir"
    local per_s p50 p99 max rss datafile
    per_s=$(sed -n 's/^load accepted = \([0-9]*\) tx\/s/\1/p' "$log")
    p50=$(sed -n 's/^batch latency p50 *= \([0-9]*\) ms.*/\1/p' "$log")
    p99=$(sed -n 's/^batch latency p99 *= \([0-9]*\) ms.*/\1/p' "$log")
    max=$(sed -n 's/^batch latency p100 *= \([0-9]*\) ms.*/\1/p' "$log")
    rss=$(sed -n 's/^rss = \([0-9]*\) bytes/\1/p' "$log")
    datafile=$(sed -n 's/^datafile = \([0-9]*\) bytes/\1/p' "$log")
    local note="datafile $(( ${datafile:-0} / 1048576 )) MiB"
    [[ $status == 0 && -n $per_s ]] || { note="FAILED (exit $status), see $log"; per_s=; }
    printf '%s\t%s\ttigerbeetle\tbatch %s\t%s\t%s\t%s\t%s\t\t%s\t%s\t%s\t%s\n' "$t" "$round" "$batch" \
        "$count" "$per_s" "$p50" "$p99" "$max" "$rss" "$(foreign_of "$log")" "$note" >>"$runs"
    say "run $t round=$round tigerbeetle batch=$batch count=$count per_s=${per_s:-?} p99_ms=${p99:-?} max_ms=${max:-?} foreign_cpu_s=$(foreign_of "$log") $note"
}

run_purse() { # round shape count args...
    local round=$1 shape=$2 count=$3; shift 3
    local t log status=0 slug=${shape// /}
    t=$(stamp); log=$LOGS/r$round-purse-$slug.log
    local cmd=("$purse" bench --flows "$count" --accounts "$ACCOUNTS" "$@")
    # shellcheck disable=SC2206
    if [[ -n $PURSE_EXTRA ]]; then cmd+=($PURSE_EXTRA); fi
    echo "# $t ${cmd[*]}" >"$log.err"
    (cd "$PARENT" && "$measure" "${cmd[@]}") >"$log" 2>>"$log.err" || status=$?
    local fig
    fig=$(python3 - "$log" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
ms = lambda us: f"{us / 1000:.2f}"
print("\t".join([str(r["run"]["flows_per_second"]), ms(l["p50"]), ms(l["p99"]), ms(l["p999"]), ms(l["max"]),
                 str(r["memory"]["peak_rss_bytes"]), "passed" if r["check"]["passed"] else "CHECK FAILED"]))
PY
)
    local per_s p50 p99 p999 max rss check
    IFS=$'\t' read -r per_s p50 p99 p999 max rss check <<<"${fig:-}" || true
    local note=${check:-}
    [[ $status == 0 && -n ${per_s:-} ]] || { note="FAILED (exit $status), see $log.err"; per_s=; }
    printf '%s\t%s\tpurse\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$round" "$shape" "$count" \
        "$per_s" "${p50:-}" "${p99:-}" "${p999:-}" "${max:-}" "${rss:-}" "$(foreign_of "$log.err")" "$note" >>"$runs"
    say "run $t round=$round purse $shape count=$count per_s=${per_s:-?} p99_ms=${p99:-?} max_ms=${max:-?} foreign_cpu_s=$(foreign_of "$log.err") $note"
}

run_postgres() { # round
    local round=$1 t log status=0
    t=$(stamp); log=$LOGS/r$round-postgres.log
    local skip=1; [[ $round == 1 ]] && skip=0
    CLIENTS=$PG_CLIENTS DURATION=$PG_DURATION ACCOUNTS=$ACCOUNTS SKIP_INSTALL=$skip \
        "$measure" "$here/postgres-recharge.sh" >"$log" 2>&1 || status=$?
    local line clients tps transactions latency
    while read -r line; do
        clients=$(sed -n 's/.* clients=\([0-9]*\) .*/\1/p' <<<"$line")
        tps=$(sed -n 's/.* tps=\([0-9.]*\) .*/\1/p' <<<"$line")
        transactions=$(sed -n 's/.* transactions=\([0-9]*\) .*/\1/p' <<<"$line")
        latency=$(sed -n 's/.* latency_avg_ms=\([0-9.]*\) .*/\1/p' <<<"$line")
        printf '%s\t%s\tpostgres\tclients %s\t%s\t%s\t\t\t\t\t\t%s\tmean latency %s ms\n' "$t" "$round" \
            "$clients" "$transactions" "${tps%.*}" "$(foreign_of "$log")" "$latency" >>"$runs"
        say "run $t round=$round postgres clients=$clients tps=$tps latency_avg_ms=$latency"
    done < <(grep '^postgres clients=' "$log" || true)
    [[ $status == 0 ]] || say "postgres peer failed (exit $status), see $log"
}

for round in $(seq 1 "$ROUNDS"); do
    for batch in $BATCHES; do
        run_tigerbeetle "$round" "$batch"
        if [[ $WITH_PURSE == 1 && $purse_batch == 1 ]]; then
            run_purse "$round" "batch $batch" "$(count_for "$batch")" --batch "$batch"
        elif [[ $WITH_PURSE == 1 ]]; then
            printf '%s\t%s\tpurse\tbatch %s\t\t\t\t\t\t\t\t\tskipped: no --batch in purse bench\n' \
                "$(stamp)" "$round" "$batch" >>"$runs"
        fi
    done
    if [[ $WITH_PURSE == 1 && $purse_batch == 0 ]]; then
        run_purse "$round" "concurrency $PURSE_CONCURRENCY" "$TRANSFERS" --concurrency "$PURSE_CONCURRENCY"
    fi
    if [[ $WITH_POSTGRES == 1 ]]; then run_postgres "$round"; fi
done

# --- the table ------------------------------------------------------------------------------

{
    echo "## TigerBeetle, purse and PostgreSQL peers ($(stamp))"
    echo
    echo "- TigerBeetle: \`$tb_version\` ($TB_TAG), \`tigerbeetle benchmark\`, single replica on loopback, accounts $ACCOUNTS; data in $PARENT"
    if [[ $WITH_PURSE == 1 ]]; then echo "- purse: \`$PURSE_BIN\` built $purse_built ($( [[ $purse_batch == 1 ]] && echo "--batch" || echo "no --batch: one --concurrency $PURSE_CONCURRENCY run per round" ))"; fi
    echo "- machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -r); rounds $ROUNDS, interleaved"
    echo "- per_s: TigerBeetle's \"load accepted\" tx/s; purse's accepted flows/s; PostgreSQL's tps."
    echo "  Latency, ms: TigerBeetle's of whole batches (1 ms buckets, one batch in flight); purse's of one call"
    echo "  (a batch of --batch commands, or one command without it), PURSE_EXTRA: \"$PURSE_EXTRA\"."
    echo
    echo "| time (UTC) | round | system | shape | count | per_s | p50 ms | p99 ms | p99.9 ms | max ms | peak RSS MiB | foreign CPU s | note |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' '{ rss = ($11 == "") ? "" : sprintf("%d", $11 / 1048576)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, rss, $12, $13 }' "$runs"
    echo
    echo "| system | shape | runs | per_s median | per_s min – max | p99 ms median | max ms median |"
    echo "|---|---|---|---|---|---|---|"
    awk -F'\t' '$6 != "" { key = $3 "\t" $4; if (!(key in n)) order[++keys] = key
            n[key]++; v[key, n[key]] = $6; p[key, n[key]] = $8; m[key, n[key]] = $10 }
        function median(a, key, count,   i, j, t, s) {
            for (i = 1; i <= count; i++) s[i] = a[key, i]
            for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (s[j] + 0 < s[i] + 0) { t = s[i]; s[i] = s[j]; s[j] = t }
            if (s[1] == "") return ""
            return (count % 2) ? s[(count + 1) / 2] : (s[count / 2] + s[count / 2 + 1]) / 2
        }
        function extreme(key, count, want_max,   i, x) {
            x = v[key, 1]; for (i = 2; i <= count; i++) if ((want_max && v[key, i] + 0 > x + 0) || (!want_max && v[key, i] + 0 < x + 0)) x = v[key, i]
            return x
        }
        END { for (k = 1; k <= keys; k++) { key = order[k]; split(key, part, "\t"); c = n[key]
            printf "| %s | %s | %d | %s | %s – %s | %s | %s |\n", part[1], part[2], c, median(v, key, c),
                extreme(key, c, 0), extreme(key, c, 1), median(p, key, c), median(m, key, c) } }' "$runs"
    echo
    echo "Raw outputs: $LOGS"
} | tee "$OUT"
