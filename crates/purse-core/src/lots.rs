//! Expiry lots (spec §11): inside GIFT and PRE, which value goes first and what expires.
//!
//! The bucket split of every flow is decided as before (spec §2, §4); lots only say which value
//! *inside* a bucket a debit takes: the soonest-expiring first, lots without expiry last, ties in
//! the order the lots were made. Every lot is made by one flow (its [`LotCredit`]s, in
//! `Flow::lots`), so a lot is named by that flow and its index there ([`LotKey`]), and a debit
//! remembers what it took from which lot ([`Take`]) so that a give-back returns there.
//!
//! Everything here is planned against `&self` first and changed only by applying a plan, so the
//! fold can check a flow completely before it changes anything.

use crate::balance::{Bucket, Buckets};
use crate::money::Amount;
use crate::time::Timestamp;

/// A lot a flow makes: `value` (> 0) credited to GIFT or PRE, expiring at `expire_time`
/// (`None`: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LotCredit {
    pub bucket: Bucket,
    pub value: Amount,
    pub expire_time: Option<Timestamp>,
}

/// The buckets that hold lots. REAL (paid principal) never expires and has none.
pub const LOT_BUCKETS: [Bucket; 2] = [Bucket::Gift, Bucket::Pre];

impl LotCredit {
    /// The lots of a credit of `affected`'s positive GIFT and PRE parts that states no expiry:
    /// one per part, neither expiring. Flows written before lots existed have these.
    pub fn plain(affected: &Buckets) -> Vec<LotCredit> {
        Self::with_expiry(affected, None, None)
    }

    /// One lot per positive GIFT and PRE part of `affected`, with the given expiries.
    pub fn with_expiry(affected: &Buckets, gift: Option<Timestamp>, pre: Option<Timestamp>) -> Vec<LotCredit> {
        [(Bucket::Gift, gift), (Bucket::Pre, pre)]
            .into_iter()
            .filter(|(bucket, _)| affected.get(*bucket).is_positive())
            .map(|(bucket, expire_time)| LotCredit { bucket, value: affected.get(bucket), expire_time })
            .collect()
    }
}

/// Where a lot stands in the spending order, and which lot it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LotKey {
    /// `false` sorts first: lots with an expiry go before lots without.
    never: bool,
    /// Unix seconds; 0 for a lot without expiry.
    expire: i64,
    /// The flow that made the lot, and the lot's index among that flow's lots.
    flow_id: u64,
    index: u32,
}

impl LotKey {
    pub fn new(expire_time: Option<Timestamp>, flow_id: u64, index: u32) -> LotKey {
        LotKey { never: expire_time.is_none(), expire: expire_time.map_or(0, |time| time.0), flow_id, index }
    }

    pub fn expire_time(&self) -> Option<Timestamp> {
        (!self.never).then_some(Timestamp(self.expire))
    }

    /// The flow that made the lot.
    pub fn flow_id(&self) -> u64 {
        self.flow_id
    }

    /// Whether the lot's expiry is at or before `now`.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        !self.never && self.expire <= now.0
    }
}

/// One lot: what is left of it, and how much of that open holds reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lot {
    pub bucket: Bucket,
    pub key: LotKey,
    pub value: Amount,
    /// Never more than `value`; held value cannot expire.
    pub held: Amount,
}

impl Lot {
    pub fn available(&self) -> Amount {
        Amount::from_minor(self.value.minor() - self.held.minor())
    }
}

/// Value taken from, or reserved in, one lot: enough to give it back to that lot later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub bucket: Bucket,
    pub key: LotKey,
    pub value: Amount,
}

/// The sum per bucket of `takes` (REAL stays zero).
pub fn takes_total(takes: &[Take]) -> Option<Buckets> {
    let mut total = Buckets::ZERO;
    for take in takes {
        let sum = total.get(take.bucket).checked_add(take.value)?;
        match take.bucket {
            Bucket::Real => total.real = sum,
            Bucket::Gift => total.gift = sum,
            Bucket::Pre => total.pre = sum,
        }
    }
    Some(total)
}

/// An account's lots in (bucket, key) order. Only lots with value left are kept: memory grows
/// with the lots that still hold value, not with history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lots(Vec<Lot>);

impl Lots {
    pub fn iter(&self) -> impl Iterator<Item = &Lot> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bucket_range(&self, bucket: Bucket) -> std::ops::Range<usize> {
        let start = self.0.partition_point(|lot| lot.bucket < bucket);
        let end = self.0.partition_point(|lot| lot.bucket <= bucket);
        start..end
    }

