//! What the ledger owes its account holders (the first report a finance team asks for):
//! `Ledger::liability`, now or as it stood at a time.
//!
//! Sums over accounts are in `i128` minor units: every account's buckets fit an amount (`i64`),
//! a ledger's sum of them need not, and `i128` cannot overflow over 2³² accounts. Beside the
//! balances and held value, each sum counts the GIFT and PRE that will expire: in lots whose expiry
//! falls within 7, 30 and 90 days after the liability's time, and in lots already past their
//! expiry that no sweep has taken yet.

use std::collections::BTreeMap;

use purse_core::{Account, Bucket, Buckets, State, Timestamp};

use crate::error::Error;
use crate::ledger::Ledger;
use crate::point_in_time::{account_at, AsOf};

/// The windows of the expiring figures, in days after the liability's time.
pub const EXPIRY_WINDOWS_DAYS: [u32; 3] = [7, 30, 90];

/// Accounts folded per writer query by a liability at a past time, so that other requests are
/// served between them.
const ACCOUNTS_PER_QUERY: usize = 256;

/// A sum of many accounts' buckets, in minor units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WideBuckets {
    pub real: i128,
    pub gift: i128,
    pub pre: i128,
}

impl WideBuckets {
    pub fn total(&self) -> i128 {
        self.real + self.gift + self.pre
    }

    fn add(&mut self, buckets: &Buckets) {
        self.real += i128::from(buckets.real.minor());
        self.gift += i128::from(buckets.gift.minor());
        self.pre += i128::from(buckets.pre.minor());
    }

    fn add_to(&mut self, bucket: Bucket, minor: i64) {
        let minor = i128::from(minor);
        match bucket {
            Bucket::Real => self.real += minor,
            Bucket::Gift => self.gift += minor,
            Bucket::Pre => self.pre += minor,
        }
    }
}

/// The liability of a set of accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiabilitySum {
    pub accounts: u64,
    /// What the accounts own, held value included.
    pub balance: WideBuckets,
    pub held: WideBuckets,
    /// Per [`EXPIRY_WINDOWS_DAYS`]: GIFT and PRE left (held included) in lots whose expiry is
    /// after the liability's time and at most that many days after it.
    pub expiring: [WideBuckets; 3],
    /// GIFT and PRE left in lots whose expiry is at or before the liability's time: expired,
    /// not yet swept (spec §13: spendable until a sweep takes them).
    pub expired_unswept: WideBuckets,
}

impl LiabilitySum {
    fn add(&mut self, account: &Account, time: Timestamp) {
        self.accounts += 1;
        self.balance.add(&account.balance);
        self.held.add(&account.held);
        for lot in account.lots.iter() {
            let Some(expiry) = lot.key.expire_time() else { continue };
            if expiry <= time {
                self.expired_unswept.add_to(lot.bucket, lot.value.minor());
                continue;
            }
            for (window, days) in self.expiring.iter_mut().zip(EXPIRY_WINDOWS_DAYS) {
                if expiry.0.saturating_sub(time.0) <= i64::from(days) * 86_400 {
                    window.add_to(lot.bucket, lot.value.minor());
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandLiability {
    pub brand_id: Option<String>,
    pub sum: LiabilitySum,
}

/// What the ledger owes: in all, and by brand (accounts without a brand first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Liability {
    /// `None`: now. Else the time it stood at, each account after its last flow (in log order)
    /// whose order_time ≤ it (spec §12's `--at`).
    pub at: Option<Timestamp>,
    /// The time the expiring windows count from: `at`, or the caller's now.
    pub windows_from: Timestamp,
    pub total: LiabilitySum,
    pub by_brand: Vec<BrandLiability>,
}

/// When a liability stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiabilityAt {
    /// Now, from the live projections; the time is the caller's clock, for the expiring windows
    /// (the ledger has none of its own to read).
    Now(Timestamp),
    /// As it stood at a time: every account folded from its own flows, up to the log's end as it
    /// was when the report began.
    Time(Timestamp),
}

#[derive(Default)]
struct Sums {
    total: LiabilitySum,
    by_brand: BTreeMap<Option<String>, LiabilitySum>,
}

impl Sums {
    fn add(&mut self, account: &Account, time: Timestamp) {
        self.total.add(account, time);
        self.by_brand.entry(account.brand_id.clone()).or_default().add(account, time);
    }

    fn finish(self, at: Option<Timestamp>, windows_from: Timestamp) -> Liability {
        let by_brand = self.by_brand.into_iter().map(|(brand_id, sum)| BrandLiability { brand_id, sum }).collect();
        Liability { at, windows_from, total: self.total, by_brand }
    }
}

impl Liability {
    /// The liability of every account of `state`, its windows counted from `time`.
    pub(crate) fn of(state: &State, time: Timestamp) -> Liability {
        let mut sums = Sums::default();
        for account in state.accounts() {
            sums.add(account, time);
        }
        sums.finish(None, time)
    }
}

impl Ledger {
    /// The liability now or at a past time (see [`LiabilityAt`]). Now reads the in-memory
    /// projections (`verify` checks them against the fold of the log). At a time, each account is
    /// folded from its own flows, [`ACCOUNTS_PER_QUERY`] accounts per writer query.
    pub async fn liability(&self, at: LiabilityAt) -> Result<Liability, Error> {
        let time = match at {
            LiabilityAt::Now(now) => {
                return self.query(move |writer| Ok(Liability::of(&writer.projections.state, now))).await
            }
            LiabilityAt::Time(time) => time,
        };
        let (through, accounts) = self
            .query(|writer| {
                let state = &writer.projections.state;
                Ok((
                    state.last_sequence(),
                    state.accounts().map(|account| account.account_id.clone()).collect::<Vec<_>>(),
                ))
            })
            .await?;
        let mut sums = Sums::default();
        for chunk in accounts.chunks(ACCOUNTS_PER_QUERY) {
            let chunk = chunk.to_vec();
            let folded = self
                .query(move |writer| {
                    let mut folded = Vec::new();
                    for account_id in &chunk {
                        folded.extend(account_at(writer, account_id, AsOf::Time(time), through)?);
                    }
                    Ok(folded)
                })
                .await?;
            for account in &folded {
                sums.add(account, time);
            }
        }
        Ok(sums.finish(Some(time), time))
    }
}
