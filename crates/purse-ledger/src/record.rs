//! Storage records: the on-disk form of log entries, separate from the domain types.
//!
//! The domain (purse-core) is not serializable on purpose: these records are, and they are
//! converted by hand, so the domain can change without changing the disk. Enum variants and
//! numeric tags are only ever appended. The version byte lives in the block header
//! (see `block.rs`) and says how a record is encoded ([`Encoding`]): bincode 1.3 with varint
//! integers (block format 2), or with fixed-width ones (block format 1).

use purse_core::{
    Amount, Bucket, Buckets, DeductionOrder, Entry, Flow, FlowType, GiftRule, LotCredit, RuleSet, RulesChange, Source,
    Tier, TierGift, Timestamp,
};
use std::borrow::Cow;

use bincode::Options;
use purse_idempotency::Fingerprint;
use serde::{Deserialize, Serialize};

/// How the records of a block are encoded, by the block's format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Block format 1: `bincode::serialize`'s options (fixed-width little-endian integers, u64
    /// lengths). A flow took about 290 bytes.
    Fixed,
    /// Block format 2: varint integers and lengths, little-endian, trailing bytes refused. The
    /// same flow takes about a third less, and sled writes (and reads back) that much less.
    Varint,
}

/// One log entry as stored. Variant order is part of the format.
// Nearly every entry is a flow; boxing it would cost an allocation per flow.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum EntryRecord<'a> {
    /// A flow of record version 1: no held value, no hold expiry, no other account. Every flow
    /// of the original six types that touches no hold is still written this way, byte for byte
    /// as before holds existed.
    Flow(FlowRecord<'a>),
    Rules(RulesRecord),
    /// A flow of record version 2 (spec §8–§10): one that changes held value, has a hold's
    /// expiry or names a transfer's other account, and every flow of the types added with them.
    FlowWithHolds(FlowRecord<'a>, HoldsRecord<'a>),
    /// A flow of record version 3 (spec §11): one whose lots are not the plain ones (a credit
    /// with an expiry, or a TRANSFER_IN moving lots that expire). Every other flow is still
    /// written as version 1 or 2, and gets its plain lots when read.
    FlowWithLots(FlowRecord<'a>, HoldsRecord<'a>, LotsRecord),
    /// A rules change that sets `gift_valid_days` (spec §11); the others stay [`EntryRecord::Rules`].
    RulesWithExpiry(RulesRecord, RulesExpiryRecord),
}

/// What record version 3 adds to a flow: the lots it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LotsRecord {
    /// `(bucket tag: 1 GIFT / 2 PRE, value in minor units, expiry in Unix seconds)`, in the
    /// flow's order.
    pub lots: Vec<(u8, i64, Option<i64>)>,
}

/// What a rules change of spec §11 adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RulesExpiryRecord {
    pub gift_valid_days: Option<u32>,
}

/// What record version 2 adds to a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HoldsRecord<'a> {
    /// The signed change of held value: REAL, GIFT, PRE in minor units.
    pub held: [i64; 3],
    /// A HOLD's expiry, Unix seconds.
    pub expire_time: Option<i64>,
    /// A transfer's other account.
    pub counterparty: Option<Cow<'a, str>>,
}

