//! Exact money: signed 64-bit minor units at one declared scale.
//!
//! Parsing accepts decimal text and JSON number literals (`"12.30"`, `12.3`, `1.5e2`) and
//! rejects anything that would need rounding, lies outside `i64` minor units, or is not a
//! finite number. Nothing is ever rounded silently: the only rounding in purse is
//! [`Amount::ratio_half_up`], called where a rule divides money.

use std::str::FromStr;

use rust_decimal::Decimal;

/// The largest scale purse accepts. `10^SCALE_MAX` still leaves `i64` room for ~9.2e12 units.
pub const SCALE_MAX: u32 = 6;

/// The longest amount text considered at all; longer input is rejected before parsing.
pub const AMOUNT_TEXT_LENGTH_MAX: usize = 64;

/// The number of decimals of the ledger's currency (CNY: 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scale(u32);

impl Scale {
    /// The default scale, two decimals (CNY fen).
    pub const CNY: Scale = Scale(2);

    /// A scale of `decimals` digits; `None` above [`SCALE_MAX`].
    pub const fn new(decimals: u32) -> Option<Scale> {
        if decimals <= SCALE_MAX {
            Some(Scale(decimals))
        } else {
            None
        }
    }

    pub const fn decimals(self) -> u32 {
        self.0
    }

    /// Minor units in one major unit: 100 at scale 2.
    pub const fn factor(self) -> i64 {
        10i64.pow(self.0)
    }
}

impl Default for Scale {
    fn default() -> Self {
        Scale::CNY
    }
}

/// Why a text is not an amount. Callers name the field; this names the defect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    #[error("{text:?} is not a decimal number")]
    NotANumber { text: String },
    #[error("{text:?} has more than {decimals} decimals")]
    TooPrecise { text: String, decimals: u32 },
    #[error("{text:?} is outside the range of signed 64-bit minor units")]
    OutOfRange { text: String },
}

/// A signed amount in minor units. Arithmetic is checked: overflow is `None`, never a wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub const fn from_minor(minor: i64) -> Amount {
        Amount(minor)
    }

    pub const fn minor(self) -> i64 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn checked_neg(self) -> Option<Amount> {
        self.0.checked_neg().map(Amount)
    }

    pub fn checked_mul(self, times: i64) -> Option<Amount> {
        self.0.checked_mul(times).map(Amount)
    }

    /// `self · numerator / denominator`, rounded half-up (half away from zero) to the minor unit.
    ///
    /// Exact: the product is formed in `i128`, so no intermediate rounding happens.
    /// `None` when `denominator` is zero or the result leaves `i64`.
    ///
    /// ```
    /// use purse_core::Amount;
    /// // 10% of 123.45 is 12.345, half-up 12.35.
    /// assert_eq!(Amount::from_minor(12345).ratio_half_up(1000, 10_000), Some(Amount::from_minor(1235)));
    /// ```
    pub fn ratio_half_up(self, numerator: i64, denominator: i64) -> Option<Amount> {
        if denominator == 0 {
            return None;
        }
        let product = i128::from(self.0) * i128::from(numerator);
        let denominator = i128::from(denominator);
        let negative = (product < 0) != (denominator < 0);
        let (product, denominator) = (product.unsigned_abs(), denominator.unsigned_abs());
        let quotient = product / denominator;
        let remainder = product % denominator;
        // Half-up: round away from zero when the remainder is at least half the divisor.
        let rounded = if remainder * 2 >= denominator { quotient + 1 } else { quotient };
        let rounded = i128::try_from(rounded).ok()?;
        let signed = if negative { -rounded } else { rounded };
        i64::try_from(signed).ok().map(Amount)
    }

    /// Parses decimal text (`"100"`, `"-3.50"`, `"1.5e2"`) at `scale`, exactly.
    ///
    /// Accepts an optional sign, digits with an optional fraction, and an optional exponent,
    /// which covers both user text and JSON number literals. More decimals than the scale,
    /// even zeros (`"1.500"` at scale 2), are [`AmountError::TooPrecise`]: spec §1 counts
    /// written decimals, so a caller learns its input is at the wrong scale.
    pub fn parse(text: &str, scale: Scale) -> Result<Amount, AmountError> {
        let not_a_number = || AmountError::NotANumber { text: clip(text) };
        if text.is_empty() || text.len() > AMOUNT_TEXT_LENGTH_MAX || !is_number_syntax(text) {
            return Err(not_a_number());
        }
        let out_of_range = || AmountError::OutOfRange { text: clip(text) };
        let decimal = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text).map_err(|_| out_of_range())?
        } else {
            Decimal::from_str_exact(text).map_err(|_| out_of_range())?
        };
        // spec §1: more decimals than the scale is refused even when they are zeros ("1.500"
        // at scale 2). rust_decimal keeps the written scale, exponent applied ("1.5e2" is 0).
        if decimal.scale() > scale.decimals() {
            return Err(AmountError::TooPrecise { text: clip(text), decimals: scale.decimals() });
        }
        let minor = decimal.checked_mul(Decimal::from(scale.factor())).ok_or_else(out_of_range)?;
        debug_assert!(minor.fract().is_zero(), "scaled amount {minor} must be whole");
        i64::try_from(minor).map(Amount).map_err(|_| out_of_range())
    }

    /// Formats at `scale` with exactly `scale` decimals: `"100.00"`, `"-3.33"`.
    pub fn format(self, scale: Scale) -> String {
        Amount::format_wide(i128::from(self.0), scale)
    }

    /// [`Amount::format`] for a sum of many amounts in minor units, which may pass `i64` (a
    /// ledger-wide total): the same text for every value an amount can hold.
    pub fn format_wide(minor: i128, scale: Scale) -> String {
        let decimals = scale.decimals() as usize;
        let magnitude = minor.unsigned_abs();
        // Every answer renders several amounts: digits are written by hand, without the
        // formatting machinery (u128's Display alone cost more than the rest of a flow's view).
        let mut digits = [0u8; 40];
        let mut start = digits.len();
        let mut rest = magnitude;
        while rest > 0 || digits.len() - start <= decimals {
            start -= 1;
            // `rest % 10` is below 10: the cast cannot truncate.
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let text = &digits[start..];
        let (whole, fraction) = text.split_at(text.len() - decimals);
        let mut out = String::with_capacity(text.len() + 2);
        if minor < 0 {
            out.push('-');
        }
        // ASCII digits only.
        out.extend(whole.iter().map(|&digit| char::from(digit)));
        if decimals > 0 {
            out.push('.');
            out.extend(fraction.iter().map(|&digit| char::from(digit)));
        }
        out
    }
}

