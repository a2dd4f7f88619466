//! Flows: the events of the log, and the flow-detail view of spec §5.

use std::fmt;

use crate::balance::Buckets;
use crate::lots::LotCredit;
use crate::money::{Amount, Scale};
use crate::rules::RuleSet;
use crate::time::{Timestamp, Zone};

/// The kind of a flow. Stored as its index: variants are only ever appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowType {
    Charge,
    Deduct,
    Undeduct,
    Uncharge,
    Import,
    Adjust,
    /// Reserves value for a purchase not yet final (spec §8).
    Hold,
    /// Closes a hold and spends part or all of it: a consumption order, refundable by UNDEDUCT.
    Capture,
    /// Closes a hold without spending it.
    Release,
    /// Blocks an account (lost card, dispute): spec §9.
    Freeze,
    Unfreeze,
    /// Closes an account for good; it must hold nothing.
    Close,
    /// The source side of a transfer (spec §10), always followed by its TRANSFER_IN.
    TransferOut,
    /// The destination side of a transfer, right after its TRANSFER_OUT.
    TransferIn,
    /// The expiry sweep (spec §11): takes the unheld value of lots expired at its order_time.
    Expire,
    /// Takes all that is available in GIFT, PRE or both (spec §11, Square CLEAR_BALANCE).
    Clear,
}

impl FlowType {
    pub const ALL: [FlowType; 16] = [
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

    pub const fn as_str(self) -> &'static str {
        match self {
            FlowType::Charge => "CHARGE",
            FlowType::Deduct => "DEDUCT",
            FlowType::Undeduct => "UNDEDUCT",
            FlowType::Uncharge => "UNCHARGE",
            FlowType::Import => "IMPORT",
            FlowType::Adjust => "ADJUST",
            FlowType::Hold => "HOLD",
            FlowType::Capture => "CAPTURE",
            FlowType::Release => "RELEASE",
            FlowType::Freeze => "FREEZE",
            FlowType::Unfreeze => "UNFREEZE",
            FlowType::Close => "CLOSE",
            FlowType::TransferOut => "TRANSFER_OUT",
            FlowType::TransferIn => "TRANSFER_IN",
            FlowType::Expire => "EXPIRE",
            FlowType::Clear => "CLEAR",
        }
    }

    pub fn parse(text: &str) -> Option<FlowType> {
        FlowType::ALL.into_iter().find(|flow_type| flow_type.as_str() == text)
    }

    /// Whether a flow of this type may open an account.
    pub const fn opens_account(self) -> bool {
        matches!(self, FlowType::Charge | FlowType::Import | FlowType::TransferIn)
    }

    /// Whether a FROZEN account accepts a flow of this type (spec §9).
    pub const fn allowed_while_frozen(self) -> bool {
        matches!(
            self,
            FlowType::Undeduct
                | FlowType::Release
                | FlowType::Adjust
                | FlowType::Unfreeze
                | FlowType::Close
                | FlowType::Expire
        )
    }

    /// Whether a provider's record may state a flow of this type (ingestion): the original
    /// six. Holds, status changes and transfers are always decided by purse.
    pub const fn may_be_recorded(self) -> bool {
        matches!(
            self,
            FlowType::Charge
                | FlowType::Deduct
                | FlowType::Undeduct
                | FlowType::Uncharge
                | FlowType::Import
                | FlowType::Adjust
        )
    }

    /// The signs a flow of this type may have when its effect is given rather than computed
    /// (provider records): `None` when `affected` fits, else why not.
    pub fn sign_fault(self, affected: &Buckets) -> Option<&'static str> {
        let adds = affected.negative_bucket().is_none();
        let takes = crate::Bucket::ALL.into_iter().all(|bucket| !affected.get(bucket).is_positive());
        match self {
            FlowType::Import if !adds => Some("an IMPORT must not take from any bucket"),
            FlowType::Charge | FlowType::Undeduct if !adds || affected.is_zero() => {
                Some("a CHARGE or UNDEDUCT must add to at least one bucket and take from none")
            }
            FlowType::Deduct | FlowType::Uncharge if !takes || affected.is_zero() => {
                Some("a DEDUCT or UNCHARGE must take from at least one bucket and add to none")
            }
            FlowType::Adjust if affected.is_zero() => Some("an ADJUST must change at least one bucket"),
            flow_type if !flow_type.may_be_recorded() => {
                Some("a provider's record can state only CHARGE, DEDUCT, UNDEDUCT, UNCHARGE, IMPORT or ADJUST")
            }
            _ => None,
        }
    }
}