/// A flow as stored. Text is `Cow`: the writer encodes straight from the domain flow without
/// copying a string, and decoding yields owned strings that move into the domain flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FlowRecord<'a> {
    pub sequence: u64,
    /// Index into [`FLOW_TYPES`].
    pub flow_type: u8,
    pub request_id: Cow<'a, str>,
    /// The request fingerprint, so idempotency records rebuild from the log alone.
    pub fingerprint: [u8; 32],
    pub outer_order_id: Cow<'a, str>,
    pub account_id: Cow<'a, str>,
    pub card_id: Option<Cow<'a, str>>,
    pub brand_id: Option<Cow<'a, str>>,
    pub shop_id: Option<Cow<'a, str>>,
    pub operator_id: Option<Cow<'a, str>>,
    pub source_order_id: Option<Cow<'a, str>>,
    pub order_time: i64,
    /// REAL, GIFT, PRE in minor units.
    pub before: [i64; 3],
    pub affected: [i64; 3],
    pub remark: Option<Cow<'a, str>>,
    pub ext_info: Option<Cow<'a, str>>,
    /// `(provider, provider record id)` of a provider-authoritative flow.
    pub source: Option<(Cow<'a, str>, Cow<'a, str>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RulesRecord {
    pub sequence: u64,
    pub brand_id: Option<String>,
    /// Index into [`DEDUCTION_ORDERS`].
    pub deduction_order: u8,
    /// 0 none, 1 CUSTOMIZED, 2 PROPORTIONAL.
    pub gift_type: u8,
    pub full_gift_switch: bool,
    /// `(real_value minor units, gift)`: gift in minor units (CUSTOMIZED) or basis points.
    pub tiers: Vec<(i64, i64)>,
}

/// The stored tag of each flow type is its index here. Append only.
const FLOW_TYPES: [FlowType; 16] = [
    FlowType::Charge,
    FlowType::Deduct,
    FlowType::Undeduct,
    FlowType::Uncharge,
    FlowType::Import,
    FlowType::Adjust,
    FlowType::Hold,
    FlowType::Capture,
    FlowType::Release,
    FlowType::Freeze,
    FlowType::Unfreeze,
    FlowType::Close,
    FlowType::TransferOut,
    FlowType::TransferIn,
    FlowType::Expire,
    FlowType::Clear,
];
/// The flow types record version 1 was made for: the others are always written as version 2.
const FLOW_TYPES_VERSION_1: usize = 6;

/// The stored tag of each deduction order is its index here. Append only.
const DEDUCTION_ORDERS: [DeductionOrder; 3] =
    [DeductionOrder::Percent, DeductionOrder::RealBeforeGift, DeductionOrder::GiftBeforeReal];

const GIFT_NONE: u8 = 0;
const GIFT_CUSTOMIZED: u8 = 1;
const GIFT_PROPORTIONAL: u8 = 2;

fn tag_of<T: PartialEq>(table: &[T], value: &T) -> u8 {
    let index = table.iter().position(|entry| entry == value).expect("every variant has a stored tag");
    u8::try_from(index).expect("tag tables are short")
}

/// The stored tag of a flow type (snapshots store them too, with the same table).
pub(crate) fn flow_type_tag(flow_type: FlowType) -> u8 {
    tag_of(&FLOW_TYPES, &flow_type)
}

/// The flow type of a stored tag, `None` for one this version does not know.
pub(crate) fn flow_type_of_tag(tag: u8) -> Option<FlowType> {
    FLOW_TYPES.get(usize::from(tag)).copied()
}

pub(crate) fn bucket_tag(bucket: Bucket) -> u8 {
    match bucket {
        Bucket::Real => 0,
        Bucket::Gift => 1,
        Bucket::Pre => 2,
    }
}

pub(crate) fn bucket_of_tag(tag: u8) -> Option<Bucket> {
    match tag {
        1 => Some(Bucket::Gift),
        2 => Some(Bucket::Pre),
        _ => None,
    }
}

impl HoldsRecord<'_> {
    fn apply_to(self, flow: &mut Flow) {
        flow.held = array_to_buckets(self.held);
        flow.expire_time = self.expire_time.map(Timestamp);
        flow.counterparty = owned(self.counterparty);
    }
}

pub(crate) fn buckets_to_array(buckets: &Buckets) -> [i64; 3] {
    [buckets.real.minor(), buckets.gift.minor(), buckets.pre.minor()]
}

pub(crate) fn array_to_buckets(array: [i64; 3]) -> Buckets {
    Buckets::from_minor(array[0], array[1], array[2])
}

fn borrowed(text: &Option<String>) -> Option<Cow<'_, str>> {
    text.as_deref().map(Cow::Borrowed)
}

fn owned(text: Option<Cow<'_, str>>) -> Option<String> {
    text.map(Cow::into_owned)
}

