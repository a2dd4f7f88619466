//! Random steps for the state-machine test: abstract steps that proptest generates and shrinks,
//! resolved into concrete purse-core commands against the model's current state.
//!
//! Steps name accounts, order ids and amounts indirectly (an existing DEDUCT, a fraction of the
//! balance, a fresh or reused order id), so refunds, reversals, duplicates and overdrafts hit
//! often, and a shrunk sequence still means something.

mod resolve;

use proptest::prelude::*;
use purse_proptests::model::{DeductOrder, GiftRule};

pub use resolve::{describe, Resolver};

/// The accounts steps draw from, with each one's usual card and brand. The last is rare.
pub const ACCOUNTS: [(&str, Option<&str>); 5] =
    [("a", None), ("b", Some("B1")), ("c", Some("B2")), ("d", Some("B1")), ("e", Some("B3"))];
/// Brands a rules change may be for (index into this; `None` entries in steps: the default).
pub const BRANDS: [&str; 3] = ["B1", "B2", "B3"];

/// How a command names its card or brand.
#[derive(Debug, Clone, Copy)]
pub enum Tag {
    /// The account's usual one (none for brand of account `a`).
    Home,
    Absent,
    /// One that is not the account's usual one.
    Other,
}

/// A defect (or a boundary) in the string arguments.
#[derive(Debug, Clone, Copy)]
pub enum Mangle {
    None,
    EmptyRequest,
    LongRequest,
    MaxRequest,
    EmptyOrder,
    LongOrder,
    MaxOrder,
    LongAccount,
    /// 64 two-byte characters: valid, characters are counted, not bytes.
    WideAccount,
    ControlAccount,
    LongShop,
    ControlOperator,
    LongRemark,
    MaxRemark,
    LongExtInfo,
    EmptySource,
}

impl Mangle {
    /// Every variant but `None`: a variant missing here is never generated, so keep it whole.
    pub const DEFECTS: [Mangle; 15] = {
        use Mangle::*;
        [
            EmptyRequest,
            LongRequest,
            MaxRequest,
            EmptyOrder,
            LongOrder,
            MaxOrder,
            LongAccount,
            WideAccount,
            ControlAccount,
            LongShop,
            ControlOperator,
            LongRemark,
            MaxRemark,
            LongExtInfo,
            EmptySource,
        ]
    };
}

#[derive(Debug, Clone, Copy)]
pub struct Tags {
    pub card: Tag,
    pub brand: Tag,
    pub mangle: Mangle,
}

/// The account of a DEDUCT or ADJUST.
#[derive(Debug, Clone, Copy)]
pub enum AccountPick {
    /// The n-th open account (or account `a` while none is open).
    Open(u8),
    /// Any of [`ACCOUNTS`], open or not.
    Named(u8),
}

/// A new order id: fresh, or one tried before (accepted or rejected).
#[derive(Debug, Clone, Copy)]
pub enum OrderPick {
    Fresh,
    Reuse(u8),
}

/// The order an UNDEDUCT or UNCHARGE refers to.
#[derive(Debug, Clone, Copy)]
pub enum RefPick {
    /// The n-th written order of the type the command needs.
    OfKind(u8),
    /// The n-th most recent order of the type the command needs (0: the latest), so that
    /// several refunds of one DEDUCT follow each other.
    Recent(u8),
    /// The n-th written order of any type.
    Any(u8),
    /// An id never written.
    Unknown,
}

/// The account of an UNDEDUCT or UNCHARGE.
#[derive(Debug, Clone, Copy)]
pub enum RefAccount {
    /// The referenced order's account.
    Owner,
    Pick(u8),
}

/// An amount given relative to something: a balance (DEDUCT) or a refundable rest (UNDEDUCT).
#[derive(Debug, Clone, Copy)]
pub enum Relative {
    Lit(i64),
    /// `per_mille / 1000` of it, rounded down.
    Fraction(u16),
    /// It, plus `-3..=1`.
    Plus(i8),
}

/// A signed ADJUST part.
#[derive(Debug, Clone, Copy)]
pub enum AdjustPart {
    Lit(i64),
    /// Minus the bucket's balance, plus `-1`, `0` or `1`.
    Drain(i8),
}

#[derive(Debug, Clone, Copy)]
pub enum When {
    Absent,
    PastBy(u32),
    Now,
    FutureBy(u32),
}

#[derive(Debug, Clone, Copy)]
pub enum RemarkPick {
    Absent,
    Blank,
    Text,
}

/// A rules change as generated: the brand (`None`: the ledger default) and its fields.
#[derive(Debug, Clone)]
pub struct RulesStep {
    pub brand: Option<u8>,
    pub order: DeductOrder,
    pub gift: GiftRule,
    /// Spell defaults out (`deduction_order`, `full_gift_switch=false`) or leave them out, and
    /// use ALSC's `PROPERTIONAL` spelling.
    pub terse: bool,
}

