//! A deliberately plain reference model of spec §2–§4 and §8–§11 (holds, account status,
//! transfers, expiry lots, the sweep and CLEAR) with the precise points of §13, written from the
//! spec alone (`docs/spec.md`).
//!
//! It takes purse-core's [`Command`] as input (the data type only) and computes its own result:
//! `Ok(`[`Outcome`]`)` (the change per bucket and of held value, and a transfer's destination
//! side) or `Err(code)`. It never calls purse-core's `decide`, `apply`, rules or split
//! functions; amounts are plain `i64` minor units, sums are `i128`.
//!
//! Checks run in spec §13's order, so both sides name the same code for a command that is wrong
//! in several ways: (1) string arguments (ids starting as the sweep's are reserved), (2) action
//! arguments (a remark where one is required, a hold's expiry, a transfer to itself) and lot
//! expiries, (3) amounts (`arguments.rs`), then the sweep's own ids and time, (4) order-id
//! uniqueness, (5) the account:
//! existence, then status (`ACCOUNT_CLOSED` before `ACCOUNT_FROZEN`, over both accounts of a
//! transfer), then card and brand, (6) per type: the referenced order (`ORDER_NOT_FOUND`,
//! `INVALID_ARGUMENT`, `ALREADY_REVERSED`, `HOLD_EXPIRED`), a status change's precondition, a
//! transfer's destination, then amounts against what is available, (7) the resulting balance:
//! a bucket outside `i64` is `INVALID_AMOUNT`, then a bucket negative or below what is held in
//! it is `INSUFFICIENT_BALANCE`, then a (true, unbounded) TOTAL or lifetime totals outside `i64`
//! are `INVALID_AMOUNT`. The range rule is spec §1's "a value outside the range"; the limits on
//! order ids, reference ids, remark and ext_info are purse-core's choices (docs/spec.md is
//! silent). Every point where docs/spec.md leaves a choice is marked "spec is silent" below.
//!
//! Lots (spec §11) are kept in `lots.rs` as plain `Vec`s, and what a command does to them is
//! worked out in `lot_change.rs` once its bucket amounts are decided: lots only say which value
//! inside GIFT or PRE goes first, never how much of each bucket a command moves.

mod arguments;
mod arith;
mod lot_change;
pub mod lots;

use std::collections::BTreeMap;

use lots::{LotBucket, LotChange, ModelLot, NewLot, Piece};

use purse_core::{Action, ClearBuckets, Command};

pub use arith::{deduct_split, gift_for, half_up, undeduct_split, BASIS_POINTS};

pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
pub const INVALID_AMOUNT: &str = "INVALID_AMOUNT";
pub const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";
pub const ACCOUNT_NOT_FOUND: &str = "ACCOUNT_NOT_FOUND";
pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
pub const DUPLICATE_ORDER: &str = "DUPLICATE_ORDER";
pub const REFUND_EXCEEDS_ORIGINAL: &str = "REFUND_EXCEEDS_ORIGINAL";
pub const ALREADY_REVERSED: &str = "ALREADY_REVERSED";
pub const HOLD_EXPIRED: &str = "HOLD_EXPIRED";
pub const ACCOUNT_FROZEN: &str = "ACCOUNT_FROZEN";
pub const ACCOUNT_CLOSED: &str = "ACCOUNT_CLOSED";
/// Not an error: the command had nothing to do (an EXPIRE with nothing expired, an opening
/// balance for an account that exists). purse-core answers it with an error whose
/// `is_skip()` holds (code `INVALID_ARGUMENT`); a group skips it and goes on.
pub const SKIP: &str = "SKIP";

/// spec §11: the sweep writes under `expire:<TIME>:<account or hold>`; other commands may not
/// use ids that start so (purse-core refuses them as `INVALID_ARGUMENT`; spec is silent on the
/// code).
pub const SWEEP_PREFIX: &str = "expire:";
/// The longest id the sweep writes: the prefix, a 19-character time, a colon and a hold's order
/// id (purse-core's limit; spec is silent).
pub const SWEEP_ID_CHARS: usize = SWEEP_PREFIX.len() + 19 + 1 + ORDER_ID_CHARS;
/// The ledger's time zone, seconds east of UTC (spec §2: default +08:00).
pub const ZONE_OFFSET_SECONDS: i64 = 8 * 3600;
/// spec §13: `gift_valid_days` counts days of 24 h.
pub const DAY_SECONDS: i64 = 86_400;