/// `-?digits(.digits?)?([eE][+-]?digits)?` or `-?.digits…`, the shape of a decimal or JSON number.
fn is_number_syntax(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        at += 1;
    }
    let integer_start = at;
    while at < bytes.len() && bytes[at].is_ascii_digit() {
        at += 1;
    }
    let mut digits = at - integer_start;
    if at < bytes.len() && bytes[at] == b'.' {
        at += 1;
        let fraction_start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        digits += at - fraction_start;
    }
    if digits == 0 {
        return false;
    }
    if at < bytes.len() && matches!(bytes[at], b'e' | b'E') {
        at += 1;
        if matches!(bytes.get(at), Some(b'-' | b'+')) {
            at += 1;
        }
        let exponent_start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        // Exponents beyond three digits are never a real amount; refuse them before parsing.
        let exponent_digits = at - exponent_start;
        if exponent_digits == 0 || exponent_digits > 3 {
            return false;
        }
    }
    at == bytes.len()
}

/// Error messages quote the input; keep a hostile megabyte out of them.
fn clip(text: &str) -> String {
    const CLIP_CHARS_MAX: usize = 40;
    if text.chars().count() <= CLIP_CHARS_MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(CLIP_CHARS_MAX).collect();
        format!("{head}…")
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(text: &str) -> Result<Scale, String> {
        let decimals: u32 = text.parse().map_err(|_| format!("scale {text:?} is not a whole number"))?;
        Scale::new(decimals).ok_or_else(|| format!("scale {decimals} is above the maximum {SCALE_MAX}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(text: &str, expect: Result<i64, &str>) {
        let got = Amount::parse(text, Scale::CNY).map(Amount::minor);
        match (got, expect) {
            (Ok(minor), Ok(expected)) => assert_eq!(minor, expected, "parse {text:?}"),
            (Err(error), Err(kind)) => {
                let got_kind = match error {
                    AmountError::NotANumber { .. } => "not_a_number",
                    AmountError::TooPrecise { .. } => "too_precise",
                    AmountError::OutOfRange { .. } => "out_of_range",
                };
                assert_eq!(got_kind, kind, "parse {text:?}: {error}");
            }
            (got, expect) => panic!("parse {text:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn parse_table() {
        let table: &[(&str, Result<i64, &str>)] = &[
            ("100", Ok(10_000)),
            ("100.00", Ok(10_000)),
            ("0.01", Ok(1)),
            ("1.50", Ok(150)),
            ("1.500", Err("too_precise")),
            ("1.5e2", Ok(15_000)),
            ("1.234e1", Ok(1234)),
            ("1.2345e1", Err("too_precise")),
            ("-1", Ok(-100)),
            ("+2.5", Ok(250)),
            (".5", Ok(50)),
            ("5.", Ok(500)),
            ("1E-2", Ok(1)),
            ("0", Ok(0)),
            ("92233720368547758.07", Ok(i64::MAX)),
            ("-92233720368547758.08", Ok(i64::MIN)),
            ("0.001", Err("too_precise")),
            ("12.345", Err("too_precise")),
            ("1e-3", Err("too_precise")),
            ("1e30", Err("out_of_range")),
            ("92233720368547758.08", Err("out_of_range")),
            ("99999999999999999999999999999999", Err("out_of_range")),
            ("abc", Err("not_a_number")),
            ("", Err("not_a_number")),
            ("NaN", Err("not_a_number")),
            ("Infinity", Err("not_a_number")),
            ("-inf", Err("not_a_number")),
            ("1,00", Err("not_a_number")),
            (" 1", Err("not_a_number")),
            ("1e", Err("not_a_number")),
            ("1e1000", Err("not_a_number")),
            ("--1", Err("not_a_number")),
            (".", Err("not_a_number")),
            ("0x10", Err("not_a_number")),
        ];
        for (text, expect) in table {
            check_parse(text, *expect);
        }
    }

    #[test]
    fn parse_respects_scale() {
        let yen = Scale::new(0).unwrap();
        assert_eq!(Amount::parse("15", yen), Ok(Amount::from_minor(15)));
        assert!(matches!(Amount::parse("1.5", yen), Err(AmountError::TooPrecise { .. })));
        let mills = Scale::new(3).unwrap();
        assert_eq!(Amount::parse("0.001", mills), Ok(Amount::from_minor(1)));
        assert!(Scale::new(SCALE_MAX + 1).is_none());
    }

    #[test]
    fn format_table() {
        let table: &[(i64, u32, &str)] = &[
            (10_000, 2, "100.00"),
            (1, 2, "0.01"),
            (-333, 2, "-3.33"),
            (0, 2, "0.00"),
            (-5, 2, "-0.05"),
            (i64::MIN, 2, "-92233720368547758.08"),
            (42, 0, "42"),
            (1, 3, "0.001"),
        ];
        for &(minor, decimals, expect) in table {
            let scale = Scale::new(decimals).unwrap();
            assert_eq!(Amount::from_minor(minor).format(scale), expect);
            assert_eq!(Amount::parse(expect, scale), Ok(Amount::from_minor(minor)), "round trip {expect}");
        }
    }

    /// The hand-written digits against `format!`, which `format_wide` used before: every scale,
    /// the extremes of `i128` and `i64`, and values around each power of ten.
    #[test]
    fn format_wide_matches_the_formatting_machinery() {
        let reference = |minor: i128, decimals: u32| {
            let magnitude = minor.unsigned_abs();
            let sign = if minor < 0 { "-" } else { "" };
            if decimals == 0 {
                return format!("{sign}{magnitude}");
            }
            let factor = 10u128.pow(decimals);
            format!("{sign}{}.{:0width$}", magnitude / factor, magnitude % factor, width = decimals as usize)
        };
        let mut values = vec![0, 1, -1, i128::MAX, i128::MIN, i128::from(i64::MAX), i128::from(i64::MIN)];
        for power in 0..39 {
            let ten = 10i128.pow(power);
            values.extend([ten - 1, ten, ten + 1, -ten + 1, -ten, -ten - 1]);
        }
        for decimals in 0..=SCALE_MAX {
            let scale = Scale::new(decimals).unwrap();
            for &minor in &values {
                assert_eq!(Amount::format_wide(minor, scale), reference(minor, decimals), "{minor} at {decimals}");
            }
        }
    }

    #[test]
    fn ratio_half_up_table() {
        // (value, numerator, denominator, expected)
        let table: &[(i64, i64, i64, Option<i64>)] = &[
            (12_345, 1000, 10_000, Some(1235)), // 12.345 → 12.35
            (1000, 3333, 10_000, Some(333)),    // 3.333 → 3.33
            (5, 1, 2, Some(3)),                 // 2.5 → 3
            (4, 1, 3, Some(1)),                 // 1.33 → 1
            (5, 1, 3, Some(2)),                 // 1.67 → 2
            (-5, 1, 2, Some(-3)),               // half away from zero
            (1, 1, 0, None),
            (i64::MAX, 2, 1, None),
            (i64::MAX, i64::MAX, i64::MAX, Some(i64::MAX)),
        ];
        for &(value, numerator, denominator, expect) in table {
            let got = Amount::from_minor(value).ratio_half_up(numerator, denominator).map(Amount::minor);
            assert_eq!(got, expect, "{value}·{numerator}/{denominator}");
        }
    }

    #[test]
    fn checked_arithmetic_never_wraps() {
        let max = Amount::from_minor(i64::MAX);
        assert_eq!(max.checked_add(Amount::from_minor(1)), None);
        assert_eq!(Amount::from_minor(i64::MIN).checked_neg(), None);
        assert_eq!(Amount::from_minor(i64::MIN).checked_sub(Amount::from_minor(1)), None);
        assert_eq!(max.checked_mul(2), None);
    }
}
