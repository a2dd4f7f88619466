//! Expiry lots (spec §11, §13), as plainly as they can be kept: every lot an account ever had,
//! in the order it was made, in one `Vec` that only grows. A lot emptied by a debit stays in
//! it with value 0, so that a give-back can return to it "with its expiry".
//!
//! Nothing here calls purse-core: the spending order, holds, give-backs and the sweep are
//! worked out again from the spec's words. A lot is named by its index in the account's `Vec`
//! (which is also its creation order, the spec's tie-break).

/// The buckets that hold lots: REAL (paid principal) never expires and has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LotBucket {
    Gift,
    Pre,
}

impl LotBucket {
    pub const BOTH: [LotBucket; 2] = [LotBucket::Gift, LotBucket::Pre];

    pub fn name(self) -> &'static str {
        match self {
            LotBucket::Gift => "GIFT",
            LotBucket::Pre => "PRE",
        }
    }
}

/// One credit to GIFT or PRE: what is left of it, and how much of that open holds reserve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelLot {
    pub bucket: LotBucket,
    pub value: i64,
    /// Never more than `value` (spec §11: held lot value cannot expire while held).
    pub held: i64,
    /// Seconds; `None`: never expires.
    pub expire_time: Option<i64>,
}

impl ModelLot {
    pub fn available(&self) -> i64 {
        self.value - self.held
    }

    pub fn expired_at(&self, time: i64) -> bool {
        self.expire_time.is_some_and(|expire| expire <= time)
    }
}

/// `amount` of the lot at `index` of the account's lots.
pub type Piece = (usize, i64);

/// A lot to make: bucket, value, expiry.
pub type NewLot = (LotBucket, i64, Option<i64>);

/// The indices of `bucket`'s lots in spending order (spec §11): the soonest expiry first,
/// lots without expiry last, ties in the order the lots were made.
pub fn spending_order(lots: &[ModelLot], bucket: LotBucket) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..lots.len()).filter(|&index| lots[index].bucket == bucket).collect();
    indices.sort_by_key(|&index| (lots[index].expire_time.is_none(), lots[index].expire_time.unwrap_or(0), index));
    indices
}

/// Takes (or reserves) `amount` of the available value of `bucket`: the lots in `first` before
/// all others (an UNCHARGE takes its CHARGE's own lots first), each group in spending order.
/// `None` when the bucket has less available than `amount`.
pub fn plan(lots: &[ModelLot], bucket: LotBucket, amount: i64, first: &[usize]) -> Option<Vec<Piece>> {
    let order = spending_order(lots, bucket);
    let (preferred, others): (Vec<usize>, Vec<usize>) = order.into_iter().partition(|index| first.contains(index));
    let mut left = amount;
    let mut pieces = Vec::new();
    for index in preferred.into_iter().chain(others) {
        if left == 0 {
            break;
        }
        let part = lots[index].available().min(left);
        if part > 0 {
            pieces.push((index, part));
            left -= part;
        }
    }
    (left == 0).then_some(pieces)
}

/// [`plan`] for a GIFT and a PRE amount, GIFT first.
pub fn plan_both(lots: &[ModelLot], gift: i64, pre: i64, first: &[usize]) -> Option<Vec<Piece>> {
    let mut pieces = plan(lots, LotBucket::Gift, gift, first)?;
    pieces.extend(plan(lots, LotBucket::Pre, pre, first)?);
    Some(pieces)
}

/// All unheld value of the lots expired at `time` (spec §11 EXPIRE).
pub fn plan_expired(lots: &[ModelLot], time: i64) -> Vec<Piece> {
    (0..lots.len())
        .filter(|&index| lots[index].expired_at(time) && lots[index].available() > 0)
        .map(|index| (index, lots[index].available()))
        .collect()
}

/// What `pieces` add up to in `bucket`.
pub fn sum(lots: &[ModelLot], pieces: &[Piece], bucket: LotBucket) -> i64 {
    pieces.iter().filter(|(index, _)| lots[*index].bucket == bucket).map(|(_, amount)| amount).sum()
}

/// Splits the pieces an order reserved (a HOLD) into what a CAPTURE spends, `spend` per
/// bucket in the order they were reserved (spec §13), and what it frees.
pub fn split_reserved(lots: &[ModelLot], reserved: &[Piece], gift: i64, pre: i64) -> (Vec<Piece>, Vec<Piece>) {
    let (mut spent, mut freed) = (Vec::new(), Vec::new());
    let mut left = [gift, pre];
    for &(index, amount) in reserved {
        let slot = &mut left[usize::from(lots[index].bucket == LotBucket::Pre)];
        let part = amount.min(*slot);
        *slot -= part;
        if part > 0 {
            spent.push((index, part));
        }
        if amount > part {
            freed.push((index, amount - part));
        }
    }
    assert_eq!(left, [0, 0], "a CAPTURE spends only what its HOLD reserved in lots");
    (spent, freed)
}

