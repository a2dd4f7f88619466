//! A deliberately plain reference model of spec §2–§4, written from docs/spec.md alone.
//!
//! It takes purse-core's [`Command`] as input (the data type only) and computes its own result:
//! `Ok(affected)` per bucket or `Err(code)`. It never calls purse-core's `decide`, `apply`,
//! rules or ratio functions; amounts are plain `i64` minor units, sums are `i128`.
//!
//! Checks run in purse-core's documented order, so both sides name the same code for a command
//! that is wrong in several ways: (1) string arguments, (2) action arguments, (3) amounts,
//! (4) order-id uniqueness, (5) account (existence, card/brand), (6) per type, (7) the resulting
//! balance: a bucket outside `i64` is `INVALID_AMOUNT`, then a negative bucket is
//! `INSUFFICIENT_BALANCE`, then a (true, unbounded) TOTAL or lifetime totals outside `i64` are
//! `INVALID_AMOUNT`. The range rule is spec §1's "a value outside the range"; the limits on
//! order ids, reference ids, remark and ext_info are purse-core's choices (docs/spec.md is silent).

mod arith;

use std::collections::BTreeMap;

use purse_core::{Action, Command};

pub use arith::{deduct_split, gift_for, half_up, undeduct_split, BASIS_POINTS};

pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
pub const INVALID_AMOUNT: &str = "INVALID_AMOUNT";
pub const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";
pub const ACCOUNT_NOT_FOUND: &str = "ACCOUNT_NOT_FOUND";
pub const ORDER_NOT_FOUND: &str = "ORDER_NOT_FOUND";
pub const DUPLICATE_ORDER: &str = "DUPLICATE_ORDER";
pub const REFUND_EXCEEDS_ORIGINAL: &str = "REFUND_EXCEEDS_ORIGINAL";
pub const ALREADY_REVERSED: &str = "ALREADY_REVERSED";
/// What the model answers for a command of spec §8–§10, which it does not model yet.
pub const UNMODELLED: &str = "UNMODELLED";

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

/// The flow types of spec §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Charge,
    Deduct,
    Undeduct,
    Uncharge,
    Import,
    Adjust,
    /// spec §8–§10 (holds, status, transfers): not in this model yet, and never generated for it.
    Unmodelled,
}

