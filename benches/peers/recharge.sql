-- pgbench script: the recharge (CHARGE with the gift rule) that `purse bench --mix charge=100`
-- sends, as one PostgreSQL transaction. Lock the account row, add the charge and the rule's
-- gift to its balance and lifetime totals, and insert the flow under a unique request_id and
-- a unique outer_order_id, with the balance before and the signed change, like a purse flow.
--
-- The same amounts as purse bench: REAL one of 50.00, 100.00, 200.00, 500.00, 1000.00 (minor
-- units); the gift rule CUSTOMIZED 100.00 -> 20.00, 500.00 -> 150.00.
-- Variables: -D accounts=N (accounts acct-000000 … are created by postgres-recharge.sh).

\set aid random(0, :accounts - 1)
\set tier random(0, 4)
\set real_value CASE WHEN :tier = 0 THEN 5000 WHEN :tier = 1 THEN 10000 WHEN :tier = 2 THEN 20000 WHEN :tier = 3 THEN 50000 ELSE 100000 END
\set gift_value CASE WHEN :real_value >= 50000 THEN 15000 WHEN :real_value >= 10000 THEN 2000 ELSE 0 END
BEGIN;
SELECT real_value AS before_real, gift_value AS before_gift, pre_value AS before_pre
  FROM account WHERE account_id = 'acct-' || lpad(:aid::text, 6, '0') FOR UPDATE \gset
UPDATE account
   SET real_value = real_value + :real_value, gift_value = gift_value + :gift_value,
       real_value_total = real_value_total + :real_value, gift_value_total = gift_value_total + :gift_value
 WHERE account_id = 'acct-' || lpad(:aid::text, 6, '0');
INSERT INTO flow (flow_type, request_id, outer_order_id, account_id, order_time,
                  before_real, before_gift, before_pre, affected_real, affected_gift, affected_pre)
VALUES ('CHARGE', 'r' || gen_random_uuid(), 'o' || gen_random_uuid(), 'acct-' || lpad(:aid::text, 6, '0'), now(),
        :before_real, :before_gift, :before_pre, :real_value, :gift_value, 0);
COMMIT;