/// spec §3: `request_id` is 1–128 characters.
pub const REQUEST_ID_CHARS: usize = 128;
/// spec §2: `account_id` is 1–64 characters.
pub const ACCOUNT_ID_CHARS: usize = 64;
/// Not in the docs/spec.md; purse-core's choice (the same as `request_id`).
pub const ORDER_ID_CHARS: usize = 128;
/// Not in the docs/spec.md; purse-core's choice for card, brand, shop and operator ids.
pub const REFERENCE_ID_CHARS: usize = 64;
/// Not in the docs/spec.md; purse-core's choice.
pub const REMARK_CHARS: usize = 512;
/// purse-core's limits on a provider record's source (provider name, record id).
pub const PROVIDER_CHARS: usize = 32;
pub const RECORD_ID_CHARS: usize = 128;
/// Not in the docs/spec.md; purse-core's choice, in bytes.
pub const EXT_INFO_BYTES: usize = 4096;

/// One signed amount per bucket, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Parts {
    pub real: i64,
    pub gift: i64,
    pub pre: i64,
}

impl Parts {
    pub const fn new(real: i64, gift: i64, pre: i64) -> Parts {
        Parts { real, gift, pre }
    }

    /// `TOTAL = REAL + GIFT + PRE`, never overflowing.
    pub fn total(self) -> i128 {
        i128::from(self.real) + i128::from(self.gift) + i128::from(self.pre)
    }

    pub fn is_zero(self) -> bool {
        self.real == 0 && self.gift == 0 && self.pre == 0
    }

    pub fn to_array(self) -> [i64; 3] {
        [self.real, self.gift, self.pre]
    }

    fn wide(self) -> [i128; 3] {
        [i128::from(self.real), i128::from(self.gift), i128::from(self.pre)]
    }

    fn negated(self) -> Parts {
        Parts::new(-self.real, -self.gift, -self.pre)
    }
}

/// The flow types of spec §2, §8, §9 and §10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Deduct,
    Undeduct,
    Uncharge,
    Import,
    Adjust,
    Hold,
    Capture,
    Release,
    Freeze,
    Unfreeze,
    Close,
    /// A transfer's source side; the order a transfer writes is of this kind.
    TransferOut,
    /// A transfer's destination side: a flow, never a command of its own.
    TransferIn,
    /// The sweep's take of expired lot value (spec §11).
    Expire,
    /// All that is available in GIFT, PRE or both (spec §11).
    Clear,
}

impl Kind {
    pub const ALL: [Kind; 16] = [
        Kind::Charge,
        Kind::Deduct,
        Kind::Undeduct,
        Kind::Uncharge,
        Kind::Import,
        Kind::Adjust,
        Kind::Hold,
        Kind::Capture,
        Kind::Release,
        Kind::Freeze,
        Kind::Unfreeze,
        Kind::Close,
        Kind::TransferOut,
        Kind::TransferIn,
        Kind::Expire,
        Kind::Clear,
    ];

