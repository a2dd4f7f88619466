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

/// The business time of step 0; each step is a minute later.
pub const START: i64 = 1_800_000_000;
/// Lot expiries, in seconds after [`START`]: few, so that lots of one account share an expiry
/// (ties go by creation order) and sweeps hit them exactly (expiry ≤ TIME). A run of 56 steps
/// spans the first three; the last is past every step, and before the sweeps by days.
pub const EXPIRY_SLOTS: [i64; 5] = [600, 1_200, 1_200 + 600, 3_000, 2 * 86_400 - 60];

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
    /// An order id starting as the sweep's do (`expire:`): reserved.
    SweepPrefix,
    /// The referenced order (UNDEDUCT, UNCHARGE, CAPTURE, RELEASE) or a transfer's destination
    /// left empty.
    EmptySource,
    /// A transfer's destination one character too long.
    LongDestination,
}

impl Mangle {
    /// Every variant but `None`: a variant missing here is never generated, so keep it whole.
    pub const DEFECTS: [Mangle; 17] = {
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
            SweepPrefix,
            EmptySource,
            LongDestination,
        ]
    };
}

/// A `gift_expire_time` or `pre_expire_time` (spec §11).
#[derive(Debug, Clone, Copy)]
pub enum ExpiryPick {
    /// `START +` one of [`EXPIRY_SLOTS`]: the n-th of those after the command's order_time.
    Slot(u8),
    /// The command's order_time minus this (0: at it): refused.
    Before(u32),
}

#[derive(Debug, Clone, Copy)]
pub struct Tags {
    pub card: Tag,
    pub brand: Tag,
    pub mangle: Mangle,
    /// The lot expiries the command gives: mostly on CHARGE and IMPORT, now and then on
    /// anything (refused there).
    pub gift_expiry: Option<ExpiryPick>,
    pub pre_expiry: Option<ExpiryPick>,
}

impl Tags {
    /// No card, brand, defect or expiry.
    pub const PLAIN: Tags =
        Tags { card: Tag::Absent, brand: Tag::Absent, mangle: Mangle::None, gift_expiry: None, pre_expiry: None };
}

/// When a sweep runs (spec §11 `expire --now TIME`).
#[derive(Debug, Clone, Copy)]
pub enum SweepTime {
    /// At a lot expiry slot exactly.
    Slot(u8),
    /// The step's own time.
    Now,
    /// At the `expire_time` of the n-th open hold that has one (else now).
    HoldExpiry(u8),
    /// At the n-th expiry of a lot that holds value (else now): ties with it exactly.
    LotExpiry(u8),
    /// `START` plus this many days and an hour: past what `gift_valid_days` of that many days
    /// gave every CHARGE of the run.
    Days(u8),
}

/// A command sent with a sweep that the sweep itself would not send.
#[derive(Debug, Clone, Copy)]
pub enum SweepExtra {
    None,
    /// The sweep's first command again, at the end (DUPLICATE_ORDER once written).
    Again,
    /// The sweep's RELEASE of the n-th open hold, expired or not (INVALID_ARGUMENT if not).
    AnyHold(u8),
    /// An EXPIRE of the n-th account under an id that is not the sweep's (INVALID_ARGUMENT).
    Forged(u8),
    /// The sweep of an account never opened (spec §13: ACCOUNT_NOT_FOUND).
    Unknown,
}

/// The account of a DEDUCT, ADJUST, HOLD, status change or transfer.
#[derive(Debug, Clone, Copy)]
pub enum AccountPick {
    /// The n-th open account (or account `a` while none is open).
    Open(u8),
    /// Any of [`ACCOUNTS`], open or not.
    Named(u8),
    /// The account of the step before (so that a scene's steps act on one account).
    Last,
    /// The n-th FROZEN account (else as `Open`): what an UNFREEZE is for.
    Frozen(u8),
}

/// A transfer's destination.
#[derive(Debug, Clone, Copy)]
pub enum ToPick {
    Account(AccountPick),
    /// The n-th other open account of the source's brand (else a fresh one): a transfer that
    /// can succeed.
    SameBrand(u8),
    /// An account never seen: the transfer opens it.
    Fresh,
    /// The source itself.
    Same,
}

/// A HOLD's `expire_time`, in seconds after its own order_time (≤ 0: refused).
#[derive(Debug, Clone, Copy)]
pub enum Expire {
    Absent,
    After(i32),
}