    fn find(&self, bucket: Bucket, key: LotKey) -> Result<usize, usize> {
        self.0.binary_search_by(|lot| (lot.bucket, lot.key).cmp(&(bucket, key)))
    }

    /// Plans taking `amount` of available value from `bucket`: the lots made by `first_flow`
    /// first (an UNCHARGE takes from its CHARGE's own lots), then the soonest-expiring.
    /// `None` when the bucket has less available than `amount`.
    pub fn plan(&self, bucket: Bucket, amount: Amount, first_flow: Option<u64>) -> Option<Vec<Take>> {
        let mut left = amount.minor();
        let mut takes = Vec::new();
        let range = self.bucket_range(bucket);
        let lots = &self.0[range];
        let preferred = lots.iter().filter(|lot| Some(lot.key.flow_id) == first_flow);
        let others = lots.iter().filter(|lot| Some(lot.key.flow_id) != first_flow);
        for lot in preferred.chain(others) {
            if left == 0 {
                break;
            }
            let part = lot.available().minor().min(left);
            if part > 0 {
                takes.push(Take { bucket, key: lot.key, value: Amount::from_minor(part) });
                left -= part;
            }
        }
        (left == 0).then_some(takes)
    }

    /// [`Lots::plan`] for the GIFT and PRE parts of `amounts` (each ≥ 0), GIFT first.
    pub fn plan_buckets(&self, amounts: &Buckets, first_flow: Option<u64>) -> Option<Vec<Take>> {
        let mut takes = Vec::new();
        for bucket in LOT_BUCKETS {
            takes.extend(self.plan(bucket, amounts.get(bucket), first_flow)?);
        }
        Some(takes)
    }

    /// Plans taking all available (unheld) value of the lots expired at `now`.
    pub fn plan_expired(&self, now: Timestamp) -> Vec<Take> {
        self.0
            .iter()
            .filter(|lot| lot.key.expired_at(now) && lot.available().is_positive())
            .map(|lot| Take { bucket: lot.bucket, key: lot.key, value: lot.available() })
            .collect()
    }

    /// What a sweep at `now` would expire, per bucket.
    pub fn expirable(&self, now: Timestamp) -> Buckets {
        takes_total(&self.plan_expired(now)).unwrap_or(Buckets::ZERO)
    }

    /// Whether some lot expired at `now` still has unheld value.
    pub fn has_expirable(&self, now: Timestamp) -> bool {
        self.0.iter().any(|lot| lot.key.expired_at(now) && lot.available().is_positive())
    }

    /// Adds a lot (or, for a key already there, value to it).
    pub fn make(&mut self, bucket: Bucket, key: LotKey, value: Amount) -> Result<(), String> {
        self.change(bucket, key, true, |lot| {
            lot.value = lot.value.checked_add(value).ok_or("lot value overflows")?;
            Ok(())
        })
    }

    /// Takes each take's value from its lot's available value.
    pub fn take(&mut self, takes: &[Take]) -> Result<(), String> {
        self.each(takes, false, |lot, value| {
            if value > lot.available() {
                return Err(format!("takes {} from a lot with {} available", value.minor(), lot.available().minor()));
            }
            lot.value = Amount::from_minor(lot.value.minor() - value.minor());
            Ok(())
        })
    }

    /// Reserves each take's value in its lot (a HOLD).
    pub fn reserve(&mut self, takes: &[Take]) -> Result<(), String> {
        self.each(takes, false, |lot, value| {
            if value > lot.available() {
                return Err(format!("reserves {} in a lot with {} available", value.minor(), lot.available().minor()));
            }
            lot.held = Amount::from_minor(lot.held.minor() + value.minor());
            Ok(())
        })
    }

    /// Frees what a HOLD reserved, leaving it in its lots.
    pub fn unreserve(&mut self, takes: &[Take]) -> Result<(), String> {
        self.each(takes, false, |lot, value| {
            if value > lot.held {
                return Err(format!("frees {} of a lot holding {}", value.minor(), lot.held.minor()));
            }
            lot.held = Amount::from_minor(lot.held.minor() - value.minor());
            Ok(())
        })
    }

