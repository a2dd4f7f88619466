//! The JSON documents `purse` prints (spec §4, §5, §7).
//!
//! Each document is a `Serialize` struct whose fields are in the printed order, so key order is
//! fixed by the code, not by a map. Amounts are always decimal strings at the ledger's scale;
//! no number ever passes through a float.

use purse_core::{Amount, Buckets, FlowDetail, RuleSet, Scale, Zone};
use purse_ledger::{AccountPage, AccountView, FlowPage, Liability, LiabilitySum, Statement, VerifyReport, WideBuckets};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Every document the same way: pretty-printed, one trailing newline.
pub fn to_text<T: Serialize>(document: &T) -> String {
    match serde_json::to_string_pretty(document) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        // Only a map with non-string keys or a failing Serialize impl can fail; none exist here.
        Err(error) => format!("{{\"error\": {{\"code\": \"STORAGE\", \"message\": \"rendering JSON: {error}\"}}}}\n"),
    }
}

/// spec §5, field for field and in that order; absent optional fields are `null`.
#[derive(Debug, Serialize)]
pub struct FlowJson<'a> {
    flow_id: &'a str,
    flow_type: &'a str,
    account_id: &'a str,
    card_id: Option<&'a str>,
    brand_id: Option<&'a str>,
    shop_id: Option<&'a str>,
    operator: Option<&'a str>,
    request_id: &'a str,
    outer_order_id: &'a str,
    order_time: &'a str,
    order_value: &'a str,
    current_value: &'a str,
    affected_property_list: Vec<PropertyJson<'a>>,
    before_property_list: Vec<PropertyJson<'a>>,
    after_property_list: Vec<PropertyJson<'a>>,
    remark: Option<&'a str>,
    ext_info: Option<&'a str>,
    /// spec §8: the flow's signed change to held value, appended after the original fields.
    held_property_list: Vec<PropertyJson<'a>>,
    src_outer_order_id: Option<&'a str>,
}

/// `{"type": "REAL", "value": "100.00"}`
#[derive(Debug, Serialize)]
struct PropertyJson<'a> {
    #[serde(rename = "type")]
    property: &'a str,
    value: &'a str,
}

impl<'a> FlowJson<'a> {
    /// The view of one flow detail; `FlowDetail` already holds every value as text.
    pub fn new(detail: &'a FlowDetail) -> FlowJson<'a> {
        let list = |list: &'a [(&'static str, String)]| {
            list.iter().map(|(property, value)| PropertyJson { property, value }).collect()
        };
        FlowJson {
            flow_id: &detail.flow_id,
            flow_type: detail.flow_type,
            account_id: &detail.account_id,
            card_id: detail.card_id.as_deref(),
            brand_id: detail.brand_id.as_deref(),
            shop_id: detail.shop_id.as_deref(),
            operator: detail.operator.as_deref(),
            request_id: &detail.request_id,
            outer_order_id: &detail.outer_order_id,
            order_time: &detail.order_time,
            order_value: &detail.order_value,
            current_value: &detail.current_value,
            affected_property_list: list(&detail.affected_property_list),
            before_property_list: list(&detail.before_property_list),
            after_property_list: list(&detail.after_property_list),
            remark: detail.remark.as_deref(),
            ext_info: detail.ext_info.as_deref(),
            held_property_list: list(&detail.held_property_list),
            src_outer_order_id: detail.src_outer_order_id.as_deref(),
        }
    }
}

/// `transfer`: both flows (spec §7).
#[derive(Debug, Serialize)]
pub struct TransferJson<'a> {
    out: FlowJson<'a>,
    #[serde(rename = "in")]
    transfer_in: FlowJson<'a>,
}

impl<'a> TransferJson<'a> {
    /// The views of a transfer's TRANSFER_OUT and TRANSFER_IN.
    pub fn new(out: &'a FlowDetail, transfer_in: &'a FlowDetail) -> TransferJson<'a> {
        TransferJson { out: FlowJson::new(out), transfer_in: FlowJson::new(transfer_in) }
    }
}

