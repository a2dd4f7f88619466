//! A brand's rules (spec §4): how a deduction splits, and what gift a recharge earns.

use crate::balance::Buckets;
use crate::error::Error;
use crate::money::{Amount, Scale};

/// Basis points in one whole: 10,000 bp = 100%.
pub const BASIS_POINTS_ONE: i64 = 10_000;
/// The largest proportional gift accepted: 100 × the charged REAL.
pub const GIFT_BASIS_POINTS_MAX: i64 = 1_000_000;
/// A rule set holds at most this many tiers.
pub const TIERS_MAX: usize = 64;

/// How a deduction takes the part left after PRE (which is always spent first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeductionOrder {
    /// In proportion to the REAL and GIFT balances.
    #[default]
    Percent,
    RealBeforeGift,
    GiftBeforeReal,
}

impl DeductionOrder {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeductionOrder::Percent => "PERCENT_DEDUCT",
            DeductionOrder::RealBeforeGift => "REAL_BEFORE_GIFT_DEDUCT",
            DeductionOrder::GiftBeforeReal => "GIFT_BEFORE_REAL_DEDUCT",
        }
    }

    pub fn parse(text: &str) -> Result<DeductionOrder, Error> {
        match text {
            "PERCENT_DEDUCT" => Ok(DeductionOrder::Percent),
            "REAL_BEFORE_GIFT_DEDUCT" => Ok(DeductionOrder::RealBeforeGift),
            "GIFT_BEFORE_REAL_DEDUCT" => Ok(DeductionOrder::GiftBeforeReal),
            other => Err(Error::invalid_argument(format!(
                "deduction_order {other:?} is not one of PERCENT_DEDUCT, REAL_BEFORE_GIFT_DEDUCT, GIFT_BEFORE_REAL_DEDUCT"
            ))),
        }
    }
}

/// A tier: from `real_value` of charged REAL up, the gift is `gift` (an amount for CUSTOMIZED,
/// basis points of the charged REAL for PROPORTIONAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tier {
    pub real_value: Amount,
    pub gift: TierGift,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TierGift {
    Amount(Amount),
    BasisPoints(i64),
}

impl TierGift {
    /// The gift as a plain integer: minor units of an amount, or basis points.
    pub fn raw(self) -> i64 {
        match self {
            TierGift::Amount(amount) => amount.minor(),
            TierGift::BasisPoints(points) => points,
        }
    }
}

/// What gift a `trigger_gift` recharge earns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum GiftRule {
    #[default]
    None,
    /// Fixed amounts per tier; with `full_gift_switch`, once per whole multiple of the tier.
    Customized { full_gift_switch: bool, tiers: Vec<Tier> },
    /// Basis points of the charged REAL.
    Proportional { tiers: Vec<Tier> },
}

/// One brand's rules. `RuleSet::default()` is what a ledger without rules uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RuleSet {
    pub deduction_order: DeductionOrder,
    pub gift_rule: GiftRule,
    /// spec §11: a CHARGE's gift without `gift_expire_time` expires this many days (of 24 h)
    /// after the CHARGE's order_time. `None`: it does not expire.
    pub gift_valid_days: Option<u32>,
}

/// The longest `gift_valid_days`: a hundred years.
pub const GIFT_VALID_DAYS_MAX: u32 = 36_500;

/// A rule set as text, the way it arrives from JSON or a file, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSetText {
    pub deduction_order: Option<String>,
    pub gift_type: Option<String>,
    pub full_gift_switch: Option<bool>,
    /// `(real_value, gift_value)` as decimal text.
    pub tiers: Vec<(String, String)>,
    pub gift_valid_days: Option<u32>,
}