impl<'a> FlowRecord<'a> {
    pub fn from_flow(flow: &'a Flow, fingerprint: &Fingerprint) -> FlowRecord<'a> {
        FlowRecord {
            sequence: flow.flow_id,
            flow_type: tag_of(&FLOW_TYPES, &flow.flow_type),
            request_id: Cow::Borrowed(&flow.request_id),
            fingerprint: fingerprint.0,
            outer_order_id: Cow::Borrowed(&flow.outer_order_id),
            account_id: Cow::Borrowed(&flow.account_id),
            card_id: borrowed(&flow.card_id),
            brand_id: borrowed(&flow.brand_id),
            shop_id: borrowed(&flow.shop_id),
            operator_id: borrowed(&flow.operator_id),
            source_order_id: borrowed(&flow.source_order_id),
            order_time: flow.order_time.0,
            before: buckets_to_array(&flow.before),
            affected: buckets_to_array(&flow.affected),
            remark: borrowed(&flow.remark),
            ext_info: borrowed(&flow.ext_info),
            source: flow
                .source
                .as_ref()
                .map(|source| (Cow::Borrowed(source.provider.as_str()), Cow::Borrowed(source.record_id.as_str()))),
        }
    }

    /// The domain flow, or why the record cannot be one. Owned strings move, not copy.
    pub fn into_flow(self) -> Result<Flow, String> {
        let flow_type = *FLOW_TYPES
            .get(usize::from(self.flow_type))
            .ok_or_else(|| format!("flow {}: unknown flow type tag {}", self.sequence, self.flow_type))?;
        Ok(Flow {
            flow_id: self.sequence,
            flow_type,
            request_id: self.request_id.into_owned(),
            outer_order_id: self.outer_order_id.into_owned(),
            account_id: self.account_id.into_owned(),
            card_id: owned(self.card_id),
            brand_id: owned(self.brand_id),
            shop_id: owned(self.shop_id),
            operator_id: owned(self.operator_id),
            source_order_id: owned(self.source_order_id),
            order_time: Timestamp(self.order_time),
            before: array_to_buckets(self.before),
            affected: array_to_buckets(self.affected),
            held: Buckets::ZERO,
            expire_time: None,
            counterparty: None,
            lots: Vec::new(),
            remark: owned(self.remark),
            ext_info: owned(self.ext_info),
            source: self.source.map(|(provider, record_id)| Source {
                provider: provider.into_owned(),
                record_id: record_id.into_owned(),
            }),
        })
    }
}

impl RulesRecord {
    pub fn from_change(change: &RulesChange) -> RulesRecord {
        let (gift_type, full_gift_switch, tiers) = match &change.rules.gift_rule {
            GiftRule::None => (GIFT_NONE, false, &[][..]),
            GiftRule::Customized { full_gift_switch, tiers } => (GIFT_CUSTOMIZED, *full_gift_switch, tiers.as_slice()),
            GiftRule::Proportional { tiers } => (GIFT_PROPORTIONAL, false, tiers.as_slice()),
        };
        let tiers = tiers.iter().map(|tier| (tier.real_value.minor(), tier.gift.raw())).collect();
        RulesRecord {
            sequence: change.sequence,
            brand_id: change.brand_id.clone(),
            deduction_order: tag_of(&DEDUCTION_ORDERS, &change.rules.deduction_order),
            gift_type,
            full_gift_switch,
            tiers,
        }
    }