/// `account`: balances and lifetime totals at the ledger's scale.
#[derive(Debug, Serialize)]
pub struct AccountJson<'a> {
    account_id: &'a str,
    card_id: Option<&'a str>,
    brand_id: Option<&'a str>,
    real_value: String,
    gift_value: String,
    pre_value: String,
    total_value: String,
    real_value_total: String,
    gift_value_total: String,
    pre_value_total: String,
    /// spec §7 and §8–§9, appended after the original fields.
    status: &'static str,
    held_real_value: String,
    held_gift_value: String,
    held_pre_value: String,
    held_total_value: String,
    available_total_value: String,
    /// spec §11: lots with an expiry and value left, soonest first.
    expiring: Vec<ExpiringJson>,
}

#[derive(Debug, Serialize)]
struct ExpiringJson {
    bucket: &'static str,
    value: String,
    expire_time: String,
}

impl<'a> AccountJson<'a> {
    pub fn new(account: &'a AccountView, scale: Scale, zone: purse_core::Zone) -> AccountJson<'a> {
        let text = |amount: Amount| amount.format(scale);
        // A stored balance always has a TOTAL within i64 (the ledger refuses any flow that would
        // break that), so the fallback is unreachable; it shows the damage instead of panicking.
        let total = account.balance.total().map_or_else(|| "overflow".to_owned(), text);
        AccountJson {
            account_id: &account.account_id,
            card_id: account.card_id.as_deref(),
            brand_id: account.brand_id.as_deref(),
            real_value: text(account.balance.real),
            gift_value: text(account.balance.gift),
            pre_value: text(account.balance.pre),
            total_value: total,
            real_value_total: text(account.lifetime.real),
            gift_value_total: text(account.lifetime.gift),
            pre_value_total: text(account.lifetime.pre),
            status: account.status.as_str(),
            held_real_value: text(account.held.real),
            held_gift_value: text(account.held.gift),
            held_pre_value: text(account.held.pre),
            held_total_value: account.held.total().map_or_else(|| "overflow".to_owned(), text),
            available_total_value: account
                .balance
                .checked_sub(&account.held)
                .and_then(|available| available.total())
                .map_or_else(|| "overflow".to_owned(), text),
            expiring: account
                .expiring
                .iter()
                .map(|lot| ExpiringJson {
                    bucket: lot.bucket.as_str(),
                    value: text(lot.value),
                    expire_time: zone.format_local(lot.expire_time),
                })
                .collect(),
        }
    }
}

/// `expire`: the flows the sweep wrote, in log order.
#[derive(Debug, Serialize)]
pub struct SweepJson<'a> {
    flows: Vec<FlowJson<'a>>,
}

impl<'a> SweepJson<'a> {
    pub fn new(details: &'a [FlowDetail]) -> SweepJson<'a> {
        SweepJson { flows: details.iter().map(FlowJson::new).collect() }
    }
}

/// `flows`: one page, oldest first.
#[derive(Debug, Serialize)]
pub struct FlowPageJson<'a> {
    total_count: u64,
    page_no: u32,
    page_size: u32,
    flows: Vec<FlowJson<'a>>,
}

impl<'a> FlowPageJson<'a> {
    /// `page` with the views of its flows, `details`, in the same order.
    pub fn new(page: &FlowPage, details: &'a [FlowDetail]) -> FlowPageJson<'a> {
        FlowPageJson {
            total_count: page.total_count,
            page_no: page.page_no,
            page_size: page.page_size,
            flows: details.iter().map(FlowJson::new).collect(),
        }
    }
}

/// `accounts`: one page, ordered by account_id; each account as `account` shows it.
#[derive(Debug, Serialize)]
pub struct AccountPageJson<'a> {
    total_count: u64,
    page_no: u32,
    page_size: u32,
    accounts: Vec<AccountJson<'a>>,
}