impl RuleSet {
    /// Validates a rule set given as text. Tiers are sorted by `real_value`; two tiers with the
    /// same `real_value`, a non-positive `real_value`, or a negative gift are `INVALID_ARGUMENT`
    /// / `INVALID_AMOUNT`.
    pub fn from_text(text: &RuleSetText, scale: Scale) -> Result<RuleSet, Error> {
        let deduction_order = match &text.deduction_order {
            Some(order) => DeductionOrder::parse(order)?,
            None => DeductionOrder::default(),
        };
        if text.tiers.len() > TIERS_MAX {
            return Err(Error::invalid_argument(format!("tiers: {} given, at most {TIERS_MAX}", text.tiers.len())));
        }
        let gift_type = text.gift_type.as_deref();
        let proportional = match gift_type {
            None if text.tiers.is_empty() && text.full_gift_switch != Some(true) => {
                let rules =
                    RuleSet { deduction_order, gift_rule: GiftRule::None, gift_valid_days: text.gift_valid_days };
                rules.check()?;
                return Ok(rules);
            }
            None => {
                return Err(Error::invalid_argument(
                    "gift_type is required with tiers or full_gift_switch=true (CUSTOMIZED or PROPORTIONAL)",
                ))
            }
            Some("CUSTOMIZED") => false,
            // ALSC spells it PROPERTIONAL in its rule query; accept both.
            Some("PROPORTIONAL" | "PROPERTIONAL") => true,
            Some(other) => {
                return Err(Error::invalid_argument(format!(
                    "gift_type {other:?} is not one of CUSTOMIZED, PROPORTIONAL"
                )))
            }
        };
        if proportional && text.full_gift_switch == Some(true) {
            return Err(Error::invalid_argument("full_gift_switch applies to CUSTOMIZED gifts only"));
        }
        let mut tiers = Vec::with_capacity(text.tiers.len());
        for (index, (real_text, gift_text)) in text.tiers.iter().enumerate() {
            tiers.push(parse_tier(index, real_text, gift_text, proportional, scale)?);
        }
        tiers.sort_by_key(|tier| tier.real_value);
        if let Some(pair) = tiers.windows(2).find(|pair| pair[0].real_value == pair[1].real_value) {
            return Err(Error::invalid_argument(format!(
                "tiers: two tiers have real_value {}",
                pair[0].real_value.format(scale)
            )));
        }
        let gift_rule = if proportional {
            GiftRule::Proportional { tiers }
        } else {
            GiftRule::Customized { full_gift_switch: text.full_gift_switch.unwrap_or(false), tiers }
        };
        let rules = RuleSet { deduction_order, gift_rule, gift_valid_days: text.gift_valid_days };
        rules.check_valid_days()?;
        Ok(rules)
    }

    fn check_valid_days(&self) -> Result<(), Error> {
        match self.gift_valid_days {
            Some(days) if days == 0 || days > GIFT_VALID_DAYS_MAX => {
                Err(Error::invalid_argument(format!("gift_valid_days must be 1 to {GIFT_VALID_DAYS_MAX}, got {days}")))
            }
            _ => Ok(()),
        }
    }

    /// When a gift credited at `order_time` expires under these rules.
    pub fn gift_expiry(&self, order_time: crate::Timestamp) -> Option<crate::Timestamp> {
        let days = i64::from(self.gift_valid_days?);
        order_time.0.checked_add(days * 86_400).map(crate::Timestamp)
    }

