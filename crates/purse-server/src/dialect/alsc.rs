//! The ALSC stored-value methods behind the TOP gateway ([`super::top`]).
//!
//! Each method takes one request object, a JSON text in one `param_*` parameter, and answers
//! the `CommonResult` {biz_success, result, result_code, result_desc, result_view}. Amounts are
//! whole fen (hundredths of the major unit, whatever the ledger's scale), times
//! `YYYY-MM-DD HH:MM:SS` in GMT+8. A ledger refusal (INSUFFICIENT_BALANCE, …) is a
//! `CommonResult` with `biz_success: false`, `result_code` the spec §6 code and `result_desc`
//! its message; a malformed request object is TOP's `error_response` 40 or 41.
//!
//! The account: `account_id` when given (a purse extension), else the one account opened with
//! `card_id`; a CHARGE of a card no account has opens the account `card_id` with that card.
//! UNDEDUCT and UNCHARGE without either take the account of the order they refer to.

use purse_core::{Action, Amount, Buckets, Command, ErrorCode, Flow, FlowType, Scale};
use purse_ledger::{AccountView, FlowKey, FlowQuery, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};

use super::top::{Node, Params, TopError, TOP_ZONE};
use super::{FieldError, Object};
use crate::{AppState, Scope};

/// One ALSC method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Charge,
    Deduct,
    Undeduct,
    Uncharge,
    Account,
    AccountFlows,
    FlowDetail,
}

/// (method, its name, the parameter of its request object). The seeds name the objects of
/// charge.update and flowdetail.get; the others follow the same pattern, and a request with
/// one `param_*` parameter of another name is read too (see [`request_object`]).
const METHODS: [(Method, &str, &str); 7] = [
    (Method::Charge, "alibaba.alsc.crm.recharge.charge.update", "param_recharge_open_req"),
    (Method::Deduct, "alibaba.alsc.crm.recharge.dedut.update", "param_recharge_dedut_open_req"),
    (Method::Undeduct, "alibaba.alsc.crm.recharge.undedut.update", "param_recharge_undedut_open_req"),
    (Method::Uncharge, "alibaba.alsc.crm.recharge.uncharge.update", "param_recharge_uncharge_open_req"),
    (Method::Account, "alibaba.alsc.crm.recharge.account.get", "param_query_recharge_account_open_req"),
    (Method::AccountFlows, "alibaba.alsc.crm.recharge.accountflows.get", "param_query_recharge_account_flows_open_req"),
    (
        Method::FlowDetail,
        "alibaba.alsc.crm.recharge.account.flowdetail.get",
        "param_query_recharge_account_flow_open_req",
    ),
];

/// The fields every write takes besides its own: ALSC's, and `account_id` (purse's).
const WRITE_FIELDS: [&str; 15] = [
    "request_id",
    "outer_order_id",
    "account_id",
    "card_id",
    "brand_id",
    "out_brand_id",
    "shop_id",
    "out_shop_id",
    "operator_id",
    "biz_date",
    "remark",
    "ext_info",
    "biz_channel",
    "out_pay_id",
    "order_src",
];

impl Method {
    pub(crate) fn parse(name: &str) -> Option<Method> {
        METHODS.iter().find(|(_, known, _)| *known == name).map(|(method, _, _)| *method)
    }

    pub(crate) fn name(self) -> &'static str {
        METHODS.iter().find(|(method, _, _)| *method == self).map_or("", |(_, name, _)| name)
    }

    fn param(self) -> &'static str {
        METHODS.iter().find(|(method, _, _)| *method == self).map_or("", |(_, _, param)| param)
    }

    pub(crate) fn scope(self) -> Scope {
        match self {
            Method::Charge | Method::Deduct | Method::Undeduct | Method::Uncharge => Scope::Write,
            Method::Account | Method::AccountFlows | Method::FlowDetail => Scope::Read,
        }
    }

    /// `alibaba_alsc_crm_recharge_charge_update_response`.
    pub(crate) fn response_root(self) -> String {
        format!("{}_response", self.name().replace('.', "_"))
    }

    /// The seeds: `200` for charge.update, `0` for flowdetail.get; writes and reads follow each.
    fn success_code(self) -> &'static str {
        if self.scope() == Scope::Write {
            "200"
        } else {
            "0"
        }
    }
}

/// Why a method did not give its result.
enum Refusal {
    /// The request is malformed: TOP's `error_response`.
    Protocol(TopError),
    /// The ledger refused (or could not serve): a spec §6 code and its message.
    Ledger(ErrorCode, String),
}

