//! Generated provider data for tests and the throughput measurement. Not part of the API:
//! hidden from the docs and free to change.

use std::io::{self, Write};

/// Writes `records` Zenlayer history records over `accounts` accounts, as
/// `DescribeRechargeRefundHistory` pages of at most `page_size` records, one page per line.
///
/// Deterministic. Every account starts with a RECHARGE; after that the types vary, amounts
/// never take an account below zero, about one record in a hundred is a PAYING record that
/// ingestion skips, and about one in a hundred an ORDER_FROZEN hold, which the account's next
/// record (an ORDER_UNFROZEN of the same amount) releases.
pub fn zenlayer_history(records: u64, accounts: u64, page_size: u64, out: &mut impl Write) -> io::Result<()> {
    assert!(accounts > 0 && page_size > 0, "accounts and page_size must be positive");
    let accounts_usize = usize::try_from(accounts).map_err(|_| io::Error::other("too many accounts"))?;
    let mut balances = vec![0i64; accounts_usize];
    let mut holds: Vec<Option<i64>> = vec![None; accounts_usize];
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let start = 1_672_531_200i64; // 2023-01-01T00:00:00Z
    let mut written = 0;
    let mut page = 0;
    while written < records {
        page += 1;
        let in_page = page_size.min(records - written);
        write!(
            out,
            "{{\"requestId\":\"T-{page:08}\",\"response\":{{\"requestId\":\"T-{page:08}\",\"totalCount\":{records},\"dataSet\":["
        )?;
        for in_page_index in 0..in_page {
            let index = written + in_page_index;
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let account = usize::try_from(index % accounts).unwrap_or(0);
            let balance = &mut balances[account];
            let (kind, state, cents) = match holds[account].take() {
                Some(held) => ("ORDER_UNFROZEN", "PAY_SUCCESS", held),
                None => next(*balance, random),
            };
            if kind == "ORDER_FROZEN" {
                holds[account] = Some(cents);
            }
            if state == "PAY_SUCCESS" {
                match kind {
                    "RECHARGE" | "ORDER_REFUND" | "DERATE" => *balance += cents,
                    "DEDUCTION" | "REFUND" => *balance -= cents,
                    _ => {}
                }
            }
            let time = chrono::DateTime::from_timestamp(start + i64::try_from(index).unwrap_or(0), 0)
                .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            if in_page_index > 0 {
                out.write_all(b",")?;
            }
            write!(
                out,
                "{{\"transactionType\":\"{kind}\",\"amount\":{}.{:02},\"paymentMethod\":\"{}\",\"state\":\"{state}\",\
                 \"transactionTime\":\"{time}\",\"accountUid\":\"{}\",\"transactionId\":\"{}\"}}",
                cents / 100,
                cents % 100,
                if kind == "RECHARGE" { "CREDIT_CARD" } else { "BALANCE" },
                account_uid(account),
                10_000_000_000_000u64 + index
            )?;
        }
        out.write_all(b"]}}\n")?;
        written += in_page;
    }
    Ok(())
}

/// The next record of an account holding `balance` cents: (type, state, cents).
fn next(balance: i64, random: u64) -> (&'static str, &'static str, i64) {
    let roll = random % 100;
    let cents = i64::try_from(random % 20_000).unwrap_or(0) + 1;
    if balance < 1_000 {
        return ("RECHARGE", "PAY_SUCCESS", 50_000 + cents);
    }
    match roll {
        0 => ("RECHARGE", "PAYING", cents),
        1 => ("ORDER_FROZEN", "PAY_SUCCESS", cents.min(balance)),
        2..=9 => ("RECHARGE", "PAY_SUCCESS", cents * 5),
        10..=13 => ("ORDER_REFUND", "PAY_SUCCESS", cents.min(500)),
        14..=15 => ("DERATE", "PAY_SUCCESS", 100),
        16 => ("REFUND", "PAY_SUCCESS", cents.min(balance / 2).max(1)),
        _ => ("DEDUCTION", "PAY_SUCCESS", cents.min(balance / 2).max(1)),
    }
}

fn account_uid(account: usize) -> String {
    format!("cccbf4c0-12ab-417a-95ba-{account:012x}")
}