/// A CAPTURE's business time.
#[derive(Debug, Clone, Copy)]
pub enum CaptureWhen {
    /// Now (steps are a minute apart, so a hold expiring in a few minutes runs out by itself).
    Now,
    /// The hold's `expire_time` plus `-1..=1` seconds (now for a hold without one).
    AtExpiry(i8),
    PastBy(u32),
}

/// FREEZE, UNFREEZE or CLOSE.
#[derive(Debug, Clone, Copy)]
pub enum StatusChange {
    Freeze,
    Unfreeze,
    Close,
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

/// An amount given relative to something: what is available (DEDUCT, HOLD, TRANSFER), a
/// refundable rest (UNDEDUCT) or a hold (CAPTURE).
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
    /// Minus what is available in the bucket, plus `-1`, `0` or `1`.
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
    /// spec §11 `gift_valid_days`.
    pub valid_days: Option<u32>,
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
    Hold {
        account: AccountPick,
        order: OrderPick,
        value: Relative,
        expire: Expire,
        when: When,
        tags: Tags,
    },
    Capture {
        account: RefAccount,
        order: OrderPick,
        source: RefPick,
        value: Option<Relative>,
        when: CaptureWhen,
        tags: Tags,
    },
    Release {
        account: RefAccount,
        order: OrderPick,
        source: RefPick,
        tags: Tags,
    },
    Status {
        account: AccountPick,
        order: OrderPick,
        change: StatusChange,
        remark: RemarkPick,
        tags: Tags,
    },
    Transfer {
        account: AccountPick,
        order: OrderPick,
        to: ToPick,
        value: Option<Relative>,
        tags: Tags,
    },
    /// spec §11 CLEAR of GIFT (0), PRE (1) or both (2).
    Clear {
        account: AccountPick,
        order: OrderPick,
        buckets: u8,
        remark: RemarkPick,
        tags: Tags,
    },
    /// spec §11 the sweep at a time: the RELEASE of every expired open hold, then an EXPIRE of
    /// every account, each a command of its own.
    Sweep {
        time: SweepTime,
        extra: SweepExtra,
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
    prop_oneof![
        8 => any::<u8>().prop_map(AccountPick::Open),
        2 => account().prop_map(AccountPick::Named),
        1 => Just(AccountPick::Last),
    ]
}

fn to_pick() -> impl Strategy<Value = ToPick> {
    prop_oneof![
        4 => account_pick().prop_map(ToPick::Account),
        4 => any::<u8>().prop_map(ToPick::SameBrand),
        2 => Just(ToPick::Fresh),
        1 => Just(ToPick::Same),
    ]
}

fn expire() -> impl Strategy<Value = Expire> {
    prop_oneof![
        3 => Just(Expire::Absent),
        1 => (-120i32..=0).prop_map(Expire::After),
        6 => (1i32..=600).prop_map(Expire::After),
        1 => (1i32..=86_400).prop_map(Expire::After),
    ]
}

fn capture_when() -> impl Strategy<Value = CaptureWhen> {
    prop_oneof![
        6 => Just(CaptureWhen::Now),
        3 => (-1i8..=1).prop_map(CaptureWhen::AtExpiry),
        1 => (1u32..=3_600).prop_map(CaptureWhen::PastBy),
    ]
}

fn status_change() -> impl Strategy<Value = StatusChange> {
    prop_oneof![
        3 => Just(StatusChange::Freeze),
        4 => Just(StatusChange::Unfreeze),
        2 => Just(StatusChange::Close),
    ]
}

fn hold_when() -> impl Strategy<Value = When> {
    prop_oneof![8 => Just(When::Absent), 1 => (1u32..=600).prop_map(When::PastBy), 1 => Just(When::Now)]
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

fn expiry_pick() -> impl Strategy<Value = ExpiryPick> {
    prop_oneof![
        12 => any::<u8>().prop_map(ExpiryPick::Slot),
        1 => (0u32..=120).prop_map(ExpiryPick::Before),
    ]
}

/// Tags with a gift and a pre expiry given with these probabilities.
fn tags_with_expiry(gift: f64, pre: f64) -> impl Strategy<Value = Tags> {
    let expiry = |probability| prop::option::weighted(probability, expiry_pick());
    (tag(4, 8, 1), tag(8, 3, 1), mangle(), expiry(gift), expiry(pre)).prop_map(
        |(card, brand, mangle, gift_expiry, pre_expiry)| Tags { card, brand, mangle, gift_expiry, pre_expiry },
    )
}

fn tags() -> impl Strategy<Value = Tags> {
    tags_with_expiry(0.02, 0.02)
}

/// A CHARGE's or IMPORT's tags: a gift expiry half the time, a pre expiry less often (PRE is
/// mostly not credited, and an expiry for it then is refused).
fn credit_tags() -> impl Strategy<Value = Tags> {
    tags_with_expiry(0.5, 0.2)
}

fn sweep_time() -> impl Strategy<Value = SweepTime> {
    prop_oneof![
        5 => any::<u8>().prop_map(SweepTime::Slot),
        2 => Just(SweepTime::Now),
        2 => any::<u8>().prop_map(SweepTime::HoldExpiry),
        3 => any::<u8>().prop_map(SweepTime::LotExpiry),
        1 => (1u8..=3).prop_map(SweepTime::Days),
    ]
}

fn sweep_extra() -> impl Strategy<Value = SweepExtra> {
    prop_oneof![
        12 => Just(SweepExtra::None),
        1 => Just(SweepExtra::Again),
        1 => any::<u8>().prop_map(SweepExtra::AnyHold),
        1 => any::<u8>().prop_map(SweepExtra::Forged),
        1 => Just(SweepExtra::Unknown),
    ]
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
    let valid_days = prop_oneof![2 => Just(None), 1 => (1u32..=3).prop_map(Some)];
    (prop_oneof![1 => Just(None), 3 => (0u8..3).prop_map(Some)], order, gift, valid_days, any::<bool>())
        .prop_map(|(brand, order, gift, valid_days, terse)| RulesStep { brand, order, gift, valid_days, terse })
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (account(), order_pick(), 0i64..=3, prop::option::of(0i64..=3), 0i64..=3, credit_tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: false, tags }
            }),
        6 => (account(), order_pick(), amount(), prop::option::weighted(0.6, amount()), mostly_zero(), credit_tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: false, tags }
            }),
        3 => (account(), order_pick(), amount(), prop::option::weighted(0.1, amount()), mostly_zero(), credit_tags())
            .prop_map(|(account, order, real, gift, pre, tags)| {
                Step::Charge { account, order, real, gift, pre, trigger: true, tags }
            }),
        7 => (account_pick(), order_pick(), relative(), tags())
            .prop_map(|(account, order, value, tags)| Step::Deduct { account, order, value, tags }),
        10 => (ref_account(), order_pick(), ref_pick(), prop::option::weighted(0.85, relative()), tags())
            .prop_map(|(account, order, source, value, tags)| Step::Undeduct { account, order, source, value, tags }),
        2 => (ref_account(), order_pick(), ref_pick(), tags())
            .prop_map(|(account, order, source, tags)| Step::Uncharge { account, order, source, tags }),
        2 => (account(), order_pick(), [mostly_zero(), mostly_zero(), mostly_zero()], when(), credit_tags())
            .prop_map(|(account, order, parts, when, tags)| Step::Import { account, order, parts, when, tags }),
        3 => (account_pick(), order_pick(), [adjust_part(), adjust_part(), adjust_part()], remark(), tags())
            .prop_map(|(account, order, parts, remark, tags)| Step::Adjust { account, order, parts, remark, tags }),
        2 => (account_pick(), order_pick(), 0u8..6, [adjust_part(), adjust_part(), adjust_part()], tags()).prop_map(
            |(account, order, flow_type, parts, tags)| Step::Recorded { account, order, flow_type, parts, tags }
        ),
        1 => rules_step().prop_map(Step::Rules),
        5 => (account_pick(), order_pick(), relative(), expire(), hold_when(), tags()).prop_map(
            |(account, order, value, expire, when, tags)| Step::Hold { account, order, value, expire, when, tags }
        ),
        5 => (ref_account(), order_pick(), ref_pick(), prop::option::weighted(0.6, relative()), capture_when(), tags())
            .prop_map(|(account, order, source, value, when, tags)| {
                Step::Capture { account, order, source, value, when, tags }
            }),
        3 => (ref_account(), order_pick(), ref_pick(), tags())
            .prop_map(|(account, order, source, tags)| Step::Release { account, order, source, tags }),
        3 => (account_pick(), order_pick(), status_change(), remark(), tags()).prop_map(
            |(account, order, change, remark, tags)| Step::Status { account, order, change, remark, tags }
        ),
        2 => (any::<u8>(), order_pick(), remark(), tags()).prop_map(|(frozen, order, remark, tags)| Step::Status {
            account: AccountPick::Frozen(frozen),
            order,
            change: StatusChange::Unfreeze,
            remark,
            tags
        }),
        4 => (account_pick(), order_pick(), to_pick(), prop::option::weighted(0.6, relative()), tags())
            .prop_map(|(account, order, to, value, tags)| Step::Transfer { account, order, to, value, tags }),
        2 => (account_pick(), order_pick(), 0u8..3, remark(), tags())
            .prop_map(|(account, order, buckets, remark, tags)| Step::Clear { account, order, buckets, remark, tags }),
        3 => (sweep_time(), sweep_extra()).prop_map(|(time, extra)| Step::Sweep { time, extra }),
    ]
}