impl From<FieldError> for Refusal {
    fn from(error: FieldError) -> Refusal {
        Refusal::Protocol(match error {
            FieldError::Missing(name) => TopError::missing(name),
            FieldError::Invalid(name, why) => TopError::invalid(&name, why),
            FieldError::NotAnObject(why) => TopError::invalid("request object", why),
        })
    }
}

impl From<purse_ledger::Error> for Refusal {
    fn from(error: purse_ledger::Error) -> Refusal {
        Refusal::Ledger(error.code(), error.to_string())
    }
}

/// Runs `method` and answers its `CommonResult`; a protocol refusal or a server fault is `Err`.
pub(crate) async fn call(state: &AppState, method: Method, params: &Params) -> Result<Node, TopError> {
    let outcome = match request_object(method, params) {
        Ok(object) => run(state, method, &object).await,
        Err(error) => Err(Refusal::Protocol(error)),
    };
    match outcome {
        Ok(result) => Ok(common_result(true, Some(result), method.success_code(), "成功")),
        Err(Refusal::Protocol(error)) => Err(error),
        Err(Refusal::Ledger(ErrorCode::Storage | ErrorCode::Corruption, message)) => Err(TopError::service(message)),
        Err(Refusal::Ledger(code, message)) => Ok(common_result(false, None, code.as_str(), &message)),
    }
}

fn common_result(success: bool, result: Option<Node>, code: &str, desc: &str) -> Node {
    let mut members = vec![("biz_success", Node::Bool(success))];
    if let Some(result) = result {
        members.push(("result", result));
    }
    members.push(("result_code", Node::Str(code.to_owned())));
    members.push(("result_desc", Node::Str(desc.to_owned())));
    // What a person at the till is shown: nothing on success, the reason otherwise.
    members.push(("result_view", Node::Str(if success { String::new() } else { desc.to_owned() })));
    Node::Object(vec![("result", Node::Object(members))])
}

/// The method's request object: its own parameter, or the one `param_*` parameter given.
fn request_object(method: Method, params: &Params) -> Result<Object, TopError> {
    let text = match params.get(method.param()) {
        Some(text) => text,
        None => {
            let mut objects = params.objects().filter(|(_, value)| !value.is_empty());
            match (objects.next(), objects.next()) {
                (Some((_, text)), None) => text,
                (None, _) => return Err(TopError::missing(method.param())),
                (Some(_), Some(_)) => {
                    return Err(TopError::invalid(
                        method.param(),
                        "several param_* parameters: send the one request object",
                    ))
                }
            }
        }
    };
    Object::parse(text).map_err(|error| TopError::invalid(method.param(), error))
}

async fn run(state: &AppState, method: Method, object: &Object) -> Result<Node, Refusal> {
    match method {
        Method::Charge | Method::Deduct | Method::Undeduct | Method::Uncharge => {
            let command = write_command(state, method, object).await?;
            let flow = state.ledger().submit(command).await?;
            Ok(flow_node(&flow, state.units().scale, true))
        }
        Method::Account => account(state, object).await,
        Method::AccountFlows => account_flows(state, object).await,
        Method::FlowDetail => flow_detail(state, object).await,
    }
}