    /// The kind of the (first) flow a command writes; a provider's record is of the type it
    /// names (only the six of spec §2 pass `decide`).
    pub fn of(action: &Action) -> Kind {
        match action {
            Action::Charge { .. } => Kind::Charge,
            Action::Deduct { .. } => Kind::Deduct,
            Action::Undeduct { .. } => Kind::Undeduct,
            Action::Uncharge { .. } => Kind::Uncharge,
            Action::Import { .. } => Kind::Import,
            Action::Adjust { .. } => Kind::Adjust,
            Action::Recorded { flow_type, .. } => {
                Kind::named(flow_type.as_str()).expect("every purse-core flow type has a kind here")
            }
            Action::Hold { .. } => Kind::Hold,
            Action::Capture { .. } => Kind::Capture,
            Action::Release { .. } => Kind::Release,
            Action::Freeze => Kind::Freeze,
            Action::Unfreeze => Kind::Unfreeze,
            Action::Close => Kind::Close,
            Action::Transfer { .. } => Kind::TransferOut,
            // An opening balance writes an IMPORT flow (for a new account only).
            Action::Open { .. } => Kind::Import,
            Action::Clear { .. } => Kind::Clear,
            Action::Expire { .. } => Kind::Expire,
            // The sweep's release of an expired hold is a RELEASE (spec §11).
            Action::ExpireHold { .. } => Kind::Release,
            // A transfer between partitions (purse-cluster): its steps' flow types.
            Action::TransferHold { .. } => Kind::Hold,
            Action::TransferCredit { .. } => Kind::TransferIn,
            Action::TransferSettle { .. } => Kind::TransferOut,
            Action::TransferAbort { .. } => Kind::Release,
        }
    }

    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Charge => "CHARGE",
            Kind::Deduct => "DEDUCT",
            Kind::Undeduct => "UNDEDUCT",
            Kind::Uncharge => "UNCHARGE",
            Kind::Import => "IMPORT",
            Kind::Adjust => "ADJUST",
            Kind::Hold => "HOLD",
            Kind::Capture => "CAPTURE",
            Kind::Release => "RELEASE",
            Kind::Freeze => "FREEZE",
            Kind::Unfreeze => "UNFREEZE",
            Kind::Close => "CLOSE",
            Kind::TransferOut => "TRANSFER_OUT",
            Kind::TransferIn => "TRANSFER_IN",
            Kind::Expire => "EXPIRE",
            Kind::Clear => "CLEAR",
        }
    }

    /// spec §9: what a FROZEN account accepts (the sweep's RELEASE is a RELEASE; its EXPIRE is
    /// accepted too; CLEAR is not). FREEZE passes too (§13), to be refused as an argument error.
    fn passes_frozen(self) -> bool {
        matches!(
            self,
            Kind::Undeduct | Kind::Release | Kind::Adjust | Kind::Unfreeze | Kind::Close | Kind::Freeze | Kind::Expire
        )
    }

    /// Whether a flow of this kind counts in the lifetime totals (spec §2; §10: transfers do not).
    fn counts_in_lifetime(self) -> bool {
        matches!(self, Kind::Charge | Kind::Import | Kind::Uncharge)
    }
}

/// spec §9 account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Active,
    Frozen,
    Closed,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Frozen => "FROZEN",
            Status::Closed => "CLOSED",
        }
    }
}

/// spec §4 deduction orders (PRE is always spent first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeductOrder {
    #[default]
    Percent,
    RealFirst,
    GiftFirst,
}

/// spec §4 gift rule. Tiers are `(real_value, gift)`: the gift is an amount (CUSTOMIZED) or
/// basis points of the charged REAL (PROPORTIONAL). Tier order does not matter here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GiftRule {
    #[default]
    None,
    Customized {
        full: bool,
        tiers: Vec<(i64, i64)>,
    },
    Proportional {
        tiers: Vec<(i64, i64)>,
    },
}

/// One brand's rules (or the ledger default's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rules {
    pub order: DeductOrder,
    pub gift: GiftRule,
    /// spec §11: a CHARGE's gift without `gift_expire_time` expires this many days after the
    /// CHARGE's order_time; `None`: it does not.
    pub gift_valid_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAccount {
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    /// What the account owns, held value included.
    pub balance: Parts,
    /// What its open holds reserve, per bucket (spec §8).
    pub held: Parts,
    /// What CHARGE and IMPORT put in, less what UNCHARGE took back.
    pub lifetime: Parts,
    pub status: Status,
    /// How many of its holds are neither captured nor released.
    pub open_holds: u32,
    /// Every lot of GIFT and PRE it ever had, in the order made (spec §11), emptied ones too.
    lots: Vec<ModelLot>,
}

impl ModelAccount {
    fn opened(card_id: Option<String>, brand_id: Option<String>) -> ModelAccount {
        ModelAccount {
            card_id,
            brand_id,
            balance: Parts::default(),
            held: Parts::default(),
            lifetime: Parts::default(),
            status: Status::Active,
            open_holds: 0,
            lots: Vec::new(),
        }
    }

    /// The lots that hold value, GIFT then PRE, each in spending order (spec §11).
    pub fn lots(&self) -> Vec<ModelLot> {
        lots::listed(&self.lots)
    }

    /// spec §11 `expiring`: `(bucket, value, expire_time)` for every lot with an expiry and
    /// value left (held value included, §13), lots of one bucket and expiry summed, soonest
    /// first; GIFT before PRE at one instant (spec is silent; purse-core's choice).
    pub fn expiring(&self) -> Vec<(LotBucket, i64, i64)> {
        let mut listed: Vec<(i64, LotBucket, i64)> = Vec::new();
        for lot in lots::listed(&self.lots) {
            let Some(expire_time) = lot.expire_time else { continue };
            match listed.iter_mut().find(|(time, bucket, _)| *time == expire_time && *bucket == lot.bucket) {
                Some(entry) => entry.2 += lot.value,
                None => listed.push((expire_time, lot.bucket, lot.value)),
            }
        }
        listed.sort_unstable();
        listed.into_iter().map(|(time, bucket, value)| (bucket, value, time)).collect()
    }

