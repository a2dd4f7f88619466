//! The money arithmetic of the model, written from spec §1, §2 and §4 in plain `i128`.
//!
//! Nothing here calls purse-core: rounding, the deduction split, the refund split and the gift
//! tiers are computed again, the way the docs/spec.md words them.

use super::{DeductOrder, GiftRule, Parts, REFUND_EXCEEDS_ORIGINAL};

/// Basis points in one whole (spec §4: 5500 = 55%).
pub const BASIS_POINTS: i128 = 10_000;

/// `numerator / denominator` rounded half-up, for `numerator >= 0` and `denominator > 0`.
///
/// `floor((2n + d) / 2d)` is `n/d` plus one half, rounded down: exactly half-up.
pub fn half_up(numerator: i128, denominator: i128) -> i128 {
    assert!(numerator >= 0 && denominator > 0, "half_up of {numerator}/{denominator}: only non-negative ratios");
    (2 * numerator + denominator) / (2 * denominator)
}

fn min3(a: i128, b: i128, c: i128) -> i128 {
    a.min(b).min(c)
}

fn narrow(value: i128) -> i64 {
    i64::try_from(value).expect("a part of a split never exceeds the value it splits")
}

/// spec §2 DEDUCT with §4 deduction orders: what is taken from each bucket (positive parts).
///
/// Expects `0 < value <= TOTAL`. PRE is spent first; the rest `r` by `order`:
/// PERCENT_DEDUCT: `gift = min(half_up(r·G/(R+G)), G)`, `real = r − gift`, and if `real > R`
/// then `real = R`, `gift = r − R`.
pub fn deduct_split(balance: Parts, value: i64, order: DeductOrder) -> Parts {
    let (real_balance, gift_balance, pre_balance) =
        (i128::from(balance.real), i128::from(balance.gift), i128::from(balance.pre));
    let value = i128::from(value);
    let pre = value.min(pre_balance);
    let rest = value - pre;
    let (real, gift) = match order {
        DeductOrder::RealFirst => {
            let real = rest.min(real_balance);
            (real, rest - real)
        }
        DeductOrder::GiftFirst => {
            let gift = rest.min(gift_balance);
            (rest - gift, gift)
        }
        DeductOrder::Percent => {
            let both = real_balance + gift_balance;
            let mut gift = 0;
            if both > 0 {
                gift = half_up(rest * gift_balance, both).min(gift_balance);
            }
            let mut real = rest - gift;
            if real > real_balance {
                real = real_balance;
                gift = rest - real_balance;
            }
            (real, gift)
        }
    };
    Parts::new(narrow(real), narrow(gift), narrow(pre))
}

/// spec §2 UNDEDUCT: what one refund of `value` (`None`: all that is left) gives back to each
/// bucket, given what the DEDUCT took (`moved`) and what earlier refunds gave back.
///
/// More than the rest (or nothing left at all): `REFUND_EXCEEDS_ORIGINAL`. The refund that
/// completes the order gives back exactly each bucket's rest. A partial refund of `v`:
/// `gift = min(half_up(v·G₀/T₀), rest_G, v)`, `pre = min(half_up(v·P₀/T₀), rest_P, v − gift)`,
/// `real = v − gift − pre`; what passes `rest_R` moves to GIFT, then PRE, each up to its rest.
pub fn undeduct_split(moved: Parts, refunded: Parts, value: Option<i64>) -> Result<Parts, &'static str> {
    let rest_real = i128::from(moved.real) - i128::from(refunded.real);
    let rest_gift = i128::from(moved.gift) - i128::from(refunded.gift);
    let rest_pre = i128::from(moved.pre) - i128::from(refunded.pre);
    let rest_total = rest_real + rest_gift + rest_pre;
    let value = value.map_or(rest_total, i128::from);
    if rest_total == 0 || value > rest_total {
        return Err(REFUND_EXCEEDS_ORIGINAL);
    }
    if value == rest_total {
        return Ok(Parts::new(narrow(rest_real), narrow(rest_gift), narrow(rest_pre)));
    }
    let moved_total = moved.total();
    let mut gift = min3(half_up(value * i128::from(moved.gift), moved_total), rest_gift, value);
    let mut pre = min3(half_up(value * i128::from(moved.pre), moved_total), rest_pre, value - gift);
    let mut real = value - gift - pre;
    if real > rest_real {
        let mut excess = real - rest_real;
        real = rest_real;
        let to_gift = excess.min(rest_gift - gift);
        gift += to_gift;
        excess -= to_gift;
        let to_pre = excess.min(rest_pre - pre);
        pre += to_pre;
        excess -= to_pre;
        assert_eq!(excess, 0, "a refund no larger than the rest always fits");
    }
    Ok(Parts::new(narrow(real), narrow(gift), narrow(pre)))
}

/// spec §4: the gift a `trigger_gift` recharge of `real` earns, unbounded (`i128`), so the
/// caller can see a gift that leaves the `i64` range.
///
/// The tier used is the highest whose `real_value` ≤ `real`; none: no gift. CUSTOMIZED pays the
/// tier's amount once, or with `full_gift_switch` once per whole multiple of the tier's
/// `real_value`. PROPORTIONAL pays `half_up(real · basis_points / 10000)`.
pub fn gift_for(rule: &GiftRule, real: i64) -> i128 {
    let tiers = match rule {
        GiftRule::None => return 0,
        GiftRule::Customized { tiers, .. } | GiftRule::Proportional { tiers } => tiers,
    };
    let mut best: Option<(i64, i64)> = None;
    for &(tier_real, tier_gift) in tiers {
        let higher = match best {
            None => true,
            Some((best_real, _)) => tier_real > best_real,
        };
        if tier_real <= real && higher {
            best = Some((tier_real, tier_gift));
        }
    }
    let Some((tier_real, tier_gift)) = best else {
        return 0;
    };
    match rule {
        GiftRule::Customized { full: true, .. } => i128::from(tier_gift) * i128::from(real / tier_real),
        GiftRule::Customized { full: false, .. } => i128::from(tier_gift),
        GiftRule::Proportional { .. } => half_up(i128::from(real) * i128::from(tier_gift), BASIS_POINTS),
        GiftRule::None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_up_rounds_halves_up() {
        assert_eq!(half_up(5, 2), 3);
        assert_eq!(half_up(4, 3), 1);
        assert_eq!(half_up(5, 3), 2);
        assert_eq!(half_up(0, 7), 0);
        assert_eq!(half_up(12_345 * 1000, 10_000), 1235);
    }

    #[test]
    fn spec_examples() {
        // spec §4 default: 10.00 of 66.67 REAL / 33.33 GIFT.
        let split = deduct_split(Parts::new(6667, 3333, 0), 1000, DeductOrder::Percent);
        assert_eq!(split, Parts::new(667, 333, 0));
        let undeduct = undeduct_split(Parts::new(3333, 1667, 1000), Parts::default(), Some(1000));
        assert_eq!(undeduct, Ok(Parts::new(555, 278, 167)));
        let tiers = vec![(10_000, 2_000), (50_000, 15_000)];
        assert_eq!(gift_for(&GiftRule::Customized { full: true, tiers: tiers.clone() }, 30_000), 6_000);
        assert_eq!(gift_for(&GiftRule::Customized { full: false, tiers }, 30_000), 2_000);
        assert_eq!(gift_for(&GiftRule::Proportional { tiers: vec![(1, 1000)] }, 12_345), 1235);
    }
}
