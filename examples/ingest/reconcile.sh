#!/usr/bin/env bash
# Ingests the sample provider exports in this folder into the embedded default ledger
# (./purse-data at the repository root, or $PURSE_DATA) and prints each provider's
# reconciliation report. Run it twice: the second run adds nothing (every record is a
# duplicate) and reports the same reconciliation.
#
# The KYBIO sample has a deliberate mismatch (spending between two recharges that the recharge
# log does not show), so its run exits 3; that is a finding, not a failure of this script.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p purse-cli
purse=target/release/purse
for provider in kybio alsc zenlayer; do
    echo "== purse ingest --provider $provider examples/ingest/$provider/*"
    status=0
    "$purse" ingest --provider "$provider" examples/ingest/"$provider"/* || status=$?
    case $status in
        0) echo "== $provider: clean" ;;
        3) echo "== $provider: finished with rejected records or mismatches (exit 3)" ;;
        *) exit "$status" ;;
    esac
done
echo "== purse verify"
"$purse" verify
