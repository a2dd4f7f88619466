//! The three buckets of an account and the property-list view (REAL, GIFT, PRE, TOTAL).

use std::fmt;

use crate::money::Amount;

/// One of the stored buckets. `TOTAL` is not a bucket: it is derived (see [`Property`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bucket {
    /// Paid principal (实储).
    Real,
    /// Recharge bonus (赠储).
    Gift,
    /// Pre-stored value loaded outside a recharge (预储).
    Pre,
}

impl Bucket {
    pub const ALL: [Bucket; 3] = [Bucket::Real, Bucket::Gift, Bucket::Pre];

    pub const fn as_str(self) -> &'static str {
        match self {
            Bucket::Real => "REAL",
            Bucket::Gift => "GIFT",
            Bucket::Pre => "PRE",
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry name of a property list: the three buckets and their derived `TOTAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Property {
    Real,
    Gift,
    Pre,
    Total,
}

impl Property {
    /// The order of every property list: REAL, GIFT, PRE, TOTAL.
    pub const ALL: [Property; 4] = [Property::Real, Property::Gift, Property::Pre, Property::Total];

    pub const fn as_str(self) -> &'static str {
        match self {
            Property::Real => "REAL",
            Property::Gift => "GIFT",
            Property::Pre => "PRE",
            Property::Total => "TOTAL",
        }
    }
}

/// One amount per bucket. Used for balances (never negative) and for a flow's signed `affected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Buckets {
    pub real: Amount,
    pub gift: Amount,
    pub pre: Amount,
}

impl Buckets {
    pub const ZERO: Buckets = Buckets { real: Amount::ZERO, gift: Amount::ZERO, pre: Amount::ZERO };

    pub const fn new(real: Amount, gift: Amount, pre: Amount) -> Buckets {
        Buckets { real, gift, pre }
    }

    pub const fn from_minor(real: i64, gift: i64, pre: i64) -> Buckets {
        Buckets { real: Amount::from_minor(real), gift: Amount::from_minor(gift), pre: Amount::from_minor(pre) }
    }

    pub fn get(&self, bucket: Bucket) -> Amount {
        match bucket {
            Bucket::Real => self.real,
            Bucket::Gift => self.gift,
            Bucket::Pre => self.pre,
        }
    }

    /// `TOTAL = REAL + GIFT + PRE`; `None` only if the sum leaves `i64`.
    pub fn total(&self) -> Option<Amount> {
        self.real.checked_add(self.gift)?.checked_add(self.pre)
    }

    pub fn checked_add(&self, other: &Buckets) -> Option<Buckets> {
        Some(Buckets {
            real: self.real.checked_add(other.real)?,
            gift: self.gift.checked_add(other.gift)?,
            pre: self.pre.checked_add(other.pre)?,
        })
    }

    pub fn checked_sub(&self, other: &Buckets) -> Option<Buckets> {
        Some(Buckets {
            real: self.real.checked_sub(other.real)?,
            gift: self.gift.checked_sub(other.gift)?,
            pre: self.pre.checked_sub(other.pre)?,
        })
    }

    pub fn checked_neg(&self) -> Option<Buckets> {
        Some(Buckets { real: self.real.checked_neg()?, gift: self.gift.checked_neg()?, pre: self.pre.checked_neg()? })
    }

    /// The first bucket that is negative, if any. A balance must have none.
    pub fn negative_bucket(&self) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|bucket| self.get(*bucket).is_negative())
    }

    pub fn is_zero(&self) -> bool {
        Bucket::ALL.into_iter().all(|bucket| self.get(bucket).is_zero())
    }

    /// The property-list view: REAL, GIFT, PRE, TOTAL in that order.
    /// `None` only if TOTAL leaves `i64`, which a valid balance never does.
    pub fn properties(&self) -> Option<[(Property, Amount); 4]> {
        Some([
            (Property::Real, self.real),
            (Property::Gift, self.gift),
            (Property::Pre, self.pre),
            (Property::Total, self.total()?),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_list_order_and_total() {
        let balance = Buckets::from_minor(10_000, 2_000, 500);
        let names: Vec<&str> = balance.properties().unwrap().iter().map(|(property, _)| property.as_str()).collect();
        assert_eq!(names, ["REAL", "GIFT", "PRE", "TOTAL"]);
        assert_eq!(balance.properties().unwrap()[3].1, Amount::from_minor(12_500));
    }

    #[test]
    fn negative_bucket_finds_each() {
        assert_eq!(Buckets::from_minor(0, 0, 0).negative_bucket(), None);
        assert_eq!(Buckets::from_minor(-1, 0, 0).negative_bucket(), Some(Bucket::Real));
        assert_eq!(Buckets::from_minor(0, -1, 0).negative_bucket(), Some(Bucket::Gift));
        assert_eq!(Buckets::from_minor(0, 0, -1).negative_bucket(), Some(Bucket::Pre));
    }

    #[test]
    fn overflow_is_none() {
        let near = Buckets::from_minor(i64::MAX, 1, 0);
        assert_eq!(near.total(), None);
        assert_eq!(near.properties(), None);
        assert_eq!(near.checked_add(&Buckets::from_minor(1, 0, 0)), None);
    }
}