#[derive(Debug, Clone)]
pub enum Step {
    Charge {
        account: u8,
        order: OrderPick,
        real: i64,
        gift: Option<i64>,
        pre: i64,
        trigger: bool,
        tags: Tags,
    },
    Deduct {
        account: AccountPick,
        order: OrderPick,
        value: Relative,
        tags: Tags,
    },
    Undeduct {
        account: RefAccount,
        order: OrderPick,
        source: RefPick,
        value: Option<Relative>,
        tags: Tags,
    },
    Uncharge {
        account: RefAccount,
        order: OrderPick,
        source: RefPick,
        tags: Tags,
    },
    Import {
        account: u8,
        order: OrderPick,
        parts: [i64; 3],
        when: When,
        tags: Tags,
    },
    Adjust {
        account: AccountPick,
        order: OrderPick,
        parts: [AdjustPart; 3],
        remark: RemarkPick,
        tags: Tags,
    },
    /// A provider-authoritative flow (ingestion): the given change, any of the six types.
    Recorded {
        account: AccountPick,
        order: OrderPick,
        flow_type: u8,
        parts: [AdjustPart; 3],
        tags: Tags,
    },
    Rules(RulesStep),
}

// ---------------------------------------------------------------- strategies

fn account() -> impl Strategy<Value = u8> {
    prop_oneof![12 => 0u8..4, 1 => Just(4u8)]
}

/// Small money, mostly; now and then zero, negative, or near the ends of `i64`.
pub fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => Just(0i64),
        10 => 1i64..=100,
        24 => 0i64..=50_000,
        1 => -100i64..=-1,
        1 => prop::sample::select(vec![i64::MAX, i64::MAX / 2 + 1, i64::MIN, -50_000]),
    ]
}

fn mostly_zero() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 1 => amount()]
}

fn account_pick() -> impl Strategy<Value = AccountPick> {
    prop_oneof![4 => any::<u8>().prop_map(AccountPick::Open), 1 => account().prop_map(AccountPick::Named)]
}

fn order_pick() -> impl Strategy<Value = OrderPick> {
    prop_oneof![12 => Just(OrderPick::Fresh), 1 => any::<u8>().prop_map(OrderPick::Reuse)]
}

fn ref_pick() -> impl Strategy<Value = RefPick> {
    prop_oneof![
        5 => any::<u8>().prop_map(RefPick::OfKind),
        8 => (0u8..2).prop_map(RefPick::Recent),
        2 => any::<u8>().prop_map(RefPick::Any),
        1 => Just(RefPick::Unknown),
    ]
}

fn ref_account() -> impl Strategy<Value = RefAccount> {
    prop_oneof![10 => Just(RefAccount::Owner), 1 => account().prop_map(RefAccount::Pick)]
}

fn relative() -> impl Strategy<Value = Relative> {
    prop_oneof![
        4 => amount().prop_map(Relative::Lit),
        2 => (1i64..=3).prop_map(Relative::Lit),
        5 => (0u16..=1000).prop_map(Relative::Fraction),
        3 => (-3i8..=1).prop_map(Relative::Plus),
    ]
}

fn adjust_part() -> impl Strategy<Value = AdjustPart> {
    prop_oneof![
        4 => Just(AdjustPart::Lit(0)),
        4 => (-50_000i64..=50_000).prop_map(AdjustPart::Lit),
        1 => amount().prop_map(AdjustPart::Lit),
        2 => (-1i8..=1).prop_map(AdjustPart::Drain),
    ]
}

fn tag(home: u32, absent: u32, other: u32) -> impl Strategy<Value = Tag> {
    prop_oneof![home => Just(Tag::Home), absent => Just(Tag::Absent), other => Just(Tag::Other)]
}

fn mangle() -> impl Strategy<Value = Mangle> {
    prop_oneof![40 => Just(Mangle::None), 1 => prop::sample::select(Mangle::DEFECTS.to_vec())]
}

fn tags() -> impl Strategy<Value = Tags> {
    (tag(4, 8, 1), tag(8, 3, 1), mangle()).prop_map(|(card, brand, mangle)| Tags { card, brand, mangle })
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        4 => Just(When::Absent),
        3 => (1u32..=1_000_000).prop_map(When::PastBy),
        1 => Just(When::Now),
        1 => (1u32..=86_400).prop_map(When::FutureBy),
    ]
}

fn remark() -> impl Strategy<Value = RemarkPick> {
    prop_oneof![1 => Just(RemarkPick::Absent), 1 => Just(RemarkPick::Blank), 10 => Just(RemarkPick::Text)]
}

