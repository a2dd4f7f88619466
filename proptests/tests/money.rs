//! Properties of exact money (spec §1) and of the splits that divide it (spec §2, §4).
//!
//! `PROPTEST_CASES` sets the number of cases (default 1000). Failure seeds are saved in
//! `proptest-regressions/money.txt`.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use purse_core::{deduction_split, Amount, AmountError, Buckets, DeductionOrder, Scale};
use purse_proptests::model::{deduct_split, half_up, undeduct_split, DeductOrder, Parts};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(1000)
}

fn scale() -> impl Strategy<Value = Scale> {
    (0u32..=6).prop_map(|decimals| Scale::new(decimals).expect("0..=6 is a valid scale"))
}

/// Any `i64`, with its ends and small values drawn more often than uniform sampling would.
fn minor() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        2 => -1_000_000i64..=1_000_000,
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

/// A decimal text `[-]digits.fraction` with `extra` more fraction digits than `scale`;
/// `nonzero` says whether one of the digits beyond the scale is not zero.
fn too_precise_text(scale: Scale, nonzero: bool) -> impl Strategy<Value = String> {
    let decimals = usize::try_from(scale.decimals()).expect("a scale fits usize");
    let beyond = if nonzero { "[0-9]{0,4}[1-9]" } else { "0{1,5}" };
    (any::<bool>(), 0u64..=999_999_999, prop::string::string_regex(&format!("[0-9]{{{decimals}}}")).unwrap(), {
        prop::string::string_regex(beyond).unwrap()
    })
        .prop_map(|(negative, whole, within, beyond)| {
            format!("{}{whole}.{within}{beyond}", if negative { "-" } else { "" })
        })
}

fn order() -> impl Strategy<Value = (DeductOrder, DeductionOrder)> {
    prop_oneof![
        Just((DeductOrder::Percent, DeductionOrder::Percent)),
        Just((DeductOrder::RealFirst, DeductionOrder::RealBeforeGift)),
        Just((DeductOrder::GiftFirst, DeductionOrder::GiftBeforeReal)),
    ]
}

/// A bucket balance: small, large, or up to a third of `i64::MAX` (so TOTAL stays in range).
fn bucket() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 6 => 0i64..=100, 6 => 0i64..=1_000_000, 2 => 0i64..=i64::MAX / 3]
}

/// A balance with TOTAL > 0 and a value `1..=TOTAL` to deduct from it.
fn balance_and_value() -> impl Strategy<Value = (Parts, i64)> {
    (bucket(), bucket(), bucket())
        .prop_filter("an empty balance has nothing to deduct", |(real, gift, pre)| real + gift + pre > 0)
        .prop_flat_map(|(real, gift, pre)| {
            let total = real + gift + pre;
            let value = prop_oneof![
                1i64..=total,
                Just(total),
                Just(1i64),
                (0i64..=3).prop_map(move |less| (total - less).max(1))
            ];
            (Just(Parts::new(real, gift, pre)), value)
        })
}

