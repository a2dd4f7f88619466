#!/usr/bin/env bash
# The PostgreSQL peer of `purse bench --mix charge=100`: the same recharge as one transaction
# (SELECT … FOR UPDATE; UPDATE the balance; INSERT the flow with a unique request_id), with
# synchronous_commit on, driven by pgbench with recharge.sql beside this file.
#
# Installs Debian's postgresql package (apt-get), creates a throwaway cluster, starts it
# listening on loopback only (127.0.0.1 and a private Unix socket directory), creates the schema
# and ACCOUNTS accounts, runs pgbench for DURATION seconds once per client count in CLIENTS,
# prints one line per run, then stops the server and removes the cluster.
#
#   sudo benches/peers/postgres-recharge.sh              # as root: it runs the server as postgres
#   CLIENTS="1 64" DURATION=10 benches/peers/postgres-recharge.sh
#
# Output, one line per client count:
#   postgres clients=64 duration_s=30 transactions=123456 tps=4115.2 latency_avg_ms=15.5 flows=123456
set -euo pipefail

CLIENTS=${CLIENTS:-"1 16 64 256 1024"}
DURATION=${DURATION:-30}
ACCOUNTS=${ACCOUNTS:-10000}
PORT=${PORT:-54329}
# The cluster lives here: keep it on the same disk as purse bench's data (its default is $TMPDIR or /tmp).
PARENT=${PGDATA_PARENT:-${TMPDIR:-/tmp}}
SKIP_INSTALL=${SKIP_INSTALL:-0}
here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) -ne 0 ]]; then
    echo "run as root: it installs packages and runs the server as the postgres user" >&2
    exit 2
fi

if [[ $SKIP_INSTALL != 1 ]]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql postgresql-contrib >/dev/null
fi

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
version=$("$bin/postgres" --version)
cluster=$(mktemp -d "$PARENT/purse-pg-XXXXXX")
chown postgres:postgres "$cluster"
as_postgres() { runuser -u postgres -- "$@"; }

cleanup() {
    as_postgres "$bin/pg_ctl" -D "$cluster/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$cluster"
}
trap cleanup EXIT

max_clients=$(tr ' ' '\n' <<<"$CLIENTS" | sort -n | tail -1)
as_postgres "$bin/initdb" -D "$cluster/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
# Defaults otherwise: fsync on, synchronous_commit on, wal_sync_method fdatasync, full_page_writes on.
as_postgres "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$cluster \
     -c max_connections=$((max_clients + 10)) -c synchronous_commit=on -c fsync=on" start >/dev/null

psql_() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$cluster" -p "$PORT" -U postgres "$@"; }
psql_ -d postgres -c "CREATE DATABASE bench"
psql_ -d bench <<SQL
CREATE TABLE account (
    account_id       text PRIMARY KEY,
    real_value       bigint NOT NULL CHECK (real_value >= 0),
    gift_value       bigint NOT NULL CHECK (gift_value >= 0),
    pre_value        bigint NOT NULL CHECK (pre_value >= 0),
    real_value_total bigint NOT NULL,
    gift_value_total bigint NOT NULL,
    pre_value_total  bigint NOT NULL
);
CREATE TABLE flow (
    flow_id        bigserial PRIMARY KEY,
    flow_type      text NOT NULL,
    request_id     text NOT NULL UNIQUE,
    outer_order_id text NOT NULL UNIQUE,
    account_id     text NOT NULL REFERENCES account,
    order_time     timestamptz NOT NULL,
    before_real    bigint NOT NULL,
    before_gift    bigint NOT NULL,
    before_pre     bigint NOT NULL,
    affected_real  bigint NOT NULL,
    affected_gift  bigint NOT NULL,
    affected_pre   bigint NOT NULL
);
CREATE INDEX flow_account ON flow (account_id, flow_id);
-- Like purse bench's setup: every account opened with 100.00 and the rule's 20.00 gift.
INSERT INTO account
SELECT 'acct-' || lpad(i::text, 6, '0'), 10000, 2000, 0, 10000, 2000, 0 FROM generate_series(0, $ACCOUNTS - 1) AS i;
VACUUM ANALYZE;
CHECKPOINT;
SQL

echo "postgres version=\"$version\" accounts=$ACCOUNTS cluster=$cluster synchronous_commit=$(psql_ -d bench -At -c 'SHOW synchronous_commit') wal_sync_method=$(psql_ -d bench -At -c 'SHOW wal_sync_method')"
ulimit -n 65536 2>/dev/null || true
for clients in $CLIENTS; do
    before=$(psql_ -d bench -At -c "SELECT count(*) FROM flow")
    threads=$(( clients < 2 ? 1 : 2 ))
    output=$("$bin/pgbench" -n -h "$cluster" -p "$PORT" -U postgres -M prepared \
        -f "$here/recharge.sql" -D accounts="$ACCOUNTS" -c "$clients" -j "$threads" -T "$DURATION" bench 2>&1) || {
        echo "$output" >&2
        exit 1
    }
    after=$(psql_ -d bench -At -c "SELECT count(*) FROM flow")
    transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$output")
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$output")
    latency=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$output")
    echo "postgres clients=$clients duration_s=$DURATION transactions=$transactions tps=$tps latency_avg_ms=$latency flows=$((after - before))"
done
# The balances must hold exactly what the flows added (the same self-check as purse bench).
psql_ -d bench -At -c "SELECT 'postgres check: ' || CASE WHEN
    (SELECT sum(real_value) - $ACCOUNTS::bigint * 10000 FROM account) = (SELECT coalesce(sum(affected_real), 0) FROM flow)
    AND (SELECT sum(gift_value) - $ACCOUNTS::bigint * 2000 FROM account) = (SELECT coalesce(sum(affected_gift), 0) FROM flow)
    THEN 'balances match the flows' ELSE 'MISMATCH' END"