impl Kind {
    pub fn of(action: &Action) -> Kind {
        match action {
            Action::Charge { .. } => Kind::Charge,
            Action::Deduct { .. } => Kind::Deduct,
            Action::Undeduct { .. } => Kind::Undeduct,
            Action::Uncharge { .. } => Kind::Uncharge,
            Action::Import { .. } => Kind::Import,
            Action::Adjust { .. } => Kind::Adjust,
            Action::Recorded { flow_type, .. } => match flow_type.as_str() {
                "CHARGE" => Kind::Charge,
                "DEDUCT" => Kind::Deduct,
                "UNDEDUCT" => Kind::Undeduct,
                "UNCHARGE" => Kind::Uncharge,
                "IMPORT" => Kind::Import,
                _ => Kind::Adjust,
            },
            // An opening balance is ingestion's; the generator never makes one.
            Action::Open { .. }
            | Action::Hold { .. }
            | Action::Capture { .. }
            | Action::Release { .. }
            | Action::Freeze
            | Action::Unfreeze
            | Action::Close
            | Action::Transfer { .. } => Kind::Unmodelled,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Charge => "CHARGE",
            Kind::Deduct => "DEDUCT",
            Kind::Undeduct => "UNDEDUCT",
            Kind::Uncharge => "UNCHARGE",
            Kind::Import => "IMPORT",
            Kind::Adjust => "ADJUST",
            Kind::Unmodelled => "UNMODELLED",
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAccount {
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub balance: Parts,
    /// What CHARGE and IMPORT put in, less what UNCHARGE took back.
    pub lifetime: Parts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOrder {
    pub kind: Kind,
    pub account_id: String,
    /// For a CHARGE what it added, for a DEDUCT what it took (positive); else its `affected`.
    pub moved: Parts,
    /// For a DEDUCT: what UNDEDUCTs gave back so far.
    pub refunded: Parts,
    /// For a CHARGE: whether an UNCHARGE reversed it.
    pub reversed: bool,
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
    card_id: Option<String>,
    brand_id: Option<String>,
    source: Option<String>,
}

fn text_ok(text: &str, chars_max: usize) -> Result<(), &'static str> {
    let chars = text.chars().count();
    let control = text.chars().any(|c| {
        let code = u32::from(c);
        code < 0x20 || (0x7f..=0x9f).contains(&code)
    });
    if chars == 0 || chars > chars_max || control {
        return Err(INVALID_ARGUMENT);
    }
    Ok(())
}

fn optional_text_ok(text: &Option<String>, chars_max: usize) -> Result<(), &'static str> {
    match text {
        Some(text) => text_ok(text, chars_max),
        None => Ok(()),
    }
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
    /// model changes and the signed change of each bucket is returned; on failure nothing
    /// changes and the error code is returned.
    pub fn execute(&mut self, command: &Command, now: i64) -> Result<Parts, &'static str> {
        let decision = self.decide(command, now)?;
        let affected = decision.affected;
        self.commit(command, decision);
        Ok(affected)
    }

    fn decide(&self, command: &Command, now: i64) -> Result<Decision, &'static str> {
        if Kind::of(&command.action) == Kind::Unmodelled {
            return Err(UNMODELLED);
        }
        // (1) string arguments
        text_ok(&command.request_id, REQUEST_ID_CHARS)?;
        text_ok(&command.outer_order_id, ORDER_ID_CHARS)?;
        text_ok(&command.account_id, ACCOUNT_ID_CHARS)?;
        optional_text_ok(&command.card_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.brand_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.shop_id, REFERENCE_ID_CHARS)?;
        optional_text_ok(&command.operator_id, REFERENCE_ID_CHARS)?;
        if command.remark.as_ref().is_some_and(|remark| remark.chars().count() > REMARK_CHARS) {
            return Err(INVALID_ARGUMENT);
        }
        if command.ext_info.as_ref().is_some_and(|ext| ext.len() > EXT_INFO_BYTES) {
            return Err(INVALID_ARGUMENT);
        }

        // (2) action arguments
        match &command.action {
            Action::Charge { gift: Some(_), trigger_gift: true, .. } => return Err(INVALID_ARGUMENT),
            Action::Undeduct { original_outer_order_id, .. } => text_ok(original_outer_order_id, ORDER_ID_CHARS)?,
            Action::Uncharge { src_outer_order_id } => text_ok(src_outer_order_id, ORDER_ID_CHARS)?,
            Action::Recorded { source, .. } => {
                text_ok(&source.provider, PROVIDER_CHARS)?;
                text_ok(&source.record_id, RECORD_ID_CHARS)?;
            }
            Action::Import { .. } if command.biz_date.is_some_and(|time| time.0 > now) => {
                return Err(INVALID_ARGUMENT);
            }
            Action::Adjust { .. }
                if command.remark.as_ref().is_none_or(|remark| remark.chars().all(char::is_whitespace)) =>
            {
                return Err(INVALID_ARGUMENT);
            }
            _ => {}
        }

        // (3) amounts
        match &command.action {
            Action::Charge { real, gift, pre, .. } => {
                let gift = gift.map_or(0, |gift| gift.minor());
                if real.minor() < 0 || gift < 0 || pre.minor() < 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Import { real, gift, pre } | Action::Open { real, gift, pre } => {
                if real.minor() < 0 || gift.minor() < 0 || pre.minor() < 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Deduct { value } => {
                if value.minor() <= 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Undeduct { value: Some(value), .. } => {
                if value.minor() <= 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Adjust { real, gift, pre } => {
                if real.minor() == 0 && gift.minor() == 0 && pre.minor() == 0 {
                    return Err(INVALID_AMOUNT);
                }
            }
            Action::Undeduct { value: None, .. } | Action::Uncharge { .. } => {}
            Action::Hold { .. }
            | Action::Capture { .. }
            | Action::Release { .. }
            | Action::Freeze
            | Action::Unfreeze
            | Action::Close
            | Action::Transfer { .. } => unreachable!("refused first"),
            Action::Recorded { affected, .. } => {
                // A provider's record: only the signs of its type are checked.
                let parts = [affected.real.minor(), affected.gift.minor(), affected.pre.minor()];
                let none_negative = parts.iter().all(|part| *part >= 0);
                let none_positive = parts.iter().all(|part| *part <= 0);
                let nothing = parts.iter().all(|part| *part == 0);
                let fits = match Kind::of(&command.action) {
                    Kind::Import => none_negative,
                    Kind::Charge | Kind::Undeduct => none_negative && !nothing,
                    Kind::Deduct | Kind::Uncharge => none_positive && !nothing,
                    Kind::Adjust => !nothing,
                    Kind::Unmodelled => unreachable!("refused first"),
                };
                if !fits {
                    return Err(INVALID_AMOUNT);
                }
            }
        }

        // (4) the order id is unique over all writes
        if self.orders.contains_key(&command.outer_order_id) {
            return Err(DUPLICATE_ORDER);
        }

        // (5) the account
        let kind = Kind::of(&command.action);
        let (card_id, brand_id, before, lifetime) = match self.accounts.get(&command.account_id) {
            Some(account) => {
                if let Some(card) = &command.card_id {
                    if account.card_id.as_ref() != Some(card) {
                        return Err(INVALID_ARGUMENT);
                    }
                }
                if let Some(brand) = &command.brand_id {
                    if account.brand_id.as_ref() != Some(brand) {
                        return Err(INVALID_ARGUMENT);
                    }
                }
                (account.card_id.clone(), account.brand_id.clone(), account.balance, account.lifetime)
            }
            None if kind == Kind::Charge || kind == Kind::Import => {
                (command.card_id.clone(), command.brand_id.clone(), Parts::default(), Parts::default())
            }
            None => return Err(ACCOUNT_NOT_FOUND),
        };
        let rules = self.rules_for(brand_id.as_deref());

        // (6) per type
        let mut source = None;
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
            Action::Import { real, gift, pre } | Action::Adjust { real, gift, pre } => {
                Parts::new(real.minor(), gift.minor(), pre.minor())
            }
            Action::Recorded { affected, .. } => {
                Parts::new(affected.real.minor(), affected.gift.minor(), affected.pre.minor())
            }
            Action::Deduct { value } => {
                if i128::from(value.minor()) > before.total() {
                    return Err(INSUFFICIENT_BALANCE);
                }
                deduct_split(before, value.minor(), rules.order).negated()
            }
            Action::Undeduct { original_outer_order_id, value } => {
                let original = self.referenced(original_outer_order_id, Kind::Deduct, &command.account_id)?;
                source = Some(original_outer_order_id.clone());
                undeduct_split(original.moved, original.refunded, value.map(|value| value.minor()))?
            }
            Action::Uncharge { src_outer_order_id } => {
                let original = self.referenced(src_outer_order_id, Kind::Charge, &command.account_id)?;
                if original.reversed {
                    return Err(ALREADY_REVERSED);
                }
                source = Some(src_outer_order_id.clone());
                original.moved.negated()
            }
            _ => unreachable!("spec §8–§10 commands are refused first"),
        };

        // (7) the resulting balance: in range, no bucket negative, lifetime in range
        let after: Vec<i128> =
            before.wide().iter().zip(affected.wide()).map(|(before, change)| before + change).collect();
        let after_total: i128 = after.iter().sum();
        if !after.iter().all(|bucket| fits(*bucket)) {
            return Err(INVALID_AMOUNT);
        }
        // A negative bucket is the fault to name even when the TOTAL is also out of range.
        if after.iter().any(|bucket| *bucket < 0) {
            return Err(INSUFFICIENT_BALANCE);
        }
        if !fits(after_total) {
            return Err(INVALID_AMOUNT);
        }
        if matches!(kind, Kind::Charge | Kind::Import | Kind::Uncharge) {
            let lifetime: Vec<i128> =
                lifetime.wide().iter().zip(affected.wide()).map(|(before, change)| before + change).collect();
            let lifetime_total: i128 = lifetime.iter().sum();
            if !lifetime.iter().all(|bucket| fits(*bucket)) || !fits(lifetime_total) {
                return Err(INVALID_AMOUNT);
            }
        }
        Ok(Decision { kind, affected, card_id, brand_id, source })
    }

    /// spec §2: an unknown order is `ORDER_NOT_FOUND`; one of the wrong type or of another
    /// account is `INVALID_ARGUMENT`.
    fn referenced(&self, id: &str, kind: Kind, account_id: &str) -> Result<&ModelOrder, &'static str> {
        let order = self.orders.get(id).ok_or(ORDER_NOT_FOUND)?;
        if order.kind != kind || order.account_id != account_id {
            return Err(INVALID_ARGUMENT);
        }
        Ok(order)
    }

    fn commit(&mut self, command: &Command, decision: Decision) {
        let Decision { kind, affected, card_id, brand_id, source } = decision;
        let account = self.accounts.entry(command.account_id.clone()).or_insert_with(|| ModelAccount {
            card_id,
            brand_id,
            balance: Parts::default(),
            lifetime: Parts::default(),
        });
        account.balance = add(account.balance, affected);
        if matches!(kind, Kind::Charge | Kind::Import | Kind::Uncharge) {
            account.lifetime = add(account.lifetime, affected);
        }
        if let Some(source) = source {
            let original = self.orders.get_mut(&source).expect("the referenced order was found when deciding");
            match kind {
                Kind::Undeduct => original.refunded = add(original.refunded, affected),
                Kind::Uncharge => original.reversed = true,
                _ => unreachable!("only UNDEDUCT and UNCHARGE reference an order"),
            }
        }
        let moved = if kind == Kind::Deduct { affected.negated() } else { affected };
        let order = ModelOrder {
            kind,
            account_id: command.account_id.clone(),
            moved,
            refunded: Parts::default(),
            reversed: false,
        };
        self.orders.insert(command.outer_order_id.clone(), order);
        self.order_ids.push(command.outer_order_id.clone());
    }
}

/// Bucket-wise sum; the caller has checked the range.
fn add(a: Parts, b: Parts) -> Parts {
    Parts::new(a.real + b.real, a.gift + b.gift, a.pre + b.pre)
}