impl<'a> AccountPageJson<'a> {
    pub fn new(page: &'a AccountPage, scale: Scale, zone: purse_core::Zone) -> AccountPageJson<'a> {
        AccountPageJson {
            total_count: page.total_count,
            page_no: page.page_no,
            page_size: page.page_size,
            accounts: page.accounts.iter().map(|account| AccountJson::new(account, scale, zone)).collect(),
        }
    }
}

/// A property list of owned amounts (spec §5 shape): REAL, GIFT, PRE, TOTAL.
#[derive(Debug, Serialize)]
struct OwnedPropertyJson {
    #[serde(rename = "type")]
    property: &'static str,
    value: String,
}

fn property_list(buckets: &Buckets, scale: Scale) -> Vec<OwnedPropertyJson> {
    let total = buckets.total().map_or_else(|| "overflow".to_owned(), |total| total.format(scale));
    let mut list: Vec<OwnedPropertyJson> = purse_core::Bucket::ALL
        .iter()
        .map(|bucket| OwnedPropertyJson { property: bucket.as_str(), value: buckets.get(*bucket).format(scale) })
        .collect();
    list.push(OwnedPropertyJson { property: "TOTAL", value: total });
    list
}

/// `statement` (spec §12, §13).
#[derive(Debug, Serialize)]
pub struct StatementJson<'a> {
    account_id: &'a str,
    start_time: String,
    end_time: String,
    opening: Vec<OwnedPropertyJson>,
    closing: Vec<OwnedPropertyJson>,
    by_flow_type: ByFlowType,
    flows_count: u64,
    backdated: bool,
}

/// `{TYPE: {"count", "affected"}}`, in the ledger's flow type order: a map, but with its key
/// order fixed by the code like every other document.
#[derive(Debug)]
struct ByFlowType(Vec<(&'static str, FlowTypeJson)>);

#[derive(Debug, Serialize)]
struct FlowTypeJson {
    count: u64,
    affected: Vec<OwnedPropertyJson>,
}

impl Serialize for ByFlowType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (flow_type, sum) in &self.0 {
            map.serialize_entry(flow_type, sum)?;
        }
        map.end()
    }
}

impl<'a> StatementJson<'a> {
    pub fn new(statement: &'a Statement, scale: Scale, zone: Zone) -> StatementJson<'a> {
        let by_flow_type = statement
            .by_flow_type
            .iter()
            .map(|sum| {
                (
                    sum.flow_type.as_str(),
                    FlowTypeJson { count: sum.count, affected: property_list(&sum.affected, scale) },
                )
            })
            .collect();
        StatementJson {
            account_id: &statement.account_id,
            start_time: zone.format_local(statement.start_time),
            end_time: zone.format_local(statement.end_time),
            opening: property_list(&statement.opening, scale),
            closing: property_list(&statement.closing, scale),
            by_flow_type: ByFlowType(by_flow_type),
            flows_count: statement.flows_count,
            backdated: statement.backdated,
        }
    }
}

/// `liability`: the sums over every account, in all and by brand.
#[derive(Debug, Serialize)]
pub struct LiabilityJson<'a> {
    /// The time it stood at (`--at`); `null`: now.
    at: Option<String>,
    accounts: u64,
    total: LiabilitySumJson,
    by_brand: Vec<BrandLiabilityJson<'a>>,
}

#[derive(Debug, Serialize)]
struct LiabilitySumJson {
    real_value: String,
    gift_value: String,
    pre_value: String,
    held_value: String,
    total_value: String,
    expiring: WindowsJson,
}

/// GIFT and PRE (held included) in lots expiring within 7, 30 and 90 days of `from`, and in
/// lots already past their expiry that no sweep has taken.
#[derive(Debug, Serialize)]
struct WindowsJson {
    from: String,
    within_7_days: LotValueJson,
    within_30_days: LotValueJson,
    within_90_days: LotValueJson,
    expired_unswept: LotValueJson,
}