impl fmt::Display for FlowType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accepted change of one account. Records everything needed to fold it without
/// recomputation: the balance it was decided against and the signed change of each bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    /// The log sequence of this flow: gapless over all log entries, so increasing over flows.
    pub flow_id: u64,
    pub flow_type: FlowType,
    pub request_id: String,
    pub outer_order_id: String,
    pub account_id: String,
    /// The account's card and brand, fixed by the flow that opened it.
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub shop_id: Option<String>,
    pub operator_id: Option<String>,
    /// For UNDEDUCT the refunded DEDUCT's (or CAPTURE's) order id, for UNCHARGE the reversed
    /// CHARGE's, for CAPTURE and RELEASE the hold's (spec §5 `src_outer_order_id`).
    pub source_order_id: Option<String>,
    pub order_time: Timestamp,
    /// The account's balance just before this flow (zero for the flow that opens it).
    pub before: Buckets,
    /// The signed change of each bucket.
    pub affected: Buckets,
    /// The signed change of the account's held value in each bucket (spec §8): + the parts a
    /// HOLD reserves, − the hold's parts when CAPTURE or RELEASE closes it, zero otherwise.
    pub held: Buckets,
    /// A HOLD's expiry: a CAPTURE at or after it is refused. `None` for every other flow.
    pub expire_time: Option<Timestamp>,
    /// A transfer's other account: the destination on TRANSFER_OUT, the source on TRANSFER_IN.
    pub counterparty: Option<String>,
    /// The lots this flow makes (spec §11), when they are not the plain ones: one per credit to
    /// GIFT or PRE with its expiry, or for a TRANSFER_IN the lots moved with theirs. Empty when
    /// no lot expires (the plain lots, one per positive GIFT and PRE part, see
    /// [`Flow::lot_credits`]), and for flows that make no lot, among them the give-backs
    /// (UNDEDUCT of a known order), which refill the lots they came from.
    pub lots: Vec<LotCredit>,
    pub remark: Option<String>,
    pub ext_info: Option<String>,
    /// For a provider-authoritative flow, the provider record it came from.
    pub source: Option<crate::Source>,
}

impl Flow {
    /// Whether this flow is the TRANSFER_IN of a TRANSFER_OUT written with it (spec §10), which
    /// shares that flow's request and order. A transfer between partitions credits with a
    /// TRANSFER_IN of its own, which names the source's hold as its source order.
    pub fn shares_request(&self) -> bool {
        self.flow_type == FlowType::TransferIn && self.source_order_id.is_none()
    }

    /// Whether this flow is a transfer's settling TRANSFER_OUT, which closes a transfer hold.
    pub fn settles_hold(&self) -> bool {
        self.flow_type == FlowType::TransferOut && self.source_order_id.is_some()
    }

    /// Whether this flow's positive GIFT and PRE parts are new lots (every credit but the
    /// give-back of a known order, which refills the lots it was taken from).
    pub fn makes_lots(&self) -> bool {
        !(self.flow_type == FlowType::Undeduct && self.source_order_id.is_some())
    }

    /// The lots this flow makes (spec §11): [`Flow::lots`] as stated, or, when that is empty,
    /// the plain ones of its positive GIFT and PRE parts (none for a flow that makes none).
    pub fn lot_credits(&self) -> impl Iterator<Item = LotCredit> + '_ {
        let plain = (self.makes_lots() && self.lots.is_empty()).then(|| LotCredit::plain_iter(&self.affected));
        plain.into_iter().flatten().chain(self.lots.iter().copied())
    }

    /// The balance after this flow; `None` only for a flow that could never have been decided.
    pub fn after(&self) -> Option<Buckets> {
        self.before.checked_add(&self.affected)
    }

    /// `order_value`: the signed sum of `affected`.
    pub fn order_value(&self) -> Option<Amount> {
        self.affected.total()
    }

    /// The spec §5 view, amounts and times as text at the ledger's scale and zone.
    /// `None` only for a flow whose sums leave `i64`, which `apply` never accepts.
    pub fn detail(&self, scale: Scale, zone: Zone) -> Option<FlowDetail> {
        let after = self.after()?;
        let list = |buckets: &Buckets| -> Option<Vec<(&'static str, String)>> {
            Some(
                buckets
                    .properties()?
                    .iter()
                    .map(|(property, amount)| (property.as_str(), amount.format(scale)))
                    .collect(),
            )
        };
        Some(FlowDetail {
            flow_id: self.flow_id.to_string(),
            flow_type: self.flow_type.as_str(),
            account_id: self.account_id.clone(),
            card_id: self.card_id.clone(),
            brand_id: self.brand_id.clone(),
            shop_id: self.shop_id.clone(),
            operator: self.operator_id.clone(),
            request_id: self.request_id.clone(),
            outer_order_id: self.outer_order_id.clone(),
            order_time: zone.format_local(self.order_time),
            order_value: self.order_value()?.format(scale),
            current_value: after.total()?.format(scale),
            affected_property_list: list(&self.affected)?,
            before_property_list: list(&self.before)?,
            after_property_list: list(&after)?,
            held_property_list: list(&self.held)?,
            src_outer_order_id: self.source_order_id.clone(),
            remark: self.remark.clone(),
            ext_info: self.ext_info.clone(),
        })
    }
}