/// Short scenes that random steps rarely line up: an account emptied by a merge and closed
/// (then written to, or transferred to), and a freeze followed by a transfer from the frozen
/// account.
pub fn scene() -> impl Strategy<Value = Vec<Step>> {
    let plain = Tags::PLAIN;
    let status = move |change| Step::Status {
        account: AccountPick::Last,
        order: OrderPick::Fresh,
        change,
        remark: RemarkPick::Text,
        tags: plain,
    };
    prop_oneof![
        (any::<u8>(), to_pick()).prop_map(move |(source, to)| vec![
            Step::Transfer {
                account: AccountPick::Open(source),
                order: OrderPick::Fresh,
                to,
                value: None,
                tags: plain
            },
            status(StatusChange::Close),
        ]),
        (any::<u8>(), to_pick()).prop_map(move |(source, to)| vec![
            Step::Status {
                account: AccountPick::Open(source),
                order: OrderPick::Fresh,
                change: StatusChange::Freeze,
                remark: RemarkPick::Text,
                tags: plain,
            },
            Step::Transfer { account: AccountPick::Last, order: OrderPick::Fresh, to, value: None, tags: plain },
        ]),
    ]
}

/// A scene of spec §11 lots on one account, which random steps line up too rarely: gifts of
/// one expiry (a tie) and of none, a consumption and a hold across them, a transfer of some
/// (lots keep their expiry), a sweep at a lot's expiry, a partial refund into the lots taken
/// (an expired one comes back), an UNCHARGE (its own lots first), and a sweep past it all.
pub fn lot_scene() -> impl Strategy<Value = Vec<Step>> {
    let plain = Tags::PLAIN;
    let credit = |slot: Option<u8>, pre: Option<u8>| Tags {
        gift_expiry: slot.map(ExpiryPick::Slot),
        pre_expiry: pre.map(ExpiryPick::Slot),
        ..Tags::PLAIN
    };
    (
        (0u8..4, any::<u8>(), any::<u8>(), [1i64..=500, 1i64..=500, 1i64..=500], 0i64..=300, 0i64..=200),
        (1u16..=1000, 1u16..=1000, 1u16..=999, 0u16..=600, any::<u8>(), any::<u8>(), 0u8..3, 1u8..=3),
    )
        .prop_map(
            move |(
                (account, slot, pre_slot, gifts, real, pre),
                (deduct, hold, refund, moved, expiry, sweep, uncharge, days),
            )| {
                let named = AccountPick::Named(account);
                let charge = |gift: i64, real: i64, pre: i64, tags: Tags| Step::Charge {
                    account,
                    order: OrderPick::Fresh,
                    real,
                    gift: Some(gift),
                    pre,
                    trigger: false,
                    tags,
                };
                let mut steps = vec![
                    charge(gifts[0], real, pre, credit(Some(slot), Some(pre_slot))),
                    charge(gifts[1], 0, 0, credit(Some(slot), None)),
                    charge(gifts[2], 0, 0, plain),
                    Step::Deduct {
                        account: named,
                        order: OrderPick::Fresh,
                        value: Relative::Fraction(deduct),
                        tags: plain,
                    },
                    Step::Hold {
                        account: named,
                        order: OrderPick::Fresh,
                        value: Relative::Fraction(hold),
                        expire: Expire::After(600),
                        when: When::Absent,
                        tags: plain,
                    },
                ];
                if moved > 0 {
                    steps.push(Step::Transfer {
                        account: named,
                        order: OrderPick::Fresh,
                        to: ToPick::SameBrand(0),
                        value: Some(Relative::Fraction(moved)),
                        tags: plain,
                    });
                }
                steps.push(Step::Sweep { time: SweepTime::LotExpiry(expiry), extra: SweepExtra::None });
                steps.push(Step::Undeduct {
                    account: RefAccount::Owner,
                    order: OrderPick::Fresh,
                    source: RefPick::Recent(0),
                    value: Some(Relative::Fraction(refund)),
                    tags: plain,
                });
                steps.push(Step::Uncharge {
                    account: RefAccount::Owner,
                    order: OrderPick::Fresh,
                    source: RefPick::Recent(uncharge),
                    tags: plain,
                });
                steps.push(Step::Sweep { time: SweepTime::LotExpiry(sweep), extra: SweepExtra::None });
                steps.push(Step::Sweep { time: SweepTime::Days(days), extra: SweepExtra::None });
                steps
            },
        )
}