    /// spec §8: available = balance − held, per bucket.
    pub fn available(&self) -> Parts {
        sub(self.balance, self.held)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOrder {
    pub kind: Kind,
    /// The account it was written on (a transfer's: the source).
    pub account_id: String,
    /// Positive per bucket: what a CHARGE added; what a DEDUCT, CAPTURE or TRANSFER_OUT took;
    /// what a HOLD reserved. Else the flow's `affected`.
    pub moved: Parts,
    /// For a DEDUCT or CAPTURE: what UNDEDUCTs gave back so far.
    pub refunded: Parts,
    /// For a CHARGE: whether an UNCHARGE reversed it. For a HOLD: whether a CAPTURE or RELEASE
    /// resolved it.
    pub reversed: bool,
    /// For a HOLD: its `expire_time` (seconds).
    pub expire_time: Option<i64>,
    /// What it took from which lot of its account, while that can be given back: a DEDUCT's
    /// or CAPTURE's unrefunded takes, a HOLD's reservations, in the order taken.
    lot_takes: Vec<Piece>,
    /// For a CHARGE: the lots it made (an UNCHARGE takes from them first).
    own_lots: Vec<usize>,
}

/// What an accepted command did: the change of each bucket and of held value on its account,
/// and for a transfer what the TRANSFER_IN did on the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub affected: Parts,
    pub held: Parts,
    pub transfer_in: Option<TransferIn>,
}

/// The destination side of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferIn {
    pub account_id: String,
    pub affected: Parts,
    /// Whether the transfer opened the destination.
    pub opened: bool,
}

/// The whole model: accounts, every order id ever written, and the rules.
#[derive(Debug, Clone, Default)]
pub struct Model {
    accounts: BTreeMap<String, ModelAccount>,
    orders: BTreeMap<String, ModelOrder>,
    /// Order ids in the order they were written.
    order_ids: Vec<String>,
    /// `None`: the ledger default.
    rules: BTreeMap<Option<String>, Rules>,
}

/// What the model decided for an accepted command, before it is committed.
struct Decision {
    kind: Kind,
    affected: Parts,
    held: Parts,
    card_id: Option<String>,
    brand_id: Option<String>,
    source: Option<String>,
    expire_time: Option<i64>,
    /// A transfer's destination: its id, and the card and brand it opens with if new.
    destination: Option<(String, Option<String>, Option<String>)>,
    /// What it does to the account's lots, and the lots a transfer makes on its destination.
    lots: LotChange,
    destination_lots: Vec<NewLot>,
    /// What the new order keeps of its lot takes (DEDUCT, CAPTURE, HOLD).
    order_takes: Vec<Piece>,
    /// The referenced order's lot takes after this command (UNDEDUCT, CAPTURE, RELEASE).
    source_takes: Option<Vec<Piece>>,
}