    /// Spends reserved value (a CAPTURE): it leaves the lot and its reservation.
    pub fn spend_reserved(&mut self, takes: &[Take]) -> Result<(), String> {
        self.each(takes, false, |lot, value| {
            if value > lot.held {
                return Err(format!("spends {} of a lot holding {}", value.minor(), lot.held.minor()));
            }
            lot.held = Amount::from_minor(lot.held.minor() - value.minor());
            lot.value = Amount::from_minor(lot.value.minor() - value.minor());
            Ok(())
        })
    }

    /// Gives value back to the lots it was taken from, with their expiry (a lot emptied since
    /// comes back).
    pub fn refill(&mut self, takes: &[Take]) -> Result<(), String> {
        self.each(takes, true, |lot, value| {
            lot.value = lot.value.checked_add(value).ok_or("lot value overflows")?;
            Ok(())
        })
    }

    fn each(
        &mut self,
        takes: &[Take],
        create: bool,
        mut change: impl FnMut(&mut Lot, Amount) -> Result<(), String>,
    ) -> Result<(), String> {
        for take in takes {
            if take.bucket == Bucket::Real || !take.value.is_positive() {
                return Err(format!("a lot take of {} in {}", take.value.minor(), take.bucket));
            }
            self.change(take.bucket, take.key, create, |lot| change(lot, take.value))?;
        }
        Ok(())
    }

    fn change(
        &mut self,
        bucket: Bucket,
        key: LotKey,
        create: bool,
        change: impl FnOnce(&mut Lot) -> Result<(), String>,
    ) -> Result<(), String> {
        let index = match self.find(bucket, key) {
            Ok(index) => index,
            Err(index) if create => {
                self.0.insert(index, Lot { bucket, key, value: Amount::ZERO, held: Amount::ZERO });
                index
            }
            Err(_) => return Err(format!("no {bucket} lot of flow {} #{}", key.flow_id, key.index)),
        };
        change(&mut self.0[index])?;
        let lot = self.0[index];
        if lot.value.is_negative() || lot.held.is_negative() || lot.held > lot.value {
            return Err(format!(
                "{bucket} lot of flow {} would hold {} with {} held",
                key.flow_id,
                lot.value.minor(),
                lot.held.minor()
            ));
        }
        if lot.value.is_zero() {
            self.0.remove(index);
        }
        Ok(())
    }

    /// The value and the held value of all lots, per bucket (REAL zero).
    pub fn totals(&self) -> Option<(Buckets, Buckets)> {
        let value: Vec<Take> =
            self.0.iter().map(|lot| Take { bucket: lot.bucket, key: lot.key, value: lot.value }).collect();
        let held: Vec<Take> =
            self.0.iter().map(|lot| Take { bucket: lot.bucket, key: lot.key, value: lot.held }).collect();
        Some((takes_total(&value)?, takes_total(&held)?))
    }

    /// spec §11 `expiring`: value left (held included) per bucket and expiry, soonest first
    /// (GIFT before PRE on the same instant); lots without expiry are not listed.
    pub fn expiring(&self) -> Vec<(Bucket, Amount, Timestamp)> {
        let mut list: Vec<(Timestamp, Bucket, Amount)> = Vec::new();
        for lot in &self.0 {
            let Some(expire_time) = lot.key.expire_time() else { continue };
            match list.iter_mut().find(|(time, bucket, _)| *time == expire_time && *bucket == lot.bucket) {
                Some(entry) => entry.2 = entry.2.checked_add(lot.value).unwrap_or(entry.2),
                None => list.push((expire_time, lot.bucket, lot.value)),
            }
        }
        list.sort_by_key(|(time, bucket, _)| (*time, *bucket));
        list.into_iter().map(|(time, bucket, value)| (bucket, value, time)).collect()
    }
}

/// Lots moved by a transfer: what the TRANSFER_OUT took, merged per bucket and expiry in the
/// order taken, for the TRANSFER_IN to make on the other side.
pub fn moved_lots(takes: &[Take]) -> Vec<LotCredit> {
    let mut lots: Vec<LotCredit> = Vec::new();
    for take in takes {
        let expire_time = take.key.expire_time();
        match lots.iter_mut().find(|lot| lot.bucket == take.bucket && lot.expire_time == expire_time) {
            Some(lot) => lot.value = Amount::from_minor(lot.value.minor() + take.value.minor()),
            None => lots.push(LotCredit { bucket: take.bucket, value: take.value, expire_time }),
        }
    }
    lots
}