    /// Checks a rule set built in code rather than by [`RuleSet::from_text`]: at most
    /// [`TIERS_MAX`] tiers, in strictly ascending positive `real_value`, each gift of its rule's
    /// kind and in range. A rule set that fails would make every later gift-earning CHARGE of
    /// its brand fail, so it is refused before it is written.
    pub fn check(&self) -> Result<(), Error> {
        self.check_valid_days()?;
        let (tiers, proportional) = match &self.gift_rule {
            GiftRule::None => return Ok(()),
            GiftRule::Customized { tiers, .. } => (tiers, false),
            GiftRule::Proportional { tiers } => (tiers, true),
        };
        if tiers.len() > TIERS_MAX {
            return Err(Error::invalid_argument(format!("tiers: {} given, at most {TIERS_MAX}", tiers.len())));
        }
        for (index, tier) in tiers.iter().enumerate() {
            if !tier.real_value.is_positive() {
                return Err(Error::invalid_amount(format!(
                    "tiers[{index}].real_value must be positive, got {} minor units",
                    tier.real_value.minor()
                )));
            }
            match (tier.gift, proportional) {
                (TierGift::Amount(amount), false) if amount.is_negative() => {
                    return Err(Error::invalid_amount(format!(
                        "tiers[{index}].gift_value must not be negative, got {} minor units",
                        amount.minor()
                    )))
                }
                (TierGift::BasisPoints(points), true) if !(0..=GIFT_BASIS_POINTS_MAX).contains(&points) => {
                    return Err(Error::invalid_argument(format!(
                        "tiers[{index}].gift_value: {points} basis points is outside 0..={GIFT_BASIS_POINTS_MAX}"
                    )))
                }
                (TierGift::Amount(_), false) | (TierGift::BasisPoints(_), true) => {}
                (_, proportional) => {
                    return Err(Error::invalid_argument(format!(
                        "tiers[{index}].gift_value must be {} for a {} gift",
                        if proportional { "basis points" } else { "an amount" },
                        if proportional { "PROPORTIONAL" } else { "CUSTOMIZED" }
                    )))
                }
            }
        }
        if let Some(index) = tiers.windows(2).position(|pair| pair[0].real_value >= pair[1].real_value) {
            return Err(Error::invalid_argument(format!(
                "tiers[{}] and tiers[{}]: real_value must be strictly ascending, without duplicates",
                index,
                index + 1
            )));
        }
        Ok(())
    }

    /// The rule set as text, the inverse of [`RuleSet::from_text`] (tiers in ascending order).
    pub fn to_text(&self, scale: Scale) -> RuleSetText {
        let (gift_type, full_gift_switch, tiers) = match &self.gift_rule {
            GiftRule::None => (None, None, &[][..]),
            GiftRule::Customized { full_gift_switch, tiers } => {
                (Some("CUSTOMIZED"), Some(*full_gift_switch), tiers.as_slice())
            }
            GiftRule::Proportional { tiers } => (Some("PROPORTIONAL"), Some(false), tiers.as_slice()),
        };
        let tiers = tiers
            .iter()
            .map(|tier| {
                let gift = match tier.gift {
                    TierGift::Amount(amount) => amount.format(scale),
                    TierGift::BasisPoints(points) => points.to_string(),
                };
                (tier.real_value.format(scale), gift)
            })
            .collect();
        RuleSetText {
            deduction_order: Some(self.deduction_order.as_str().to_owned()),
            gift_type: gift_type.map(str::to_owned),
            full_gift_switch,
            tiers,
            gift_valid_days: self.gift_valid_days,
        }
    }

    /// The gift a recharge of `real` REAL earns: the highest tier whose `real_value` ≤ `real`.
    /// `None` only on overflow.
    pub fn gift_for(&self, real: Amount) -> Option<Amount> {
        let tiers = match &self.gift_rule {
            GiftRule::None => return Some(Amount::ZERO),
            GiftRule::Customized { tiers, .. } | GiftRule::Proportional { tiers } => tiers,
        };
        let Some(tier) = tiers.iter().rev().find(|tier| tier.real_value <= real) else {
            return Some(Amount::ZERO);
        };
        match (&self.gift_rule, tier.gift) {
            (GiftRule::Customized { full_gift_switch: true, .. }, TierGift::Amount(gift)) => {
                // Validated tiers have real_value > 0, so the division is defined.
                gift.checked_mul(real.minor() / tier.real_value.minor())
            }
            (_, TierGift::Amount(gift)) => Some(gift),
            (_, TierGift::BasisPoints(points)) => real.ratio_half_up(points, BASIS_POINTS_ONE),
        }
    }
}

