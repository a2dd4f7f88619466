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
        Self::plain_iter(affected).collect()
    }

    /// [`LotCredit::plain`] without a `Vec`.
    pub fn plain_iter(affected: &Buckets) -> impl Iterator<Item = LotCredit> + '_ {
        LOT_BUCKETS.into_iter().filter(|bucket| affected.get(*bucket).is_positive()).map(|bucket| LotCredit {
            bucket,
            value: affected.get(bucket),
            expire_time: None,
        })
    }

    /// `lots` as a flow stores them: empty when they are the plain ones (none expires), so the
    /// common credit carries no list at all (see `Flow::lots`).
    pub fn stored(lots: Vec<LotCredit>) -> Vec<LotCredit> {
        if lots.iter().all(|lot| lot.expire_time.is_none()) {
            Vec::new()
        } else {
            lots
        }
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

/// Where a lot stands in the spending order, and which lot it is: two words that compare in
/// spending order (soonest expiry first, lots without expiry last, then the order made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LotKey {
    /// The expiry as an order-preserving `u64` (Unix seconds with the sign bit flipped), or
    /// `u64::MAX` for a lot without expiry.
    rank: u64,
    /// The flow that made the lot (high 48 bits) and the lot's index among its lots (low 16).
    made: u64,
}

/// Lots one flow may make at most (a TRANSFER_IN moving lots of that many expiries).
pub const LOTS_PER_FLOW_MAX: u32 = 1 << 16;
/// Flow ids a lot's key holds: 2⁴⁸, some 280 trillion flows.
pub const LOT_FLOW_ID_MAX: u64 = (1 << 48) - 1;

impl LotKey {
    /// `None` when `flow_id` or `index` is beyond what a key holds ([`LOT_FLOW_ID_MAX`],
    /// [`LOTS_PER_FLOW_MAX`]).
    pub fn new(expire_time: Option<Timestamp>, flow_id: u64, index: u32) -> Option<LotKey> {
        if flow_id > LOT_FLOW_ID_MAX || index >= LOTS_PER_FLOW_MAX {
            return None;
        }
        // A real expiry never reaches the top rank (times are years 0000 to 9999).
        let rank = expire_time.map_or(u64::MAX, |time| (time.0.cast_unsigned() ^ (1 << 63)).min(u64::MAX - 1));
        Some(LotKey { rank, made: flow_id << 16 | u64::from(index) })
    }

    pub fn expire_time(&self) -> Option<Timestamp> {
        (self.rank != u64::MAX).then(|| Timestamp((self.rank ^ (1 << 63)).cast_signed()))
    }

    /// The flow that made the lot.
    pub fn flow_id(&self) -> u64 {
        self.made >> 16
    }

    /// The lot's index among the lots its flow made.
    pub fn index(&self) -> u32 {
        u32::try_from(self.made & 0xFFFF).expect("16 bits")
    }

    /// Whether the lot's expiry is at or before `now`.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.expire_time().is_some_and(|expiry| expiry <= now)
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

/// One change a flow makes to an account's lots, planned against the lots as they are: `fold.rs`
/// checks a flow's changes on a copy of just the lots they touch, then applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LotOp {
    Take(Vec<Take>),
    Reserve(Vec<Take>),
    Unreserve(Vec<Take>),
    SpendReserved(Vec<Take>),
    Refill(Vec<Take>),
    Make(Take),
}

/// A flow's [`LotOp`]s: nearly always at most three (a CAPTURE's two, an ADJUST's take and two
/// lots), kept inline so that the fold allocates nothing for them; more (a TRANSFER_IN moving
/// lots of many expiries) spill to the heap.
#[derive(Debug, Default)]
pub(crate) struct LotOps {
    inline: [Option<LotOp>; 3],
    spill: Vec<LotOp>,
}

impl LotOps {
    pub(crate) fn len(&self) -> usize {
        self.inline.iter().filter(|op| op.is_some()).count() + self.spill.len()
    }

    pub(crate) fn push(&mut self, op: LotOp) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(op),
            None => self.spill.push(op),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &LotOp> {
        self.inline.iter().flatten().chain(&self.spill)
    }

    pub(crate) fn into_nth(self, index: usize) -> Option<LotOp> {
        self.inline.into_iter().flatten().chain(self.spill).nth(index)
    }
}

impl LotOp {
    /// Whether the op's takes come from what an order kept rather than from a plan against the
    /// lots as they are (which holds by construction).
    pub(crate) fn rests_on_an_order(&self) -> bool {
        matches!(self, LotOp::Unreserve(_) | LotOp::SpendReserved(_) | LotOp::Refill(_))
    }

    pub(crate) fn into_takes(self) -> Vec<Take> {
        match self {
            LotOp::Take(takes)
            | LotOp::Reserve(takes)
            | LotOp::Unreserve(takes)
            | LotOp::SpendReserved(takes)
            | LotOp::Refill(takes) => takes,
            LotOp::Make(take) => vec![take],
        }
    }