/// What a DEDUCT took, what earlier refunds gave back (≤ it per bucket), and a refund value
/// `1..=rest`.
fn refund_case() -> impl Strategy<Value = (Parts, Parts, i64)> {
    (bucket(), bucket(), bucket())
        .prop_filter("a DEDUCT takes something", |(real, gift, pre)| real + gift + pre > 0)
        .prop_flat_map(|(real, gift, pre)| (Just(Parts::new(real, gift, pre)), 0..=real, 0..=gift, 0..=pre))
        .prop_filter("something is left to refund", |(moved, real, gift, pre)| {
            moved.total() > i128::from(real + gift + pre)
        })
        .prop_flat_map(|(moved, real, gift, pre)| {
            let rest = i64::try_from(moved.total() - i128::from(real + gift + pre)).expect("rest fits i64");
            (Just(moved), Just(Parts::new(real, gift, pre)), prop_oneof![1i64..=rest, Just(rest), Just(1i64)])
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/money.txt"))),
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn format_then_parse_is_the_identity(minor in minor(), scale in scale()) {
        let amount = Amount::from_minor(minor);
        let text = amount.format(scale);
        prop_assert_eq!(Amount::parse(&text, scale), Ok(amount), "text {:?} at scale {}", text, scale.decimals());
    }

    /// spec §1: "Input with more decimals than the scale … is rejected … nothing is rounded
    /// silently." Here the digits beyond the scale are not all zero, so accepting would round.
    #[test]
    fn parse_rejects_digits_beyond_the_scale(text in scale().prop_flat_map(|scale| (Just(scale), too_precise_text(scale, true)))) {
        let (scale, text) = text;
        let parsed = Amount::parse(&text, scale);
        prop_assert!(
            matches!(parsed, Err(AmountError::TooPrecise { .. })),
            "{:?} at scale {} must be TooPrecise, got {:?}", text, scale.decimals(), parsed
        );
    }

    /// spec §1 read to the letter: "Input with more decimals than the scale" is rejected, even
    /// when the extra decimals are zeros (`"1.500"` at scale 2). purse-core accepts such text
    /// (money.rs: "Trailing zeros beyond the scale are fine"). This test fails until the two
    /// agree: either purse-core rejects it, or docs/spec.md says trailing zeros are allowed and this
    /// test is changed to expect acceptance.
    #[test]
    fn parse_rejects_any_text_with_more_decimals_than_the_scale(
        text in scale().prop_flat_map(|scale| (Just(scale), too_precise_text(scale, false)))
    ) {
        let (scale, text) = text;
        let parsed = Amount::parse(&text, scale);
        prop_assert!(parsed.is_err(), "{:?} has more decimals than scale {} but parsed as {:?}", text, scale.decimals(), parsed);
    }

    /// The model's half-up agrees with purse-core's `ratio_half_up` on non-negative ratios.
    #[test]
    fn half_up_agrees(value in 0i64..=i64::MAX / 2, numerator in 0i64..=1_000_000, denominator in 1i64..=1_000_000) {
        let model = half_up(i128::from(value) * i128::from(numerator), i128::from(denominator));
        let core = Amount::from_minor(value).ratio_half_up(numerator, denominator).map(|amount| i128::from(amount.minor()));
        if i64::try_from(model).is_ok() {
            prop_assert_eq!(core, Some(model));
        } else {
            prop_assert_eq!(core, None);
        }
    }

    /// spec §1/§4: the deduction parts add up to the value exactly, none is negative, none
    /// exceeds its bucket, PRE goes first; and purse-core's split is the model's.
    #[test]
    fn deduction_split_adds_up_and_fits((balance, value) in balance_and_value(), (model_order, core_order) in order()) {
        let split = deduct_split(balance, value, model_order);
        prop_assert_eq!(split.total(), i128::from(value), "{:?} of {:?}", split, balance);
        for (part, held) in split.to_array().into_iter().zip(balance.to_array()) {
            prop_assert!((0..=held).contains(&part), "part {} of bucket {} in {:?} of {:?}", part, held, split, balance);
        }
        prop_assert_eq!(split.pre, value.min(balance.pre), "PRE is spent first");
        let buckets = Buckets::from_minor(balance.real, balance.gift, balance.pre);
        let core = deduction_split(&buckets, Amount::from_minor(value), core_order);
        let core = Parts::new(core.real.minor(), core.gift.minor(), core.pre.minor());
        prop_assert_eq!(core, split, "purse-core vs model, {:?} of {:?} by {:?}", value, balance, model_order);
    }

    /// spec §2: a refund's parts add up to its value and never exceed any bucket's rest.
    #[test]
    fn refund_split_adds_up_and_fits((moved, refunded, value) in refund_case()) {
        let split = undeduct_split(moved, refunded, Some(value)).map_err(TestCaseError::fail)?;
        prop_assert_eq!(split.total(), i128::from(value));
        let rests = [moved.real - refunded.real, moved.gift - refunded.gift, moved.pre - refunded.pre];
        for (part, rest) in split.to_array().into_iter().zip(rests) {
            prop_assert!((0..=rest).contains(&part), "part {} of rest {:?}: {:?}", part, rests, split);
        }
    }
}