    pub fn to_change(&self) -> Result<RulesChange, String> {
        let deduction_order = *DEDUCTION_ORDERS
            .get(usize::from(self.deduction_order))
            .ok_or_else(|| format!("rules {}: unknown deduction order tag {}", self.sequence, self.deduction_order))?;
        let tiers = |gift: fn(i64) -> TierGift| -> Vec<Tier> {
            self.tiers
                .iter()
                .map(|&(real, value)| Tier { real_value: Amount::from_minor(real), gift: gift(value) })
                .collect()
        };
        let gift_rule = match self.gift_type {
            GIFT_NONE => GiftRule::None,
            GIFT_CUSTOMIZED => GiftRule::Customized {
                full_gift_switch: self.full_gift_switch,
                tiers: tiers(|minor| TierGift::Amount(Amount::from_minor(minor))),
            },
            GIFT_PROPORTIONAL => GiftRule::Proportional { tiers: tiers(TierGift::BasisPoints) },
            other => return Err(format!("rules {}: unknown gift type tag {other}", self.sequence)),
        };
        Ok(RulesChange {
            sequence: self.sequence,
            brand_id: self.brand_id.clone(),
            rules: RuleSet { deduction_order, gift_rule, gift_valid_days: None },
        })
    }
}

impl<'a> EntryRecord<'a> {
    /// The record of `flow`: version 1 when it needs nothing version 2 adds, else version 2.
    pub fn flow(flow: &'a Flow, fingerprint: &Fingerprint) -> EntryRecord<'a> {
        let record = FlowRecord::from_flow(flow, fingerprint);
        let plain_lots = flow.lots.is_empty();
        let version_1 = usize::from(record.flow_type) < FLOW_TYPES_VERSION_1
            && flow.held.is_zero()
            && flow.expire_time.is_none()
            && flow.counterparty.is_none()
            && plain_lots;
        if version_1 {
            return EntryRecord::Flow(record);
        }
        let holds = HoldsRecord {
            held: buckets_to_array(&flow.held),
            expire_time: flow.expire_time.map(|time| time.0),
            counterparty: borrowed(&flow.counterparty),
        };
        if plain_lots {
            return EntryRecord::FlowWithHolds(record, holds);
        }
        let lots = flow
            .lots
            .iter()
            .map(|lot| (bucket_tag(lot.bucket), lot.value.minor(), lot.expire_time.map(|time| time.0)))
            .collect();
        EntryRecord::FlowWithLots(record, holds, LotsRecord { lots })
    }

    /// The record of a rules change: [`EntryRecord::Rules`] unless it sets `gift_valid_days`.
    pub fn rules(change: &RulesChange) -> EntryRecord<'static> {
        let record = RulesRecord::from_change(change);
        match change.rules.gift_valid_days {
            None => EntryRecord::Rules(record),
            gift_valid_days => EntryRecord::RulesWithExpiry(record, RulesExpiryRecord { gift_valid_days }),
        }
    }
}

impl EntryRecord<'_> {
    pub fn sequence(&self) -> u64 {
        match self {
            EntryRecord::Flow(flow) | EntryRecord::FlowWithHolds(flow, _) | EntryRecord::FlowWithLots(flow, ..) => {
                flow.sequence
            }
            EntryRecord::Rules(rules) | EntryRecord::RulesWithExpiry(rules, _) => rules.sequence,
        }
    }

    /// The domain entry and, for a flow, its request fingerprint.
    pub fn into_entry(self) -> Result<(Entry, Option<Fingerprint>), String> {
        match self {
            EntryRecord::Flow(record) => {
                let fingerprint = Fingerprint(record.fingerprint);
                Ok((Entry::Flow(record.into_flow()?), Some(fingerprint)))
            }
            EntryRecord::FlowWithHolds(record, holds) => {
                let fingerprint = Fingerprint(record.fingerprint);
                let mut flow = record.into_flow()?;
                holds.apply_to(&mut flow);
                Ok((Entry::Flow(flow), Some(fingerprint)))
            }
            EntryRecord::FlowWithLots(record, holds, lots) => {
                let fingerprint = Fingerprint(record.fingerprint);
                let mut flow = record.into_flow()?;
                holds.apply_to(&mut flow);
                flow.lots = lots
                    .lots
                    .into_iter()
                    .map(|(tag, value, expire_time)| {
                        Ok(LotCredit {
                            bucket: bucket_of_tag(tag)
                                .ok_or_else(|| format!("flow {}: unknown lot bucket tag {tag}", flow.flow_id))?,
                            value: Amount::from_minor(value),
                            expire_time: expire_time.map(Timestamp),
                        })
                    })
                    .collect::<Result<_, String>>()?;
                Ok((Entry::Flow(flow), Some(fingerprint)))
            }
            EntryRecord::Rules(record) => Ok((Entry::Rules(record.to_change()?), None)),
            EntryRecord::RulesWithExpiry(record, expiry) => {
                let mut change = record.to_change()?;
                change.rules.gift_valid_days = expiry.gift_valid_days;
                Ok((Entry::Rules(change), None))
            }
        }
    }