/// spec §5, field for field, in the ALSC names. Property lists hold REAL, GIFT, PRE, TOTAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowDetail {
    pub flow_id: String,
    pub flow_type: &'static str,
    pub account_id: String,
    pub card_id: Option<String>,
    pub brand_id: Option<String>,
    pub shop_id: Option<String>,
    pub operator: Option<String>,
    pub request_id: String,
    pub outer_order_id: String,
    pub order_time: String,
    pub order_value: String,
    pub current_value: String,
    pub affected_property_list: Vec<(&'static str, String)>,
    pub before_property_list: Vec<(&'static str, String)>,
    pub after_property_list: Vec<(&'static str, String)>,
    /// The flow's signed change to held value (spec §8); all zero for flows that touch no hold.
    pub held_property_list: Vec<(&'static str, String)>,
    /// The order a CAPTURE, RELEASE, UNDEDUCT or UNCHARGE refers to.
    pub src_outer_order_id: Option<String>,
    pub remark: Option<String>,
    pub ext_info: Option<String>,
}

/// A change of one brand's rules (or, with `brand_id: None`, the ledger default).
/// Rules live in the log like flows, so a replay always sees the rules each flow saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesChange {
    pub sequence: u64,
    pub brand_id: Option<String>,
    pub rules: RuleSet,
}

/// One entry of the log.
// Nearly every entry is a flow: boxing it would add an allocation per flow to save space only
// on the rare rules entry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Flow(Flow),
    Rules(RulesChange),
}

impl Entry {
    pub fn sequence(&self) -> u64 {
        match self {
            Entry::Flow(flow) => flow.flow_id,
            Entry::Rules(change) => change.sequence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_type_names_round_trip() {
        for flow_type in FlowType::ALL {
            assert_eq!(FlowType::parse(flow_type.as_str()), Some(flow_type));
        }
        assert_eq!(FlowType::parse("charge"), None);
        assert_eq!(FlowType::parse("REFUND"), None);
    }

    #[test]
    fn detail_view() {
        let flow = Flow {
            flow_id: 7,
            flow_type: FlowType::Deduct,
            request_id: "r-7".into(),
            outer_order_id: "o-7".into(),
            account_id: "acct".into(),
            card_id: Some("card".into()),
            brand_id: None,
            shop_id: None,
            operator_id: Some("op".into()),
            source_order_id: None,
            order_time: Zone::CHINA.parse_local("2026-11-23 12:00:00").unwrap(),
            before: Buckets::from_minor(6667, 3333, 0),
            affected: Buckets::from_minor(-667, -333, 0),
            held: Buckets::ZERO,
            expire_time: None,
            counterparty: None,
            lots: Vec::new(),
            remark: None,
            ext_info: Some("{\"a\":1}".into()),
            source: None,
        };
        let detail = flow.detail(Scale::CNY, Zone::CHINA).unwrap();
        assert_eq!(detail.flow_id, "7");
        assert_eq!(detail.order_value, "-10.00");
        assert_eq!(detail.current_value, "90.00");
        assert_eq!(detail.order_time, "2026-11-23 12:00:00");
        let names = |list: &Vec<(&'static str, String)>| list.iter().map(|(name, _)| *name).collect::<Vec<_>>();
        assert_eq!(names(&detail.affected_property_list), ["REAL", "GIFT", "PRE", "TOTAL"]);
        assert_eq!(detail.affected_property_list[0].1, "-6.67");
        assert_eq!(detail.after_property_list[3].1, "90.00");
        assert_eq!(detail.before_property_list[3].1, "100.00");
    }
}