/// A give-back of `gift` and `pre` to the lots an order took from (`taken`, in the order
/// taken): per bucket the last taken first (spec §13). Returns the pieces to refill and what
/// the order keeps after it.
pub fn split_refill(lots: &[ModelLot], taken: &[Piece], gift: i64, pre: i64) -> (Vec<Piece>, Vec<Piece>) {
    let mut left = [gift, pre];
    let mut rest: Vec<Piece> = taken.to_vec();
    let mut refill = Vec::new();
    for (index, amount) in rest.iter_mut().rev() {
        let slot = &mut left[usize::from(lots[*index].bucket == LotBucket::Pre)];
        let part = (*amount).min(*slot);
        if part > 0 {
            refill.push((*index, part));
            *amount -= part;
            *slot -= part;
        }
    }
    assert_eq!(left, [0, 0], "an UNDEDUCT gives back only what its order took from lots");
    rest.retain(|(_, amount)| *amount > 0);
    (refill, rest)
}

/// The lots a transfer makes on its destination: what it took, with each lot's expiry. Lots of
/// one bucket and expiry are made as one, in the order taken (spec is silent on whether the
/// destination gets one lot per source lot; purse-core makes one per bucket and expiry, and
/// nothing but the granularity of the lot list can tell the two apart: transferred lots are
/// no CHARGE's own, and within one expiry the order of the lots made together is theirs).
pub fn moved(lots: &[ModelLot], pieces: &[Piece]) -> Vec<NewLot> {
    let mut made: Vec<NewLot> = Vec::new();
    for &(index, amount) in pieces {
        let (bucket, expire_time) = (lots[index].bucket, lots[index].expire_time);
        match made.iter_mut().find(|(b, _, e)| *b == bucket && *e == expire_time) {
            Some(lot) => lot.1 += amount,
            None => made.push((bucket, amount, expire_time)),
        }
    }
    made
}

/// What a flow does to one account's lots, worked out before anything changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LotChange {
    /// Value that leaves its lot (a debit, EXPIRE, CLEAR, a transfer out).
    pub take: Vec<Piece>,
    /// Value a HOLD reserves.
    pub reserve: Vec<Piece>,
    /// Reserved value a CAPTURE spends (it leaves the lot and the reservation).
    pub spend: Vec<Piece>,
    /// Reserved value freed (the rest of a CAPTURE, a RELEASE).
    pub free: Vec<Piece>,
    /// Value given back to the lots it came from (UNDEDUCT).
    pub refill: Vec<Piece>,
    /// New lots of this account.
    pub make: Vec<NewLot>,
}

impl LotChange {
    /// Applies the change, checking every lot stays whole: value ≥ held ≥ 0.
    pub fn apply(&self, lots: &mut Vec<ModelLot>) {
        for &(index, amount) in &self.take {
            lots[index].value -= amount;
        }
        for &(index, amount) in &self.reserve {
            lots[index].held += amount;
        }
        for &(index, amount) in &self.spend {
            lots[index].value -= amount;
            lots[index].held -= amount;
        }
        for &(index, amount) in &self.free {
            lots[index].held -= amount;
        }
        for &(index, amount) in &self.refill {
            lots[index].value += amount;
        }
        for &(bucket, value, expire_time) in &self.make {
            lots.push(ModelLot { bucket, value, held: 0, expire_time });
        }
        for lot in lots.iter() {
            assert!(0 <= lot.held && lot.held <= lot.value, "the model broke a lot: {lot:?}");
        }
    }
}

/// The lots that still hold value, per bucket in spending order, GIFT before PRE: how
/// purse-core lists them.
pub fn listed(lots: &[ModelLot]) -> Vec<ModelLot> {
    LotBucket::BOTH
        .into_iter()
        .flat_map(|bucket| spending_order(lots, bucket))
        .map(|index| lots[index])
        .filter(|lot| lot.value > 0)
        .collect()
}

/// `expire:<TIME>:<subject>` with TIME as `YYYY-MM-DD HH:MM:SS` at `offset_seconds` east of UTC
/// (spec §11's deterministic sweep ids).
pub fn sweep_id(time: i64, offset_seconds: i64, subject: &str) -> String {
    format!("expire:{}:{subject}", local_time(time, offset_seconds))
}

/// `YYYY-MM-DD HH:MM:SS` of `time` at `offset_seconds` east of UTC, by the proleptic Gregorian
/// calendar (days to civil date: H. Hinnant's `civil_from_days`).
pub fn local_time(time: i64, offset_seconds: i64) -> String {
    let local = time + offset_seconds;
    let (days, seconds) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_of_known_instants() {
        assert_eq!(local_time(0, 0), "1970-01-01 00:00:00");
        // 2027-02-01 00:00:00 +08:00.
        assert_eq!(local_time(1_801_411_200, 8 * 3600), "2027-02-01 00:00:00");
        assert_eq!(local_time(951_782_400, 0), "2000-02-29 00:00:00");
        assert_eq!(local_time(-1, 0), "1969-12-31 23:59:59");
    }

    #[test]
    fn spending_order_is_soonest_first_never_last_ties_by_creation() {
        let lot = |expire_time| ModelLot { bucket: LotBucket::Gift, value: 1, held: 0, expire_time };
        let lots = [lot(None), lot(Some(20)), lot(Some(10)), lot(Some(20)), lot(None)];
        assert_eq!(spending_order(&lots, LotBucket::Gift), [2, 1, 3, 0, 4]);
        assert_eq!(plan(&lots, LotBucket::Gift, 2, &[4]), Some(vec![(4, 1), (2, 1)]));
        assert_eq!(plan(&lots, LotBucket::Gift, 6, &[]), None);
    }
}