    /// Encodes with a u32 big-endian length in front, the framing of a block's entries.
    pub fn encode_framed(&self, out: &mut Vec<u8>) {
        let length_at = out.len();
        out.extend_from_slice(&[0; 4]);
        self.encode(out);
        let length = u32::try_from(out.len() - length_at - 4).expect("an entry is far below 4 GiB");
        out[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
    }

    /// Encodes as the writer does: [`Encoding::Varint`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        bincode::DefaultOptions::new().serialize_into(out, self).expect("serializing into a Vec cannot fail");
    }

    /// Decodes into owned strings (no borrow of `bytes` survives).
    pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<EntryRecord<'static>, String> {
        let decoded = match encoding {
            Encoding::Varint => bincode::DefaultOptions::new().deserialize(bytes),
            Encoding::Fixed => bincode::deserialize(bytes),
        };
        decoded.map_err(|error| format!("undecodable entry: {error}"))
    }
}

/// The format byte of [`flow_to_bytes`].
pub const FLOW_BYTES_FORMAT: u8 = 1;

/// A flow as bytes, to send it from one node of a cluster to another: [`FLOW_BYTES_FORMAT`],
/// then the flow as the log stores it (its entry record, holds and lots included), with the
/// request fingerprint zeroed: the receiver has no use for it.
pub fn flow_to_bytes(flow: &Flow) -> Vec<u8> {
    let mut bytes = vec![FLOW_BYTES_FORMAT];
    EntryRecord::flow(flow, &Fingerprint([0; purse_idempotency::FINGERPRINT_BYTES])).encode(&mut bytes);
    bytes
}