/// The command of a write method, its account resolved.
async fn write_command(state: &AppState, method: Method, object: &Object) -> Result<Command, Refusal> {
    let scale = state.units().scale;
    let (own, action): (&[&str], Action) = match method {
        Method::Charge => {
            let trigger_gift = object.boolean("trigger_gift")?.ok_or(FieldError::Missing("trigger_gift"))?;
            if let Some(kind) = object.text("charge_type")? {
                if kind != "CHARGE" {
                    return Err(FieldError::Invalid("charge_type".into(), format!("{kind:?}: only CHARGE")).into());
                }
            }
            let real = fen_amount(object, "real_value", scale)?.unwrap_or(Amount::ZERO);
            let pre = fen_amount(object, "pre_value", scale)?.unwrap_or(Amount::ZERO);
            let gift = fen_amount(object, "gift_value", scale)?;
            (
                &["trigger_gift", "charge_type", "real_value", "gift_value", "pre_value"],
                Action::Charge { real, gift, pre, trigger_gift },
            )
        }
        Method::Deduct => {
            let value = fen_amount(object, "value", scale)?.ok_or(FieldError::Missing("value"))?;
            (&["value"], Action::Deduct { value })
        }
        Method::Undeduct => {
            let original = object.required("outer_order_id")?;
            let value = fen_amount(object, "value", scale)?;
            (&["new_outer_order_id", "value"], Action::Undeduct { original_outer_order_id: original, value })
        }
        _ => (&["src_outer_order_id"], Action::Uncharge { src_outer_order_id: object.required("src_outer_order_id")? }),
    };
    let known: Vec<&str> = WRITE_FIELDS.iter().chain(own).copied().collect();
    object.only(&known)?;
    let request_id = object.required("request_id")?;
    // An UNDEDUCT's outer_order_id names the refunded order; its own is new_outer_order_id.
    let outer_order_id = if method == Method::Undeduct {
        object.required("new_outer_order_id")?
    } else {
        object.required("outer_order_id")?
    };
    let referred = match &action {
        Action::Undeduct { original_outer_order_id, .. } => Some(original_outer_order_id.clone()),
        Action::Uncharge { src_outer_order_id } => Some(src_outer_order_id.clone()),
        _ => None,
    };
    let account_id = account_of(state, object, method == Method::Charge, referred.as_deref()).await?;
    let mut command = Command::new(&request_id, &outer_order_id, &account_id, action);
    command.card_id = object.text("card_id")?;
    command.brand_id = object.text("brand_id")?;
    command.shop_id = object.text("shop_id")?;
    command.operator_id = object.text("operator_id")?;
    command.remark = object.text("remark")?;
    if let Some(text) = object.text("biz_date")? {
        let time = TOP_ZONE.parse_local(&text).ok_or_else(|| {
            FieldError::Invalid("biz_date".into(), format!("{text:?} is not YYYY-MM-DD HH:MM:SS (GMT+8)"))
        })?;
        command.biz_date = Some(time);
    }
    if let Some(text) = object.text("ext_info")? {
        purse_wire::strict_json::check(&text)
            .map_err(|error| FieldError::Invalid("ext_info".into(), format!("not valid JSON: {error}")))?;
        command.ext_info = Some(text);
    }
    Ok(command)
}

/// The account a request names: `account_id`, else the account of `card_id` (for a CHARGE,
/// the new account `card_id` if the card has none), else the account of the order referred to.
async fn account_of(state: &AppState, object: &Object, opens: bool, referred: Option<&str>) -> Result<String, Refusal> {
    if let Some(account_id) = object.text("account_id")? {
        return Ok(account_id);
    }
    let ledger = state.ledger();
    let Some(card_id) = object.text("card_id")? else {
        return match referred {
            Some(order) => Ok(ledger.flow(FlowKey::OuterOrderId(order.to_owned())).await?.account_id),
            None => Err(FieldError::Missing("card_id").into()),
        };
    };
    let mut accounts = ledger.accounts_by_card(&card_id).await?;
    match accounts.len() {
        0 if opens => match ledger.account(&card_id).await {
            Ok(view) if view.card_id.as_deref() != Some(card_id.as_str()) => Err(Refusal::Ledger(
                ErrorCode::InvalidArgument,
                format!("account {card_id:?} exists with another card; give its account_id"),
            )),
            _ => Ok(card_id),
        },
        0 => Err(Refusal::Ledger(ErrorCode::AccountNotFound, format!("no account has card_id {card_id:?}"))),
        1 => Ok(accounts.remove(0).account_id),
        count => Err(Refusal::Ledger(
            ErrorCode::InvalidArgument,
            format!("card_id {card_id:?} belongs to {count} accounts; give account_id"),
        )),
    }
}

async fn account(state: &AppState, object: &Object) -> Result<Node, Refusal> {
    object.only(&["account_id", "card_id", "brand_id", "out_brand_id"])?;
    let account_id = account_of(state, object, false, None).await?;
    let view = state.ledger().account(&account_id).await?;
    if let Some(brand) = object.text("brand_id")? {
        if view.brand_id.as_deref() != Some(brand.as_str()) {
            return Err(Refusal::Ledger(
                ErrorCode::AccountNotFound,
                format!("account {account_id:?} is not of brand {brand:?}"),
            ));
        }
    }
    Ok(account_node(&view, state.units().scale))
}