/// A sequence of steps for the state machine: mostly single steps, now and then a scene.
pub fn steps() -> impl Strategy<Value = Vec<Step>> {
    let group = prop_oneof![24 => step().prop_map(|step| vec![step]), 1 => scene(), 1 => lot_scene()];
    prop::collection::vec(group, 1..56).prop_map(|groups| groups.into_iter().flatten().collect())
}

/// Small multi-bucket DEDUCTs (or HOLDs and partial CAPTUREs), each followed by a run of partial
/// refunds: the steps that reach the rounding corners of the spec §2 refund split (REAL's rest
/// running out first, the excess moving to GIFT, then PRE), which random sequences rarely do.
pub fn refund_series() -> impl Strategy<Value = Vec<Step>> {
    let plain = Tags::PLAIN;
    let refund_value = prop_oneof![
        3 => (1i64..=3).prop_map(Relative::Lit),
        3 => (1u16..=999).prop_map(Relative::Fraction),
        2 => (-3i8..=-1).prop_map(Relative::Plus),
    ];
    let refunds = prop::collection::vec(prop::option::weighted(0.9, refund_value), 1..8);
    // A round consumes by a DEDUCT, or by a HOLD and a CAPTURE of part (or all) of it, whose
    // partial split is the refund split with the hold as the original (spec §8).
    let capture_share = prop::option::weighted(0.8, (1u16..=999).prop_map(Relative::Fraction));
    let round = (0u8..3, 1i64..=30, 0i64..=30, 0i64..=30, 300u16..=1000, capture_share, any::<bool>(), refunds)
        .prop_map(move |(account, real, gift, pre, share, capture, via_hold, refunds)| {
            let mut steps = vec![Step::Charge {
                account,
                order: OrderPick::Fresh,
                real,
                gift: Some(gift),
                pre,
                trigger: false,
                tags: plain,
            }];
            let account = AccountPick::Named(account);
            let value = Relative::Fraction(share);
            if via_hold {
                let (expire, when) = (Expire::Absent, When::Absent);
                steps.push(Step::Hold { account, order: OrderPick::Fresh, value, expire, when, tags: plain });
                steps.push(Step::Capture {
                    account: RefAccount::Owner,
                    order: OrderPick::Fresh,
                    source: RefPick::Recent(0),
                    value: capture,
                    when: CaptureWhen::Now,
                    tags: plain,
                });
            } else {
                steps.push(Step::Deduct { account, order: OrderPick::Fresh, value, tags: plain });
            }
            steps.extend(refunds.into_iter().map(|value| Step::Undeduct {
                account: RefAccount::Owner,
                order: OrderPick::Fresh,
                source: RefPick::Recent(0),
                value,
                tags: plain,
            }));
            steps
        });
    let rules = prop::option::of(rules_step().prop_map(Step::Rules));
    (rules, prop::collection::vec(round, 1..4))
        .prop_map(|(rules, rounds)| rules.into_iter().chain(rounds.into_iter().flatten()).collect::<Vec<_>>())
}