/// The flow of [`flow_to_bytes`]; `CORRUPTION` for bytes that are not one.
pub fn flow_from_bytes(bytes: &[u8]) -> Result<Flow, crate::Error> {
    let corrupt = |why: String| crate::Error::Corruption(format!("a flow sent by another node: {why}"));
    let Some((&format, record)) = bytes.split_first() else { return Err(corrupt("no bytes".into())) };
    if format != FLOW_BYTES_FORMAT {
        return Err(corrupt(format!("format {format}, not {FLOW_BYTES_FORMAT}")));
    }
    match EntryRecord::decode(record, Encoding::Varint).and_then(EntryRecord::into_entry).map_err(corrupt)? {
        (Entry::Flow(flow), _) => Ok(flow),
        (Entry::Rules(_), _) => Err(corrupt("a rules change, not a flow".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purse_core::{RuleSetText, Scale};

    fn sample_flow() -> Flow {
        Flow {
            lots: Vec::new(),
            flow_id: 42,
            flow_type: FlowType::Undeduct,
            request_id: "req".into(),
            outer_order_id: "new".into(),
            account_id: "acct".into(),
            card_id: Some("card".into()),
            brand_id: None,
            shop_id: Some("shop".into()),
            operator_id: None,
            source_order_id: Some("orig".into()),
            order_time: Timestamp(1_700_000_000),
            before: Buckets::from_minor(1, 2, 3),
            affected: Buckets::from_minor(4, 5, 6),
            held: Buckets::ZERO,
            expire_time: None,
            counterparty: None,
            remark: Some("why".into()),
            ext_info: Some("{}".into()),
            source: Some(Source { provider: "alsc".into(), record_id: "4324123".into() }),
        }
    }

    #[test]
    fn flow_round_trips() {
        let flow = sample_flow();
        let record = EntryRecord::Flow(FlowRecord::from_flow(&flow, &Fingerprint([7; 32])));
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let decoded = EntryRecord::decode(&bytes, Encoding::Varint).unwrap();
        assert_eq!(decoded, record);
        // Block format 1's encoding still decodes, and is the larger one.
        let fixed = bincode::serialize(&record).unwrap();
        assert_eq!(EntryRecord::decode(&fixed, Encoding::Fixed).unwrap(), record);
        assert!(bytes.len() * 4 < fixed.len() * 3, "{} bytes varint, {} fixed", bytes.len(), fixed.len());
        assert!(EntryRecord::decode(&fixed, Encoding::Varint).is_err(), "the encodings are not interchangeable");
        let (entry, fingerprint) = decoded.into_entry().unwrap();
        assert_eq!(entry, Entry::Flow(flow));
        assert_eq!(fingerprint, Some(Fingerprint([7; 32])));
    }

    #[test]
    fn flows_that_need_version_2_round_trip_and_the_others_stay_version_1() {
        let plain = sample_flow();
        assert!(matches!(EntryRecord::flow(&plain, &Fingerprint([1; 32])), EntryRecord::Flow(_)));
        let hold = Flow {
            flow_type: FlowType::Hold,
            source_order_id: None,
            affected: Buckets::ZERO,
            held: Buckets::from_minor(60, 40, 0),
            expire_time: Some(Timestamp(1_800_000_000)),
            ..sample_flow()
        };
        let transfer = Flow {
            flow_type: FlowType::TransferIn,
            source_order_id: None,
            counterparty: Some("from".into()),
            ..sample_flow()
        };
        let freeze =
            Flow { flow_type: FlowType::Freeze, source_order_id: None, affected: Buckets::ZERO, ..sample_flow() };
        for flow in [hold, transfer, freeze] {
            let record = EntryRecord::flow(&flow, &Fingerprint([2; 32]));
            assert!(matches!(record, EntryRecord::FlowWithHolds(..)), "{:?}", flow.flow_type);
            let mut bytes = Vec::new();
            record.encode(&mut bytes);
            let (entry, _) = EntryRecord::decode(&bytes, Encoding::Varint).unwrap().into_entry().unwrap();
            assert_eq!(entry, Entry::Flow(flow));
        }
    }

    #[test]
    fn flows_with_expiring_lots_are_version_3_and_round_trip() {
        let expiring = LotCredit {
            bucket: Bucket::Gift,
            value: Amount::from_minor(5),
            expire_time: Some(Timestamp(1_900_000_000)),
        };
        let plain_pre = LotCredit { bucket: Bucket::Pre, value: Amount::from_minor(6), expire_time: None };
        let charge = Flow {
            flow_type: FlowType::Charge,
            source_order_id: None,
            source: None,
            lots: vec![expiring, plain_pre],
            ..sample_flow()
        };
        // The same credit without expiry (its lots the plain ones, stored as none) stays version
        // 1, byte for byte as before lots.
        let plain = Flow { lots: Vec::new(), ..charge.clone() };
        assert_eq!(plain.lot_credits().collect::<Vec<_>>(), LotCredit::plain(&charge.affected));
        assert!(matches!(EntryRecord::flow(&plain, &Fingerprint([1; 32])), EntryRecord::Flow(_)));
        let record = EntryRecord::flow(&charge, &Fingerprint([3; 32]));
        assert!(matches!(record, EntryRecord::FlowWithLots(..)));
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let (entry, _) = EntryRecord::decode(&bytes, Encoding::Varint).unwrap().into_entry().unwrap();
        assert_eq!(entry, Entry::Flow(charge));
        // A version 1 record reads back with its plain lots.
        let mut bytes = Vec::new();
        EntryRecord::flow(&plain, &Fingerprint([1; 32])).encode(&mut bytes);
        let (entry, _) = EntryRecord::decode(&bytes, Encoding::Varint).unwrap().into_entry().unwrap();
        assert_eq!(entry, Entry::Flow(plain));
    }

    #[test]
    fn flow_bytes_round_trip_and_refuse_what_is_not_a_flow() {
        let lot = LotCredit { bucket: Bucket::Pre, value: Amount::from_minor(9), expire_time: Some(Timestamp(1)) };
        let hold = Flow {
            flow_type: FlowType::Hold,
            held: Buckets::from_minor(1, 2, 0),
            counterparty: Some("to".into()),
            ..sample_flow()
        };
        let with_lots = Flow { flow_type: FlowType::TransferIn, lots: vec![lot], ..sample_flow() };
        for flow in [sample_flow(), hold, with_lots] {
            let bytes = flow_to_bytes(&flow);
            assert_eq!(bytes[0], FLOW_BYTES_FORMAT);
            assert_eq!(flow_from_bytes(&bytes), Ok(flow));
        }
        let mut rules = vec![FLOW_BYTES_FORMAT];
        EntryRecord::rules(&RulesChange { sequence: 1, brand_id: None, rules: RuleSet::default() }).encode(&mut rules);
        let good = flow_to_bytes(&sample_flow());
        let check = |bytes: &[u8], why: &str| match flow_from_bytes(bytes) {
            Err(crate::Error::Corruption(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("{bytes:?}: {other:?}"),
        };
        check(&[], "no bytes");
        check(&[2, 0], "format 2");
        check(&good[..good.len() / 2], "undecodable");
        check(&rules, "not a flow");
        // The bytes are pinned: nodes of two versions (a rolling upgrade) read each other's.
        let pinned = "01002a02037265710000000000000000000000000000000000000000000000000000000000000000036e657704616363\
                      7401046361726400010473686f700001046f726967fc00e2a7ca020406080a0c010377687901027b7d0104616c7363\
                      0734333234313233";
        assert_eq!(good.iter().map(|byte| format!("{byte:02x}")).collect::<String>(), pinned);
    }

    #[test]
    fn rules_with_gift_valid_days_round_trip_and_the_others_keep_their_record() {
        let mut rules = RuleSet::default();
        let change = RulesChange { sequence: 4, brand_id: None, rules: rules.clone() };
        assert!(matches!(EntryRecord::rules(&change), EntryRecord::Rules(_)));
        rules.gift_valid_days = Some(30);
        let change = RulesChange { sequence: 4, brand_id: None, rules };
        let record = EntryRecord::rules(&change);
        assert!(matches!(record, EntryRecord::RulesWithExpiry(..)));
        let mut bytes = Vec::new();
        record.encode(&mut bytes);
        let (entry, _) = EntryRecord::decode(&bytes, Encoding::Varint).unwrap().into_entry().unwrap();
        assert_eq!(entry, Entry::Rules(change));
    }

    #[test]
    fn rules_round_trip() {
        for gift_type in [None, Some("CUSTOMIZED"), Some("PROPORTIONAL")] {
            let text = RuleSetText {
                gift_valid_days: None,
                deduction_order: Some("GIFT_BEFORE_REAL_DEDUCT".into()),
                gift_type: gift_type.map(str::to_owned),
                full_gift_switch: Some(gift_type == Some("CUSTOMIZED")),
                tiers: if gift_type.is_some() { vec![("100".into(), "20".into())] } else { vec![] },
            };
            let rules = RuleSet::from_text(&text, Scale::CNY).unwrap();
            let change = RulesChange { sequence: 3, brand_id: Some("b".into()), rules };
            let record = EntryRecord::Rules(RulesRecord::from_change(&change));
            let mut bytes = Vec::new();
            record.encode(&mut bytes);
            let (entry, fingerprint) = EntryRecord::decode(&bytes, Encoding::Varint).unwrap().into_entry().unwrap();
            assert_eq!(entry, Entry::Rules(change));
            assert_eq!(fingerprint, None);
        }
    }

    #[test]
    fn unknown_tags_are_errors_not_panics() {
        let flow = sample_flow();
        let mut record = FlowRecord::from_flow(&flow, &Fingerprint([0; 32]));
        record.flow_type = 200;
        assert!(record.into_flow().unwrap_err().contains("unknown flow type tag 200"));
        assert!(EntryRecord::decode(&[9, 9, 9], Encoding::Varint).is_err());
        assert!(EntryRecord::decode(&[9, 9, 9], Encoding::Fixed).is_err());
    }
}