fn parse_tier(index: usize, real_text: &str, gift_text: &str, proportional: bool, scale: Scale) -> Result<Tier, Error> {
    let real_value = Amount::parse(real_text, scale)
        .map_err(|error| Error::invalid_amount(format!("tiers[{index}].real_value: {error}")))?;
    if !real_value.is_positive() {
        return Err(Error::invalid_amount(format!("tiers[{index}].real_value must be positive, got {real_text:?}")));
    }
    let gift = if proportional {
        let points: i64 = gift_text.parse().map_err(|_| {
            Error::invalid_argument(format!(
                "tiers[{index}].gift_value: {gift_text:?} is not a whole number of basis points"
            ))
        })?;
        if !(0..=GIFT_BASIS_POINTS_MAX).contains(&points) {
            return Err(Error::invalid_argument(format!(
                "tiers[{index}].gift_value: {points} basis points is outside 0..={GIFT_BASIS_POINTS_MAX}"
            )));
        }
        TierGift::BasisPoints(points)
    } else {
        let amount = Amount::parse(gift_text, scale)
            .map_err(|error| Error::invalid_amount(format!("tiers[{index}].gift_value: {error}")))?;
        if amount.is_negative() {
            return Err(Error::invalid_amount(format!("tiers[{index}].gift_value must not be negative")));
        }
        TierGift::Amount(amount)
    };
    Ok(Tier { real_value, gift })
}

