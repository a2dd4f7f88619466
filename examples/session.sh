#!/usr/bin/env bash
# A session at the counter: purse's main job, one command after another.
#
#   examples/session.sh            # from the repository root; needs only Rust (cargo)
#
# The ledger lives in ./purse-data-session at the repository root, its own, so that the README's
# commands (in ./purse-data) never meet it (or in $PURSE_DATA; a relative path there is taken
# from the repository root too), created on first use. Every write below
# carries a fixed request id, so running the script again on the same ledger is safe: each write
# is answered by its first answer again, byte for byte, and nothing is written twice (only
# `rules set` adds a rules entry each time, which changes nothing for the flows).
set -euo pipefail

cd "$(dirname "$0")/.."
export PURSE_DATA="${PURSE_DATA:-./purse-data-session}"

echo "## Build the purse binary once (release)"
cargo build --release -q -p purse-cli
bin="${CARGO_TARGET_DIR:-target}/release/purse"

# Prints a command line as one could type it (no argument here holds a single quote).
show() {
  local line='$ purse' arg
  for arg in "$@"; do
    case "$arg" in
      *[!A-Za-z0-9_./:=@+-]*) line+=" '$arg'" ;;
      *) line+=" $arg" ;;
    esac
  done
  printf '%s\n' "$line"
}

# Shows the command, then runs it: the answer is one JSON document on stdout (exit 0), or an
# error document on stderr (non-zero exit).
purse() {
  show "$@"
  "$bin" "$@"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo
echo "## Set the tea house's rules: gift 20.00 for every whole 100.00 charged (full_gift_switch),"
echo "## 150.00 for every 500.00; deductions split REAL and GIFT in proportion (PERCENT_DEDUCT)"
purse rules set --brand-id tea-house - <<'JSON'
{
  "deduction_order": "PERCENT_DEDUCT",
  "gift_type": "CUSTOMIZED",
  "full_gift_switch": true,
  "tiers": [
    {"real_value": "100.00", "gift_value": "20.00"},
    {"real_value": "500.00", "gift_value": "150.00"}
  ]
}
JSON

# The first charge, kept in an array so the very same request can be sent again later.
charge_300=(charge --request-id session-charge-300 --outer-order-id T-1001
  --account-id alice --card-id card-0001 --brand-id tea-house
  --real-value 300.00 --trigger-gift --biz-date '2026-11-23 09:30:00' --shop-id shop-7)

echo
echo "## Charge 300.00 with the rule's gift: opens alice's card; tier 100.00 three times = 60.00 GIFT"
show "${charge_300[@]}"
"$bin" "${charge_300[@]}" | tee "$work/charge-300.json"

echo
echo "## Charge 500.00 with the rule's gift: the 500.00 tier once = 150.00 GIFT"
purse charge --request-id session-charge-500 --outer-order-id T-1002 --account-id alice \
  --real-value 500.00 --trigger-gift --biz-date '2026-11-23 09:35:00'

echo
echo "## Load 50.00 of promotional PRE value (a charge with pre_value, no gift)"
purse charge --request-id session-charge-pre --outer-order-id T-1003 --account-id alice \
  --pre-value 50.00 --biz-date '2026-11-23 09:40:00' --remark 'opening promotion'

echo
echo "## Spend 250.00: PRE is spent first (50.00), the other 200.00 splits REAL/GIFT by balance:"
echo "## GIFT = half_up(200.00 x 210.00 / 1010.00) = 41.58, REAL = 158.42"
purse deduct --request-id session-deduct --outer-order-id S-2001 --account-id alice \
  --value 250.00 --biz-date '2026-11-23 12:10:00' --ext-info '{"table": 4, "items": 3}'

echo
echo "## Refund 100.00 of that purchase: split like the purchase was (GIFT 16.63, PRE 20.00, REAL 63.37)"
purse undeduct --request-id session-refund --outer-order-id S-2001 --new-outer-order-id R-3001 \
  --account-id alice --value 100.00 --biz-date '2026-11-23 12:30:00'

echo
echo "## Reverse the whole 500.00 charge: exactly what it added (REAL 500.00, GIFT 150.00) comes back out"
purse uncharge --request-id session-uncharge --outer-order-id X-4001 --src-outer-order-id T-1002 \
  --account-id alice --biz-date '2026-11-23 13:00:00'

echo
echo "## Try to spend 1000.00, more than the card holds: refused with INSUFFICIENT_BALANCE, nothing written"
# Failure is the point of this step: the error document goes to stderr with exit status 1, and
# `|| ...` keeps the session going (set -e would stop it otherwise).
purse deduct --request-id session-overdraft --outer-order-id S-2002 --account-id alice \
  --value 1000.00 --biz-date '2026-11-23 13:05:00' || echo "(refused: exit status $?)"

echo
echo "## Send the first charge again, same request id: a replay, not a second charge"
show "${charge_300[@]}"
"$bin" "${charge_300[@]}" >"$work/charge-300-again.json"
if cmp "$work/charge-300.json" "$work/charge-300-again.json"; then
  echo "the answer is byte-identical to the first one ($(wc -c <"$work/charge-300.json") bytes), the same flow:"
  grep -h '"flow_id"' "$work/charge-300.json" "$work/charge-300-again.json"
else
  echo "the replay answered differently" >&2
  exit 1
fi

echo
echo "## alice's card: balances and lifetime totals"
purse account --account-id alice

echo
echo "## alice's flows, oldest first"
purse flows --account-id alice

echo
echo "## Replay the whole log and check every projection and index against it"
purse verify