async fn account_flows(state: &AppState, object: &Object) -> Result<Node, Refusal> {
    object.only(&[
        "account_id",
        "card_id",
        "customer_id",
        "brand_id",
        "out_brand_id",
        "flow_types",
        "out_order_id",
        "start_time",
        "end_time",
        "page_no",
        "page_size",
    ])?;
    let account_id = match object.text("customer_id")? {
        Some(customer) => customer,
        None => account_of(state, object, false, None).await?,
    };
    let mut query = FlowQuery::new(account_id.clone());
    for name in object.list("flow_types")? {
        let flow_type = FlowType::parse(&name)
            .ok_or_else(|| FieldError::Invalid("flow_types".into(), format!("{name:?} is not a flow type")))?;
        query.flow_types.push(flow_type);
    }
    query.start_time = time(object, "start_time")?;
    query.end_time = time(object, "end_time")?;
    query.page_no = number(object, "page_no", 1, u32::MAX)?.unwrap_or(1);
    query.page_size = number(object, "page_size", 1, PAGE_SIZE_MAX)?.unwrap_or(PAGE_SIZE_DEFAULT);
    let scale = state.units().scale;
    let ledger = state.ledger();
    let (total, flows) = match object.text("out_order_id")? {
        Some(order) => {
            let flow = match ledger.flow(FlowKey::OuterOrderId(order)).await {
                Ok(flow) => Some(flow),
                Err(error) if error.code() == ErrorCode::OrderNotFound => None,
                Err(error) => return Err(error.into()),
            };
            let kept: Vec<Flow> = flow
                .filter(|flow| {
                    flow.account_id == account_id
                        && (query.flow_types.is_empty() || query.flow_types.contains(&flow.flow_type))
                        && query.start_time.is_none_or(|start| flow.order_time >= start)
                        && query.end_time.is_none_or(|end| flow.order_time < end)
                })
                .into_iter()
                .collect();
            let total = kept.len() as u64;
            (total, if query.page_no == 1 { kept } else { Vec::new() })
        }
        None => {
            let page = ledger.flows(query.clone()).await?;
            (page.total_count, page.flows)
        }
    };
    let rows = flows.iter().map(|flow| flow_node(flow, scale, false)).collect();
    Ok(Node::Object(vec![
        ("total_count", Node::Num(total.to_string())),
        ("page_no", Node::Num(query.page_no.to_string())),
        ("page_size", Node::Num(query.page_size.to_string())),
        ("flow_list", Node::List { item: "recharge_account_flow_open_info", items: rows }),
    ]))
}

async fn flow_detail(state: &AppState, object: &Object) -> Result<Node, Refusal> {
    object.only(&["flow_id", "outer_order_id", "brand_id", "out_brand_id"])?;
    let key =
        match (object.text("flow_id")?, object.text("outer_order_id")?) {
            (Some(id), _) => FlowKey::Id(id.parse().map_err(|_| {
                FieldError::Invalid("flow_id".into(), format!("{id:?} is not a flow id of this ledger"))
            })?),
            (None, Some(order)) => FlowKey::OuterOrderId(order),
            (None, None) => return Err(FieldError::Missing("flow_id").into()),
        };
    let flow = state.ledger().flow(key).await?;
    if let Some(brand) = object.text("brand_id")? {
        if flow.brand_id.as_deref() != Some(brand.as_str()) {
            return Err(Refusal::Ledger(
                ErrorCode::OrderNotFound,
                format!("flow {} is not of brand {brand:?}", flow.flow_id),
            ));
        }
    }
    Ok(flow_node(&flow, state.units().scale, true))
}

fn time(object: &Object, key: &'static str) -> Result<Option<purse_core::Timestamp>, FieldError> {
    object
        .text(key)?
        .map(|text| {
            TOP_ZONE
                .parse_local(&text)
                .ok_or_else(|| FieldError::Invalid(key.into(), format!("{text:?} is not YYYY-MM-DD HH:MM:SS (GMT+8)")))
        })
        .transpose()
}

fn number(object: &Object, key: &'static str, min: u32, max: u32) -> Result<Option<u32>, FieldError> {
    object
        .text(key)?
        .map(|text| {
            text.parse::<u32>()
                .ok()
                .filter(|value| (min..=max).contains(value))
                .ok_or_else(|| FieldError::Invalid(key.into(), format!("{text:?}: a whole number from {min} to {max}")))
        })
        .transpose()
}

/// A request amount in whole fen, at the ledger's scale. A text that is no whole number is a
/// malformed request (41); a number the ledger's scale cannot hold is INVALID_AMOUNT.
fn fen_amount(object: &Object, key: &'static str, scale: Scale) -> Result<Option<Amount>, Refusal> {
    let Some(text) = object.text(key)? else { return Ok(None) };
    // The reading purse-ingest gives ALSC exports' fen amounts.
    purse_ingest::hundredths_amount(key, &text, scale).map(Some).map_err(|error| match error.code() {
        ErrorCode::InvalidAmount => Refusal::Ledger(ErrorCode::InvalidAmount, format!("{key}: {error}")),
        _ => FieldError::Invalid(key.into(), format!("{text:?} is not a whole number of fen")).into(),
    })
}