/// Splits a deduction of `value` (0 < value ≤ TOTAL) from `balance` by `order`.
/// PRE is spent first; the rest by the order. The parts add up to `value` exactly and no part
/// exceeds its bucket. Returns the positive amounts taken from each bucket.
pub fn deduction_split(balance: &Buckets, value: Amount, order: DeductionOrder) -> Buckets {
    let pre = value.min(balance.pre);
    let rest = Amount::from_minor(value.minor() - pre.minor());
    let (real_balance, gift_balance) = (balance.real, balance.gift);
    let (real, gift) = match order {
        DeductionOrder::RealBeforeGift => {
            let real = rest.min(real_balance);
            (real, Amount::from_minor(rest.minor() - real.minor()))
        }
        DeductionOrder::GiftBeforeReal => {
            let gift = rest.min(gift_balance);
            (Amount::from_minor(rest.minor() - gift.minor()), gift)
        }
        DeductionOrder::Percent => {
            let both = real_balance.minor() + gift_balance.minor();
            let gift = if both == 0 {
                Amount::ZERO
            } else {
                // rest ≤ both, so rest·G/both ≤ G fits in i64.
                rest.ratio_half_up(gift_balance.minor(), both).unwrap_or(gift_balance).min(gift_balance)
            };
            let real = Amount::from_minor(rest.minor() - gift.minor());
            if real > real_balance {
                (real_balance, Amount::from_minor(rest.minor() - real_balance.minor()))
            } else {
                (real, gift)
            }
        }
    };
    let split = Buckets { real, gift, pre };
    debug_assert_eq!(split.total(), Some(value), "deduction split {split:?} must add up to {value:?}");
    debug_assert!(split.negative_bucket().is_none(), "deduction split {split:?} has a negative part");
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNY: Scale = Scale::CNY;

    fn rules(order: &str, gift_type: Option<&str>, switch: Option<bool>, tiers: &[(&str, &str)]) -> RuleSet {
        let text = RuleSetText {
            gift_valid_days: None,
            deduction_order: Some(order.to_owned()),
            gift_type: gift_type.map(str::to_owned),
            full_gift_switch: switch,
            tiers: tiers.iter().map(|(real, gift)| ((*real).to_owned(), (*gift).to_owned())).collect(),
        };
        RuleSet::from_text(&text, CNY).expect("valid rules")
    }

    fn money(text: &str) -> Amount {
        Amount::parse(text, CNY).unwrap()
    }

    /// (rule, charged REAL, expected gift)
    fn check_gift(rule: &RuleSet, table: &[(&str, &str)]) {
        for (real, expect) in table {
            assert_eq!(
                rule.gift_for(money(real)).map(|gift| gift.format(CNY)).as_deref(),
                Some(*expect),
                "gift for {real}"
            );
        }
    }

    #[test]
    fn customized_gifts() {
        let tiers = [("100.00", "20.00"), ("500.00", "150.00")];
        let one_tier = rules("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(false), &tiers);
        check_gift(
            &one_tier,
            &[("99.99", "0.00"), ("100.00", "20.00"), ("300.00", "20.00"), ("500.00", "150.00"), ("1200.00", "150.00")],
        );
        let full = rules("PERCENT_DEDUCT", Some("CUSTOMIZED"), Some(true), &tiers);
        check_gift(
            &full,
            &[("99.99", "0.00"), ("100.00", "20.00"), ("300.00", "60.00"), ("499.99", "80.00"), ("1200.00", "300.00")],
        );
    }

    #[test]
    fn proportional_gifts() {
        let rule = rules("PERCENT_DEDUCT", Some("PROPORTIONAL"), None, &[("0.01", "1000"), ("1000", "5500")]);
        check_gift(&rule, &[("123.45", "12.35"), ("0.04", "0.00"), ("0.05", "0.01"), ("1000.00", "550.00")]);
        let alsc_spelling = rules("PERCENT_DEDUCT", Some("PROPERTIONAL"), None, &[("1", "1000")]);
        check_gift(&alsc_spelling, &[("10.00", "1.00")]);
    }

    #[test]
    fn no_rule_no_gift() {
        check_gift(&RuleSet::default(), &[("1000.00", "0.00")]);
    }

    #[test]
    fn invalid_rule_sets() {
        let table: &[(RuleSetText, &str)] = &[
            (RuleSetText { deduction_order: Some("LIFO".into()), ..Default::default() }, "deduction_order"),
            (RuleSetText { gift_type: Some("RANDOM".into()), ..Default::default() }, "gift_type"),
            (RuleSetText { tiers: vec![("100".into(), "20".into())], ..Default::default() }, "gift_type is required"),
            (
                RuleSetText {
                    gift_type: Some("PROPORTIONAL".into()),
                    full_gift_switch: Some(true),
                    ..Default::default()
                },
                "full_gift_switch",
            ),
            (
                RuleSetText {
                    gift_type: Some("CUSTOMIZED".into()),
                    tiers: vec![("100".into(), "20".into()), ("100.00".into(), "30".into())],
                    ..Default::default()
                },
                "two tiers",
            ),
            (
                RuleSetText {
                    gift_type: Some("CUSTOMIZED".into()),
                    tiers: vec![("0".into(), "1".into())],
                    ..Default::default()
                },
                "must be positive",
            ),
            (
                RuleSetText {
                    gift_type: Some("PROPORTIONAL".into()),
                    tiers: vec![("1".into(), "10.5".into())],
                    ..Default::default()
                },
                "basis points",
            ),
            (
                RuleSetText {
                    gift_type: Some("CUSTOMIZED".into()),
                    tiers: vec![("1".into(), "0.001".into())],
                    ..Default::default()
                },
                "decimals",
            ),
        ];
        for (text, expect) in table {
            let error = RuleSet::from_text(text, CNY).expect_err("must be rejected");
            assert!(error.to_string().contains(expect), "{text:?}: {error}");
        }
    }

    #[test]
    fn text_round_trip() {
        let rule = rules("GIFT_BEFORE_REAL_DEDUCT", Some("CUSTOMIZED"), Some(true), &[("500", "150"), ("100", "20")]);
        let text = rule.to_text(CNY);
        assert_eq!(text.tiers[0], ("100.00".to_owned(), "20.00".to_owned()));
        assert_eq!(RuleSet::from_text(&text, CNY), Ok(rule));
    }

    /// (balance real, gift, pre; value; order; expected real, gift, pre taken)
    #[test]
    fn deduction_splits() {
        type Row = (
            (&'static str, &'static str, &'static str),
            &'static str,
            DeductionOrder,
            (&'static str, &'static str, &'static str),
        );
        let table: &[Row] = &[
            (("66.67", "33.33", "0"), "10.00", DeductionOrder::Percent, ("6.67", "3.33", "0.00")),
            (("100", "20", "5"), "5.00", DeductionOrder::Percent, ("0.00", "0.00", "5.00")),
            (("100", "20", "5"), "17.00", DeductionOrder::Percent, ("10.00", "2.00", "5.00")),
            (("100", "20", "0"), "120.00", DeductionOrder::Percent, ("100.00", "20.00", "0.00")),
            (("0.01", "0.01", "0"), "0.01", DeductionOrder::Percent, ("0.00", "0.01", "0.00")),
            (("0", "50", "0"), "10.00", DeductionOrder::Percent, ("0.00", "10.00", "0.00")),
            (("100", "20", "0"), "110.00", DeductionOrder::RealBeforeGift, ("100.00", "10.00", "0.00")),
            (("100", "20", "0"), "30.00", DeductionOrder::GiftBeforeReal, ("10.00", "20.00", "0.00")),
            (("100", "20", "3"), "10.00", DeductionOrder::GiftBeforeReal, ("0.00", "7.00", "3.00")),
        ];
        for ((real, gift, pre), value, order, (expect_real, expect_gift, expect_pre)) in table {
            let balance = Buckets::new(money(real), money(gift), money(pre));
            let split = deduction_split(&balance, money(value), *order);
            let expect = Buckets::new(money(expect_real), money(expect_gift), money(expect_pre));
            assert_eq!(split, expect, "{value} from {balance:?} by {order:?}");
        }
    }

    #[test]
    fn hand_built_rule_sets_are_checked() {
        let tier = |real: i64, gift: TierGift| Tier { real_value: Amount::from_minor(real), gift };
        let amount = |minor: i64| TierGift::Amount(Amount::from_minor(minor));
        let customized = |tiers: Vec<Tier>| RuleSet {
            gift_valid_days: None,
            deduction_order: DeductionOrder::Percent,
            gift_rule: GiftRule::Customized { full_gift_switch: false, tiers },
        };
        let proportional = |tiers: Vec<Tier>| RuleSet {
            gift_valid_days: None,
            deduction_order: DeductionOrder::Percent,
            gift_rule: GiftRule::Proportional { tiers },
        };
        let table: Vec<(&str, RuleSet, Result<(), &str>)> = vec![
            ("no gift", RuleSet::default(), Ok(())),
            ("ascending", customized(vec![tier(100, amount(20)), tier(500, amount(150))]), Ok(())),
            (
                "negative gift",
                customized(vec![tier(100, amount(-20))]),
                Err("tiers[0].gift_value must not be negative"),
            ),
            (
                "duplicate tiers",
                customized(vec![tier(100, amount(20)), tier(100, amount(30))]),
                Err("strictly ascending"),
            ),
            ("descending", customized(vec![tier(500, amount(20)), tier(100, amount(30))]), Err("strictly ascending")),
            ("zero real", customized(vec![tier(0, amount(20))]), Err("real_value must be positive")),
            ("points in CUSTOMIZED", customized(vec![tier(100, TierGift::BasisPoints(5))]), Err("must be an amount")),
            ("amount in PROPORTIONAL", proportional(vec![tier(100, amount(5))]), Err("must be basis points")),
            (
                "points out of range",
                proportional(vec![tier(100, TierGift::BasisPoints(GIFT_BASIS_POINTS_MAX + 1))]),
                Err("outside"),
            ),
            ("too many", customized((1..=65).map(|real| tier(real, amount(1))).collect()), Err("at most 64")),
        ];
        for (name, rules, expect) in table {
            match (rules.check(), expect) {
                (Ok(()), Ok(())) => {}
                (Err(error), Err(words)) => assert!(error.to_string().contains(words), "{name}: {error}"),
                (got, expect) => panic!("{name}: got {got:?}, expected {expect:?}"),
            }
        }
    }
}