fn fits(value: i128) -> bool {
    i64::try_from(value).is_ok()
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    pub fn account(&self, account_id: &str) -> Option<&ModelAccount> {
        self.accounts.get(account_id)
    }

    pub fn accounts(&self) -> impl Iterator<Item = (&String, &ModelAccount)> {
        self.accounts.iter()
    }

    pub fn order(&self, outer_order_id: &str) -> Option<&ModelOrder> {
        self.orders.get(outer_order_id)
    }

    /// Every order id written so far, oldest first.
    pub fn order_ids(&self) -> &[String] {
        &self.order_ids
    }

    /// Per bucket, the parts of every hold not yet resolved, summed over the ledger.
    pub fn open_hold_parts(&self) -> [i128; 3] {
        let mut sum = [0i128; 3];
        for order in self.orders.values().filter(|order| order.kind == Kind::Hold && !order.reversed) {
            for (slot, part) in sum.iter_mut().zip(order.moved.wide()) {
                *slot += part;
            }
        }
        sum
    }

    /// The open HOLDs whose `expire_time` is at or before `time`, oldest first: what a sweep at
    /// `time` releases, as `(account_id, hold order id)`.
    pub fn expired_open_holds(&self, time: i64) -> Vec<(String, String)> {
        self.order_ids
            .iter()
            .filter_map(|id| {
                let order = &self.orders[id];
                let expired = order.kind == Kind::Hold
                    && !order.reversed
                    && order.expire_time.is_some_and(|expire_time| expire_time <= time);
                expired.then(|| (order.account_id.clone(), id.clone()))
            })
            .collect()
    }

    /// Sets the rules of `brand_id` (`None`: the ledger default).
    pub fn set_rules(&mut self, brand_id: Option<&str>, rules: Rules) {
        self.rules.insert(brand_id.map(str::to_owned), rules);
    }

    /// The rules in force for an account of `brand_id`: the brand's own, else the ledger
    /// default, else PERCENT_DEDUCT with no gift.
    pub fn rules_for(&self, brand_id: Option<&str>) -> Rules {
        if let Some(brand) = brand_id {
            if let Some(rules) = self.rules.get(&Some(brand.to_owned())) {
                return rules.clone();
            }
        }
        self.rules.get(&None).cloned().unwrap_or_default()
    }

    /// Runs one command at time `now` (seconds, as purse-core's `Timestamp`). On success the
    /// model changes and what the command did is returned; on failure nothing changes and the
    /// error code is returned.
    pub fn execute(&mut self, command: &Command, now: i64) -> Result<Outcome, &'static str> {
        let decision = self.decide(command, now)?;
        let outcome = Outcome {
            affected: decision.affected,
            held: decision.held,
            transfer_in: decision.destination.as_ref().map(|(to, _, _)| TransferIn {
                account_id: to.clone(),
                affected: decision.affected.negated(),
                opened: !self.accounts.contains_key(to),
            }),
        };
        self.commit(command, decision);
        Ok(outcome)
    }

    fn decide(&self, command: &Command, now: i64) -> Result<Decision, &'static str> {
        let kind = Kind::of(&command.action);
        let order_time = command.biz_date.map_or(now, |time| time.0);

        self.arguments(command, now)?;
        // The sweep's commands carry its ids, its time and the remark EXPIRED (spec §11).
        let sweep = match &command.action {
            Action::Expire { now } => Some((now.0, command.account_id.as_str())),
            Action::ExpireHold { src_outer_order_id, now } => Some((now.0, src_outer_order_id.as_str())),
            _ => None,
        };
        if let Some((time, subject)) = sweep {
            let id = lots::sweep_id(time, ZONE_OFFSET_SECONDS, subject);
            let remark = command.remark.as_deref() == Some("EXPIRED");
            if command.request_id != id
                || command.outer_order_id != id
                || command.biz_date.map(|t| t.0) != Some(time)
                || !remark
            {
                return Err(INVALID_ARGUMENT);
            }
        }

        // (4) the order id is unique over all writes
        if self.orders.contains_key(&command.outer_order_id) {
            return Err(DUPLICATE_ORDER);
        }

        // (5) the account: existence, status (both sides of a transfer), card and brand
        let destination = match &command.action {
            Action::Transfer { to_account_id, .. } => Some((to_account_id, self.accounts.get(to_account_id))),
            _ => None,
        };
        let account = match self.accounts.get(&command.account_id) {
            // An opening balance is for a new account only: on any other it does nothing.
            Some(_) if matches!(command.action, Action::Open { .. }) => return Err(SKIP),
            Some(account) => Some(account),
            None if matches!(kind, Kind::Charge | Kind::Import) => None,
            None => return Err(ACCOUNT_NOT_FOUND),
        };
        // A provider's record is held to the status rules of the type it states (spec is silent).
        let statuses = [account.map(|account| account.status), destination.and_then(|(_, to)| to.map(|to| to.status))];
        // spec §13: ACCOUNT_CLOSED, then ACCOUNT_FROZEN, over every account the write touches.
        if statuses.contains(&Some(Status::Closed)) {
            return Err(ACCOUNT_CLOSED);
        }
        let frozen_source = statuses[0] == Some(Status::Frozen) && !kind.passes_frozen();
        if frozen_source || statuses[1] == Some(Status::Frozen) {
            return Err(ACCOUNT_FROZEN);
        }
        let (card_id, brand_id, before, held, lifetime) = match account {
            Some(account) => {
                // Card and brand after status (spec is silent: §13 names neither). A transfer's
                // card_id names the destination's card (spec §10), checked below.
                if let (Some(card), false) = (&command.card_id, kind == Kind::TransferOut) {
                    if account.card_id.as_ref() != Some(card) {
                        return Err(INVALID_ARGUMENT);
                    }
                }
                if let Some(brand) = &command.brand_id {
                    if account.brand_id.as_ref() != Some(brand) {
                        return Err(INVALID_ARGUMENT);
                    }
                }
                (account.card_id.clone(), account.brand_id.clone(), account.balance, account.held, account.lifetime)
            }
            None => (
                command.card_id.clone(),
                command.brand_id.clone(),
                Parts::default(),
                Parts::default(),
                Parts::default(),
            ),
        };
        let available = sub(before, held);
        let rules = self.rules_for(brand_id.as_deref());

        // (6) per type: the referenced order, then amounts against balances
        let mut source = None;
        let mut held_change = Parts::default();
        let mut transfer_to = None;
        let affected = match &command.action {
            Action::Charge { real, gift, pre, trigger_gift } => {
                let gift = if *trigger_gift {
                    let gift = gift_for(&rules.gift, real.minor());
                    i64::try_from(gift).map_err(|_| INVALID_AMOUNT)?
                } else {
                    gift.map_or(0, |gift| gift.minor())
                };
                let affected = Parts::new(real.minor(), gift, pre.minor());
                if affected.is_zero() {
                    return Err(INVALID_AMOUNT);
                }
                affected
            }
            Action::Import { real, gift, pre }
            | Action::Open { real, gift, pre }
            | Action::Adjust { real, gift, pre } => Parts::new(real.minor(), gift.minor(), pre.minor()),
            Action::Recorded { affected, .. } => {
                Parts::new(affected.real.minor(), affected.gift.minor(), affected.pre.minor())
            }
            Action::Deduct { value } => {
                if i128::from(value.minor()) > available.total() {
                    return Err(INSUFFICIENT_BALANCE);
                }
                // spec §8, §13: every debit splits and is limited by what is available.
                deduct_split(available, value.minor(), rules.order).negated()
            }
            Action::Undeduct { original_outer_order_id, value } => {
                let original =
                    self.referenced(original_outer_order_id, &[Kind::Deduct, Kind::Capture], &command.account_id)?;
                source = Some(original_outer_order_id.clone());
                undeduct_split(original.moved, original.refunded, value.map(|value| value.minor()))?
            }
            Action::Uncharge { src_outer_order_id } => {
                let original = self.referenced(src_outer_order_id, &[Kind::Charge], &command.account_id)?;
                if original.reversed {
                    return Err(ALREADY_REVERSED);
                }
                source = Some(src_outer_order_id.clone());
                original.moved.negated()
            }
            Action::Hold { value, .. } => {
                // spec §8: reserved exactly as a DEDUCT of it would take, from what is available.
                if i128::from(value.minor()) > available.total() {
                    return Err(INSUFFICIENT_BALANCE);
                }
                held_change = deduct_split(available, value.minor(), rules.order);
                Parts::default()
            }
            Action::Capture { src_outer_order_id, value } => {
                let hold = self.open_hold(src_outer_order_id, &command.account_id)?;
                // The CAPTURE's order_time is its biz_date, else now; one before the hold's own
                // is not refused (spec is silent).
                if hold.expire_time.is_some_and(|expire_time| order_time >= expire_time) {
                    return Err(HOLD_EXPIRED);
                }
                let parts = hold.moved;
                let value = value.map_or(parts.total(), |value| i128::from(value.minor()));
                if value > parts.total() {
                    return Err(INVALID_AMOUNT);
                }
                // The whole hold: its parts; less: a partial UNDEDUCT split with the hold's parts
                // as the original and as the rest (nothing refunded yet).
                let value = i64::try_from(value).map_err(|_| INVALID_AMOUNT)?;
                let spent = undeduct_split(parts, Parts::default(), Some(value))?;
                source = Some(src_outer_order_id.clone());
                held_change = parts.negated();
                spent.negated()
            }
            Action::Release { src_outer_order_id } => {
                let hold = self.open_hold(src_outer_order_id, &command.account_id)?;
                source = Some(src_outer_order_id.clone());
                held_change = hold.moved.negated();
                Parts::default()
            }
            Action::Freeze | Action::Unfreeze | Action::Close => {
                let account = account.expect("only CHARGE and IMPORT get here without an account");
                let refused = match command.action {
                    Action::Freeze => account.status == Status::Frozen,
                    Action::Unfreeze => account.status == Status::Active,
                    _ => !account.balance.is_zero() || account.open_holds > 0,
                };
                if refused {
                    return Err(INVALID_ARGUMENT);
                }
                Parts::default()
            }
            Action::Transfer { to_account_id, value } => {
                // spec §10: an existing destination must be of the source's brand; a card_id
                // given names the destination's card (spec is silent on a mismatch: refused).
                if let Some((_, Some(to))) = destination {
                    if to.brand_id != brand_id {
                        return Err(INVALID_ARGUMENT);
                    }
                    if command.card_id.as_ref().is_some_and(|card| to.card_id.as_ref() != Some(card)) {
                        return Err(INVALID_ARGUMENT);
                    }
                }
                let value = value.map_or(available.total(), |value| i128::from(value.minor()));
                if available.total() == 0 || value > available.total() {
                    return Err(INSUFFICIENT_BALANCE);
                }
                let value = i64::try_from(value).map_err(|_| INVALID_AMOUNT)?;
                let moved = deduct_split(available, value, rules.order);
                if let Some(to) = self.accounts.get(to_account_id) {
                    let after: Vec<i128> =
                        to.balance.wide().iter().zip(moved.wide()).map(|(before, change)| before + change).collect();
                    if !after.iter().all(|bucket| fits(*bucket)) || !fits(after.iter().sum()) {
                        return Err(INVALID_AMOUNT);
                    }
                }
                transfer_to = Some((to_account_id.clone(), command.card_id.clone(), brand_id.clone()));
                moved.negated()
            }
            Action::Clear { buckets } => {
                // spec §11: all that is available in the named buckets; nothing there is
                // INVALID_ARGUMENT (§13).
                let (gift, pre) = match buckets {
                    ClearBuckets::Gift => (available.gift, 0),
                    ClearBuckets::Pre => (0, available.pre),
                    ClearBuckets::All => (available.gift, available.pre),
                };
                if gift == 0 && pre == 0 {
                    return Err(INVALID_ARGUMENT);
                }
                Parts::new(0, -gift, -pre)
            }
            Action::Expire { now } => {
                // spec §11: the unheld value of the lots expired at the sweep's time; none is
                // nothing to do.
                let lots = account.map_or(&[][..], |account| account.lots.as_slice());
                let expired = lots::plan_expired(lots, now.0);
                let (gift, pre) =
                    (lots::sum(lots, &expired, LotBucket::Gift), lots::sum(lots, &expired, LotBucket::Pre));
                if gift == 0 && pre == 0 {
                    return Err(SKIP);
                }
                Parts::new(0, -gift, -pre)
            }
            Action::ExpireHold { src_outer_order_id, now } => {
                // The sweep releases only a hold expired at its time (purse-core refuses
                // another as INVALID_ARGUMENT; spec is silent).
                let hold = self.open_hold(src_outer_order_id, &command.account_id)?;
                if hold.expire_time.is_none_or(|expire_time| expire_time > now.0) {
                    return Err(INVALID_ARGUMENT);
                }
                source = Some(src_outer_order_id.clone());
                held_change = hold.moved.negated();
                Parts::default()
            }
            // Transfers between partitions (purse-cluster) are not part of this model: the
            // generators never make them.
            Action::TransferHold { .. }
            | Action::TransferCredit { .. }
            | Action::TransferSettle { .. }
            | Action::TransferAbort { .. } => panic!("the model has no transfers between partitions"),
        };

        // (7) the resulting balance: in range, no bucket negative or below what is held in it,
        // lifetime in range
        let after: Vec<i128> =
            before.wide().iter().zip(affected.wide()).map(|(before, change)| before + change).collect();
        let held_after: Vec<i128> =
            held.wide().iter().zip(held_change.wide()).map(|(before, change)| before + change).collect();
        let after_total: i128 = after.iter().sum();
        if !after.iter().all(|bucket| fits(*bucket)) {
            return Err(INVALID_AMOUNT);
        }
        // A negative bucket is the fault to name even when the TOTAL is also out of range.
        if after.iter().zip(&held_after).any(|(bucket, held)| *bucket < 0 || bucket < held) {
            return Err(INSUFFICIENT_BALANCE);
        }
        if !fits(after_total) {
            return Err(INVALID_AMOUNT);
        }
        if kind.counts_in_lifetime() {
            let lifetime: Vec<i128> =
                lifetime.wide().iter().zip(affected.wide()).map(|(before, change)| before + change).collect();
            let lifetime_total: i128 = lifetime.iter().sum();
            if !lifetime.iter().all(|bucket| fits(*bucket)) || !fits(lifetime_total) {
                return Err(INVALID_AMOUNT);
            }
        }
        let expire_time = match &command.action {
            Action::Hold { expire_time, .. } => expire_time.map(|time| time.0),
            _ => None,
        };
        let lots = account.map_or(&[][..], |account| account.lots.as_slice());
        let (lots, destination_lots, order_takes, source_takes) =
            self.lot_change(command, kind, lots, affected, held_change, source.as_deref(), order_time, &rules);
        Ok(Decision {
            kind,
            affected,
            held: held_change,
            card_id,
            brand_id,
            source,
            expire_time,
            destination: transfer_to,
            lots,
            destination_lots,
            order_takes,
            source_takes,
        })
    }

    /// spec §2: an unknown order is `ORDER_NOT_FOUND`; one of the wrong type or of another
    /// account is `INVALID_ARGUMENT`.
    fn referenced(&self, id: &str, kinds: &[Kind], account_id: &str) -> Result<&ModelOrder, &'static str> {
        let order = self.orders.get(id).ok_or(ORDER_NOT_FOUND)?;
        if !kinds.contains(&order.kind) || order.account_id != account_id {
            return Err(INVALID_ARGUMENT);
        }
        Ok(order)
    }

    /// spec §8: the HOLD a CAPTURE or RELEASE names; resolved once (`ALREADY_REVERSED` after).
    fn open_hold(&self, id: &str, account_id: &str) -> Result<&ModelOrder, &'static str> {
        let hold = self.referenced(id, &[Kind::Hold], account_id)?;
        if hold.reversed {
            return Err(ALREADY_REVERSED);
        }
        Ok(hold)
    }

    fn commit(&mut self, command: &Command, decision: Decision) {
        let Decision {
            kind,
            affected,
            held,
            card_id,
            brand_id,
            source,
            expire_time,
            destination,
            lots,
            destination_lots,
            order_takes,
            source_takes,
        } = decision;
        let account =
            self.accounts.entry(command.account_id.clone()).or_insert_with(|| ModelAccount::opened(card_id, brand_id));
        let first_made = account.lots.len();
        lots.apply(&mut account.lots);
        let own_lots: Vec<usize> = (first_made..account.lots.len()).collect();
        account.balance = add(account.balance, affected);
        account.held = add(account.held, held);
        if kind.counts_in_lifetime() {
            account.lifetime = add(account.lifetime, affected);
        }
        match kind {
            Kind::Freeze => account.status = Status::Frozen,
            Kind::Unfreeze => account.status = Status::Active,
            Kind::Close => account.status = Status::Closed,
            Kind::Hold => account.open_holds += 1,
            Kind::Capture | Kind::Release => account.open_holds -= 1,
            _ => {}
        }
        if let Some((to, card_id, brand_id)) = destination {
            let account = self.accounts.entry(to).or_insert_with(|| ModelAccount::opened(card_id, brand_id));
            account.balance = add(account.balance, affected.negated());
            LotChange { make: destination_lots, ..LotChange::default() }.apply(&mut account.lots);
        }
        if let Some(source) = source {
            let original = self.orders.get_mut(&source).expect("the referenced order was found when deciding");
            match kind {
                Kind::Undeduct => original.refunded = add(original.refunded, affected),
                Kind::Uncharge | Kind::Capture | Kind::Release => original.reversed = true,
                _ => unreachable!("only UNDEDUCT, UNCHARGE, CAPTURE and RELEASE reference an order"),
            }
            if let Some(takes) = source_takes {
                original.lot_takes = takes;
            }
        }
        let moved = match kind {
            Kind::Deduct | Kind::Capture | Kind::TransferOut => affected.negated(),
            Kind::Hold => held,
            _ => affected,
        };
        let order = ModelOrder {
            kind,
            account_id: command.account_id.clone(),
            moved,
            refunded: Parts::default(),
            reversed: false,
            expire_time,
            lot_takes: order_takes,
            own_lots: if kind == Kind::Charge { own_lots } else { Vec::new() },
        };
        self.orders.insert(command.outer_order_id.clone(), order);
        self.order_ids.push(command.outer_order_id.clone());
    }
}

/// Bucket-wise sum; the caller has checked the range.
fn add(a: Parts, b: Parts) -> Parts {
    Parts::new(a.real + b.real, a.gift + b.gift, a.pre + b.pre)
}

/// Bucket-wise difference of two non-negative parts.
fn sub(a: Parts, b: Parts) -> Parts {
    Parts::new(a.real - b.real, a.gift - b.gift, a.pre - b.pre)
}