/// An amount as whole fen. At a ledger scale above 2, a part of a fen is written as decimals.
pub(crate) fn fen(amount: Amount, scale: Scale) -> String {
    let decimals = scale.decimals();
    let minor = i128::from(amount.minor());
    if decimals <= 2 {
        return (minor * 10i128.pow(2 - decimals)).to_string();
    }
    let text = Scale::new(decimals - 2).map_or_else(|| minor.to_string(), |finer| Amount::format_wide(minor, finer));
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn property_list(buckets: &Buckets, scale: Scale) -> Node {
    let items = buckets
        .properties()
        .map(|properties| {
            properties
                .iter()
                .map(|(property, amount)| {
                    Node::Object(vec![
                        ("type", Node::Str(property.as_str().to_owned())),
                        ("value", Node::Num(fen(*amount, scale))),
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    Node::List { item: "recharge_account_property_open_info", items }
}

/// RechargeAccountFlowDetailOpenInfo, fields in the seed's order; with `lists: false`, the
/// row of an `accountflows.get` page (no property lists).
fn flow_node(flow: &Flow, scale: Scale, lists: bool) -> Node {
    let after = flow.after().unwrap_or(flow.before);
    let total = |buckets: &Buckets| buckets.total().map_or_else(|| "0".to_owned(), |total| fen(total, scale));
    let mut members = vec![("account_id", Node::Str(flow.account_id.clone()))];
    if lists {
        members.push(("affected_property_list", property_list(&flow.affected, scale)));
        members.push(("after_property_list", property_list(&after, scale)));
        members.push(("before_property_list", property_list(&flow.before, scale)));
    }
    let optional = |members: &mut Vec<(&'static str, Node)>, name, value: &Option<String>| {
        if let Some(value) = value {
            members.push((name, Node::Str(value.clone())));
        }
    };
    optional(&mut members, "brand_id", &flow.brand_id);
    members.push(("current_value", Node::Num(total(&after))));
    members.push(("flow_id", Node::Str(flow.flow_id.to_string())));
    members.push(("flow_type", Node::Str(flow.flow_type.as_str().to_owned())));
    optional(&mut members, "operator", &flow.operator_id);
    members.push(("order_time", Node::Str(TOP_ZONE.format_local(flow.order_time))));
    members.push(("order_value", Node::Num(total(&flow.affected))));
    members.push(("outer_order_id", Node::Str(flow.outer_order_id.clone())));
    optional(&mut members, "remark", &flow.remark);
    optional(&mut members, "shop_id", &flow.shop_id);
    optional(&mut members, "card_id", &flow.card_id);
    optional(&mut members, "ext_info", &flow.ext_info);
    Node::Object(members)
}

fn account_node(view: &AccountView, scale: Scale) -> Node {
    let amount = |amount: Amount| Node::Num(fen(amount, scale));
    let total =
        |buckets: &Buckets| Node::Num(buckets.total().map_or_else(|| "0".to_owned(), |total| fen(total, scale)));
    let mut members = vec![("account_id", Node::Str(view.account_id.clone()))];
    if let Some(card) = &view.card_id {
        members.push(("card_id", Node::Str(card.clone())));
    }
    if let Some(brand) = &view.brand_id {
        members.push(("brand_id", Node::Str(brand.clone())));
    }
    members.extend([
        ("real_value", amount(view.balance.real)),
        ("gift_value", amount(view.balance.gift)),
        ("pre_value", amount(view.balance.pre)),
        ("total_value", total(&view.balance)),
        ("real_value_total", amount(view.lifetime.real)),
        ("gift_value_total", amount(view.lifetime.gift)),
        ("pre_value_total", amount(view.lifetime.pre)),
        ("status", Node::Str(view.status.as_str().to_owned())),
        ("property_list", property_list(&view.balance, scale)),
    ]);
    Node::Object(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_at_each_scale() {
        let check = |minor: i64, decimals: u32, expect: &str| {
            assert_eq!(fen(Amount::from_minor(minor), Scale::new(decimals).unwrap()), expect, "{minor} at {decimals}")
        };
        check(2000, 2, "2000");
        check(-90, 2, "-90");
        check(12, 0, "1200");
        check(12_345, 3, "1234.5");
        check(12_340, 3, "1234");
        check(0, 2, "0");
    }

    #[test]
    fn method_names_and_roots() {
        assert_eq!(Method::parse("alibaba.alsc.crm.recharge.charge.update"), Some(Method::Charge));
        assert_eq!(Method::FlowDetail.response_root(), "alibaba_alsc_crm_recharge_account_flowdetail_get_response");
        assert_eq!(Method::parse("alibaba.alsc.crm.recharge.nothing"), None);
        for (method, name, _) in METHODS {
            assert_eq!(method.name(), name);
        }
    }
}