    fn takes(&self) -> &[Take] {
        match self {
            LotOp::Take(takes)
            | LotOp::Reserve(takes)
            | LotOp::Unreserve(takes)
            | LotOp::SpendReserved(takes)
            | LotOp::Refill(takes) => takes,
            LotOp::Make(take) => std::slice::from_ref(take),
        }
    }
}

/// A per-bucket sum that cannot overflow on the way (each part fits an amount).
#[derive(Default)]
struct WideSum([i128; 3]);

impl WideSum {
    fn add(&mut self, bucket: Bucket, amount: Amount) {
        let index = Bucket::ALL.iter().position(|each| *each == bucket).unwrap_or(0);
        self.0[index] += i128::from(amount.minor());
    }

    fn buckets(&self) -> Option<Buckets> {
        let [real, gift, pre] = self.0.map(|sum| i64::try_from(sum).ok().map(Amount::from_minor));
        Some(Buckets::new(real?, gift?, pre?))
    }
}

/// An account's lots in (bucket, key) order. Only lots with value left are kept: memory grows
/// with the lots that still hold value, not with history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lots {
    /// GIFT lots, then PRE lots, each in key order. A deque: debits drain the soonest lots, at
    /// the front.
    lots: std::collections::VecDeque<Lot>,
    /// How many of `lots` are GIFT's.
    gift: u32,
}

