#!/usr/bin/env bash
# `purse serve` on the embedded default data directory (./purse-data): builds the binary, makes
# a write key (printed once: the ledger keeps only its hash), prints curl lines to try, then
# serves on 127.0.0.1:8080 until Ctrl-C (which closes the ledger cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p purse-cli
P=target/release/purse
DATA=${PURSE_DATA:-./purse-data}
LISTEN=${LISTEN:-127.0.0.1:8080}
KEY=$("$P" --data "$DATA" keys add --scope admin --name examples-serve | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
cat <<TRY
An admin key for this session (keep it; revoke with: $P --data $DATA keys revoke ${KEY:3:12}):
  KEY=$KEY
Try:
  curl -s -H "Authorization: Bearer \$KEY" --json '{"request_id":"r1","outer_order_id":"o1","account_id":"alice","real_value":"100.00"}' http://$LISTEN/v1/charge
  curl -s -H "Authorization: Bearer \$KEY" --json '{"request_id":"r2","outer_order_id":"o2","account_id":"alice","value":"12.50"}' http://$LISTEN/v1/deduct
  curl -s -H "Authorization: Bearer \$KEY" 'http://$LISTEN/v1/account?account_id=alice'
The console: http://$LISTEN/console/login?key=\$KEY&next=/console
TRY
exec "$P" --data "$DATA" serve --listen "$LISTEN"