#[derive(Debug, Serialize)]
struct LotValueJson {
    gift_value: String,
    pre_value: String,
}

#[derive(Debug, Serialize)]
struct BrandLiabilityJson<'a> {
    brand_id: Option<&'a str>,
    accounts: u64,
    #[serde(flatten)]
    sum: LiabilitySumJson,
}

impl LiabilitySumJson {
    fn new(sum: &LiabilitySum, from: purse_core::Timestamp, scale: Scale, zone: purse_core::Zone) -> LiabilitySumJson {
        let text = |minor: i128| Amount::format_wide(minor, scale);
        let lots = |value: &WideBuckets| LotValueJson { gift_value: text(value.gift), pre_value: text(value.pre) };
        let [within_7_days, within_30_days, within_90_days] = sum.expiring.each_ref().map(lots);
        LiabilitySumJson {
            real_value: text(sum.balance.real),
            gift_value: text(sum.balance.gift),
            pre_value: text(sum.balance.pre),
            held_value: text(sum.held.total()),
            total_value: text(sum.balance.total()),
            expiring: WindowsJson {
                from: zone.format_local(from),
                within_7_days,
                within_30_days,
                within_90_days,
                expired_unswept: lots(&sum.expired_unswept),
            },
        }
    }
}

impl<'a> LiabilityJson<'a> {
    pub fn new(liability: &'a Liability, scale: Scale, zone: purse_core::Zone) -> LiabilityJson<'a> {
        let from = liability.windows_from;
        LiabilityJson {
            at: liability.at.map(|time| zone.format_local(time)),
            accounts: liability.total.accounts,
            total: LiabilitySumJson::new(&liability.total, from, scale, zone),
            by_brand: liability
                .by_brand
                .iter()
                .map(|brand| BrandLiabilityJson {
                    brand_id: brand.brand_id.as_deref(),
                    accounts: brand.sum.accounts,
                    sum: LiabilitySumJson::new(&brand.sum, from, scale, zone),
                })
                .collect(),
        }
    }
}

/// spec §4: every key always present, `null` where the rule set leaves it out.
#[derive(Debug, Serialize)]
pub struct RulesJson {
    deduction_order: Option<String>,
    gift_type: Option<String>,
    full_gift_switch: Option<bool>,
    tiers: Vec<TierJson>,
    /// spec §11; `null` when gifts do not expire.
    gift_valid_days: Option<u32>,
}

#[derive(Debug, Serialize)]
struct TierJson {
    real_value: String,
    gift_value: String,
}

impl RulesJson {
    pub fn new(rules: &RuleSet, scale: Scale) -> RulesJson {
        let text = rules.to_text(scale);
        RulesJson {
            deduction_order: text.deduction_order,
            gift_type: text.gift_type,
            full_gift_switch: text.full_gift_switch,
            tiers: text.tiers.into_iter().map(|(real_value, gift_value)| TierJson { real_value, gift_value }).collect(),
            gift_valid_days: text.gift_valid_days,
        }
    }
}

/// `verify`: what was checked. Any difference is an error instead, so `ok` is always true.
#[derive(Debug, Serialize)]
pub struct VerifyJson {
    ok: bool,
    entries: u64,
    flows: u64,
    accounts: u64,
    blocks: u64,
    /// Repairs opening the ledger ever made (leftovers of a crash in sled's bookkeeping).
    repairs: Vec<String>,
    /// Problems that lost nothing (a damaged head slot).
    warnings: Vec<String>,
}

impl VerifyJson {
    pub fn new(report: &VerifyReport) -> VerifyJson {
        VerifyJson {
            ok: true,
            entries: report.entries,
            flows: report.flows,
            accounts: report.accounts,
            blocks: report.blocks,
            repairs: report.repairs.clone(),
            warnings: report.warnings.clone(),
        }
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