/// Tiers with distinct `real_value`s (purse-core refuses two tiers with the same one).
fn tiers(gift: impl Strategy<Value = i64>) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((prop_oneof![1i64..=100, 1i64..=30_000], gift), 0..=4).prop_map(|mut tiers| {
        let mut seen = std::collections::BTreeSet::new();
        tiers.retain(|(real, _)| seen.insert(*real));
        tiers
    })
}

fn rules_step() -> impl Strategy<Value = RulesStep> {
    let order = prop_oneof![Just(DeductOrder::Percent), Just(DeductOrder::RealFirst), Just(DeductOrder::GiftFirst)];
    let gift = prop_oneof![
        1 => Just(GiftRule::None),
        3 => (any::<bool>(), tiers(0i64..=10_000)).prop_map(|(full, tiers)| GiftRule::Customized { full, tiers }),
        2 => tiers(prop_oneof![4 => 0i64..=20_000, 1 => 0i64..=1_000_000])
            .prop_map(|tiers| GiftRule::Proportional { tiers }),
    ];
    (prop_oneof![1 => Just(None), 3 => (0u8..3).prop_map(Some)], order, gift, any::<bool>())
        .prop_map(|(brand, order, gift, terse)| RulesStep { brand, order, gift, terse })
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (account(), order_pick(), 0i64..=3, prop::option::of(0i64..=3), 0i64..=3, tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: false, tags }
            }),
        6 => (account(), order_pick(), amount(), prop::option::weighted(0.6, amount()), mostly_zero(), tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: false, tags }
            }),
        3 => (account(), order_pick(), amount(), prop::option::weighted(0.1, amount()), mostly_zero(), tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: true, tags }
            }),
        7 => (account_pick(), order_pick(), relative(), tags())
            .prop_map(|(account, order, value, tags)| Step::Deduct { account, order, value, tags }),
        10 => (ref_account(), order_pick(), ref_pick(), prop::option::weighted(0.85, relative()), tags())
            .prop_map(|(account, order, source, value, tags)| Step::Undeduct { account, order, source, value, tags }),
        2 => (ref_account(), order_pick(), ref_pick(), tags())
            .prop_map(|(account, order, source, tags)| Step::Uncharge { account, order, source, tags }),
        2 => (account(), order_pick(), [mostly_zero(), mostly_zero(), mostly_zero()], when(), tags())
            .prop_map(|(account, order, parts, when, tags)| Step::Import { account, order, parts, when, tags }),
        3 => (account_pick(), order_pick(), [adjust_part(), adjust_part(), adjust_part()], remark(), tags())
            .prop_map(|(account, order, parts, remark, tags)| Step::Adjust { account, order, parts, remark, tags }),
        2 => (account_pick(), order_pick(), 0u8..6, [adjust_part(), adjust_part(), adjust_part()], tags()).prop_map(
            |(account, order, flow_type, parts, tags)| Step::Recorded { account, order, flow_type, parts, tags }
        ),
        1 => rules_step().prop_map(Step::Rules),
    ]
}

/// Small multi-bucket DEDUCTs, each followed by a run of partial refunds: the steps that reach
/// the rounding corners of the spec §2 refund split (REAL's rest running out first, the excess
/// moving to GIFT, then PRE), which random sequences rarely do.
pub fn refund_series() -> impl Strategy<Value = Vec<Step>> {
    let plain = Tags { card: Tag::Absent, brand: Tag::Absent, mangle: Mangle::None };
    let refund_value = prop_oneof![
        3 => (1i64..=3).prop_map(Relative::Lit),
        3 => (1u16..=999).prop_map(Relative::Fraction),
        2 => (-3i8..=-1).prop_map(Relative::Plus),
    ];
    let refunds = prop::collection::vec(prop::option::weighted(0.9, refund_value), 1..8);
    let round = (0u8..3, 1i64..=30, 0i64..=30, 0i64..=30, 300u16..=1000, refunds).prop_map(
        move |(account, real, gift, pre, share, refunds)| {
            let mut steps = vec![
                Step::Charge {
                    account,
                    order: OrderPick::Fresh,
                    real,
                    gift: Some(gift),
                    pre,
                    trigger: false,
                    tags: plain,
                },
                Step::Deduct {
                    account: AccountPick::Named(account),
                    order: OrderPick::Fresh,
                    value: Relative::Fraction(share),
                    tags: plain,
                },
            ];
            steps.extend(refunds.into_iter().map(|value| Step::Undeduct {
                account: RefAccount::Owner,
                order: OrderPick::Fresh,
                source: RefPick::Recent(0),
                value,
                tags: plain,
            }));
            steps
        },
    );
    let rules = prop::option::of(rules_step().prop_map(Step::Rules));
    (rules, prop::collection::vec(round, 1..4))
        .prop_map(|(rules, rounds)| rules.into_iter().chain(rounds.into_iter().flatten()).collect::<Vec<_>>())
}