impl Lots {
    /// Lots from a list in the order [`Lots::iter`] gives them (GIFT, then PRE, each by key),
    /// as a snapshot stores them. `Err` names the first lot out of order, of REAL, without value
    /// or holding more than it has: the list comes from disk.
    pub fn from_lots(lots: Vec<Lot>) -> Result<Lots, String> {
        let rank = |lot: &Lot| (lot.bucket == Bucket::Pre, lot.key);
        if let Some(lot) = lots.iter().find(|lot| {
            lot.bucket == Bucket::Real || !lot.value.is_positive() || lot.held.is_negative() || lot.held > lot.value
        }) {
            return Err(format!("a lot that cannot be: {lot:?}"));
        }
        if let Some(pair) = lots.windows(2).find(|pair| rank(&pair[0]) >= rank(&pair[1])) {
            return Err(format!("lots out of order: {:?} before {:?}", pair[0], pair[1]));
        }
        let gift = lots.iter().filter(|lot| lot.bucket == Bucket::Gift).count();
        let gift = u32::try_from(gift).map_err(|_| "more than 2^32 lots")?;
        Ok(Lots { lots: lots.into(), gift })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Lot> {
        self.lots.iter()
    }

    pub fn len(&self) -> usize {
        self.lots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lots.is_empty()
    }

    fn bucket_range(&self, bucket: Bucket) -> std::ops::Range<usize> {
        let gift = self.gift as usize;
        match bucket {
            Bucket::Real => 0..0,
            Bucket::Gift => 0..gift,
            Bucket::Pre => gift..self.lots.len(),
        }
    }

    fn find(&self, bucket: Bucket, key: LotKey) -> Result<usize, usize> {
        let range = self.bucket_range(bucket);
        // Debits take from the soonest lot first: look there before searching.
        match self.lots.get(range.start) {
            Some(first) if range.start < range.end && first.key == key => return Ok(range.start),
            _ => {}
        }
        let (start, end) = (range.start, range.end);
        let mut low = start;
        let mut high = end;
        while low < high {
            let middle = low + (high - low) / 2;
            match self.lots[middle].key.cmp(&key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }

    fn insert(&mut self, index: usize, lot: Lot) {
        if lot.bucket == Bucket::Gift {
            self.gift += 1;
        }
        self.lots.insert(index, lot);
    }

    fn remove(&mut self, index: usize) {
        if let Some(lot) = self.lots.remove(index) {
            if lot.bucket == Bucket::Gift {
                self.gift -= 1;
            }
        }
    }

    /// Plans taking `amount` of available value from `bucket`: the lots made by `first_flow`
    /// first (an UNCHARGE takes from its CHARGE's own lots), then the soonest-expiring.
    /// `None` when the bucket has less available than `amount`.
    pub fn plan(&self, bucket: Bucket, amount: Amount, first_flow: Option<u64>) -> Option<Vec<Take>> {
        let mut takes = Vec::new();
        self.plan_into(&mut takes, bucket, amount, first_flow).then_some(takes)
    }

    /// [`Lots::plan`], appending to `takes`; `false` when the bucket has too little.
    fn plan_into(&self, takes: &mut Vec<Take>, bucket: Bucket, amount: Amount, first_flow: Option<u64>) -> bool {
        let mut left = amount.minor();
        if left == 0 {
            return true;
        }
        let range = self.bucket_range(bucket);
        let lots = self.lots.range(range);
        // Only an UNCHARGE has a first flow; every other debit walks the lots once, from the
        // soonest, and stops when it has enough (an account may hold many lots).
        let preferred = lots.clone().filter(|lot| first_flow.is_some_and(|first| lot.key.flow_id() == first));
        let others = lots.filter(|lot| first_flow.is_none_or(|first| lot.key.flow_id() != first));
        let preferred = first_flow.map(|_| preferred).into_iter().flatten();
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
        left == 0
    }

    /// [`Lots::plan`] for the GIFT and PRE parts of `amounts` (each ≥ 0), GIFT first.
    pub fn plan_buckets(&self, amounts: &Buckets, first_flow: Option<u64>) -> Option<Vec<Take>> {
        let mut takes = Vec::new();
        LOT_BUCKETS
            .into_iter()
            .all(|bucket| self.plan_into(&mut takes, bucket, amounts.get(bucket), first_flow))
            .then_some(takes)
    }

    /// Plans taking all available (unheld) value of the lots expired at `now`.
    pub fn plan_expired(&self, now: Timestamp) -> Vec<Take> {
        self.expired(now)
            .filter(|lot| lot.available().is_positive())
            .map(|lot| Take { bucket: lot.bucket, key: lot.key, value: lot.available() })
            .collect()
    }

    /// What a sweep at `now` would expire, per bucket.
    pub fn expirable(&self, now: Timestamp) -> Buckets {
        takes_total(&self.plan_expired(now)).unwrap_or(Buckets::ZERO)
    }

    /// Whether some lot expired at `now` still has unheld value.
    pub fn has_expirable(&self, now: Timestamp) -> bool {
        self.expired(now).any(|lot| lot.available().is_positive())
    }

    /// The lots expired at `now`: in key order they lead each bucket, so the walk stops at the
    /// first that is not (the sweep asks this of every account).
    fn expired(&self, now: Timestamp) -> impl Iterator<Item = &Lot> {
        LOT_BUCKETS.into_iter().flat_map(move |bucket| {
            self.lots.range(self.bucket_range(bucket)).take_while(move |lot| lot.key.expired_at(now))
        })
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
                self.insert(index, Lot { bucket, key, value: Amount::ZERO, held: Amount::ZERO });
                index
            }
            Err(_) => return Err(format!("no {bucket} lot of flow {} ({key:?})", key.flow_id())),
        };
        change(&mut self.lots[index])?;
        let lot = self.lots[index];
        if lot.value.is_negative() || lot.held.is_negative() || lot.held > lot.value {
            return Err(format!(
                "{bucket} lot of flow {} would hold {} with {} held",
                key.flow_id(),
                lot.value.minor(),
                lot.held.minor()
            ));
        }
        if lot.value.is_zero() {
            self.remove(index);
        }
        Ok(())
    }

    /// Applies one planned change.
    pub(crate) fn apply(&mut self, op: &LotOp) -> Result<(), String> {
        match op {
            LotOp::Take(takes) => self.take(takes),
            LotOp::Reserve(takes) => self.reserve(takes),
            LotOp::Unreserve(takes) => self.unreserve(takes),
            LotOp::SpendReserved(takes) => self.spend_reserved(takes),
            LotOp::Refill(takes) => self.refill(takes),
            LotOp::Make(take) => self.make(take.bucket, take.key, take.value),
        }
    }

    /// Whether `ops` apply, in order, without changing anything: tried on a copy of only the
    /// lots they name (a flow names a few; an account may have many).
    pub(crate) fn check(&self, ops: &LotOps) -> Result<(), String> {
        let mut touched = Lots::default();
        for take in ops.iter().flat_map(LotOp::takes) {
            if let (Ok(index), Err(at)) = (self.find(take.bucket, take.key), touched.find(take.bucket, take.key)) {
                touched.insert(at, self.lots[index]);
            }
        }
        ops.iter().try_for_each(|op| touched.apply(op))
    }

    /// The value and the held value of all lots, per bucket (REAL zero).
    pub fn totals(&self) -> Option<(Buckets, Buckets)> {
        let (mut value, mut held) = (WideSum::default(), WideSum::default());
        for lot in &self.lots {
            value.add(lot.bucket, lot.value);
            held.add(lot.bucket, lot.held);
        }
        Some((value.buckets()?, held.buckets()?))
    }

    /// spec §11 `expiring`: value left (held included) per bucket and expiry, soonest first
    /// (GIFT before PRE on the same instant); lots without expiry are not listed.
    pub fn expiring(&self) -> Vec<(Bucket, Amount, Timestamp)> {
        let mut list: Vec<(Timestamp, Bucket, Amount)> = Vec::new();
        for lot in &self.lots {
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
