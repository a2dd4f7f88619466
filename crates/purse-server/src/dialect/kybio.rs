//! KYBIO's (Pospal's) open API: `queryCustomerRechargeLog` and `updateBalancePointByIncrement`
//! under `/openapi/v1/customerOpenApi/`.
//!
//! A request is a JSON body with `appId` (the app key), signed by the headers `time-stamp`
//! (ms since the epoch) and `data-signature` = uppercase hex MD5(appKey secret + body), both
//! trimmed. The answer is `{"status": "success"|"error", "messages": [...], "errorCode",
//! "data"}`, always HTTP 200. Amounts are major units (yuan), as JSON numbers.
//!
//! The signature does not cover `time-stamp`: the replay guard keys on the signature and the
//! time-stamp together, so the same body sent again with a new time-stamp is a new request
//! (KYBIO's scheme cannot tell it from a replay with a forged time-stamp; see docs/dialects.md).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use md5::{Digest, Md5};
use purse_core::{Action, Amount, Command, ErrorCode, Flow, FlowType};
use purse_ledger::{FlowQuery, PAGE_SIZE_MAX};
use serde::Serialize;
use serde_json::value::RawValue;

use super::{FieldError, Object};
use crate::keys::{AppKey, Dialect};
use crate::replay::{ReplayError, ReplayGuard};
use crate::{AppState, Scope};

pub const QUERY_PATH: &str = "/openapi/v1/customerOpenApi/queryCustomerRechargeLog";
pub const UPDATE_PATH: &str = "/openapi/v1/customerOpenApi/updateBalancePointByIncrement";

/// Recharge records one query answers at most; more is an error naming the limit.
const RECHARGE_LOG_RECORDS_MAX: u64 = 20_000;

/// KYBIO's `errorCode` for each refusal of the protocol (purse's numbering: KYBIO's own table
/// is not public). Ledger refusals are 2000 + the code's position in spec §6's list.
const ERROR_INVALID_REQUEST: i32 = 1001;
const ERROR_INVALID_SIGNATURE: i32 = 1002;
const ERROR_INVALID_TIMESTAMP: i32 = 1003;
const ERROR_REPLAYED: i32 = 1004;
const ERROR_UNKNOWN_APP: i32 = 1005;
const ERROR_SCOPE: i32 = 1006;
const ERROR_LEDGER_BASE: i32 = 2000;

/// A refusal: KYBIO's `errorCode` and a message.
struct Refusal {
    code: i32,
    message: String,
}

impl Refusal {
    fn new(code: i32, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into() }
    }
}

impl From<FieldError> for Refusal {
    fn from(error: FieldError) -> Refusal {
        Refusal::new(ERROR_INVALID_REQUEST, error.to_string())
    }
}

impl From<purse_ledger::Error> for Refusal {
    fn from(error: purse_ledger::Error) -> Refusal {
        ledger_refusal(error.code(), &error.to_string())
    }
}

fn ledger_refusal(code: ErrorCode, message: &str) -> Refusal {
    let position = ErrorCode::ALL.iter().position(|known| *known == code).unwrap_or(0);
    Refusal::new(ERROR_LEDGER_BASE + i32::try_from(position).unwrap_or(0), format!("{}: {message}", code.as_str()))
}

#[derive(Serialize)]
struct Envelope<T: Serialize> {
    status: &'static str,
    messages: Vec<String>,
    #[serde(rename = "errorCode")]
    error_code: Option<i32>,
    data: Option<T>,
}

fn respond<T: Serialize>(outcome: Result<T, Refusal>) -> Response {
    let envelope = match outcome {
        Ok(data) => Envelope { status: "success", messages: Vec::new(), error_code: None, data: Some(data) },
        Err(refusal) => {
            Envelope { status: "error", messages: vec![refusal.message], error_code: Some(refusal.code), data: None }
        }
    };
    let body = serde_json::to_string(&envelope).unwrap_or_else(|_| {
        r#"{"status":"error","messages":["rendering the answer failed"],"errorCode":2009,"data":null}"#.to_owned()
    });
    super::answer(StatusCode::OK, "application/json; charset=utf-8", body)
}

/// A refusal by the server's own limits (408, 413) in KYBIO's envelope, HTTP 200 as every
/// KYBIO answer.
pub(crate) fn limit_error(message: &str) -> Response {
    respond::<()>(Err(Refusal::new(ERROR_INVALID_REQUEST, message)))
}

/// The uppercase hex `data-signature` of `body` under `secret` (both trimmed).
pub fn signature(secret: &str, body: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(secret.trim().as_bytes());
    hasher.update(body.trim().as_bytes());
    hex::encode_upper(hasher.finalize())
}

/// A request that passed the checks: its body object, app key and signed time.
struct Signed {
    object: Object,
    app: AppKey,
    body: String,
}

/// Body, app key, signature, time and replay, scope: in that order.
fn authenticate(state: &AppState, headers: &HeaderMap, body: &[u8], scope: Scope) -> Result<Signed, Refusal> {
    let body = std::str::from_utf8(body).map_err(|_| Refusal::new(ERROR_INVALID_REQUEST, "the body is not UTF-8"))?;
    let object = Object::parse(body)?;
    let app_id = object.required("appId")?;
    let keys = state.keys().current();
    let app = keys
        .app(Dialect::Kybio, &app_id)
        .ok_or_else(|| Refusal::new(ERROR_UNKNOWN_APP, "the appId is unknown or revoked"))?
        .clone();
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim).unwrap_or("");
    let given = header("data-signature");
    let computed = signature(&app.secret, body);
    if given.is_empty() || !super::same_signature(&computed, given) {
        return Err(Refusal::new(ERROR_INVALID_SIGNATURE, "data-signature is not MD5(appKey + body) of this request"));
    }
    let time_stamp = header("time-stamp").to_owned();
    // Digits only (no sign, at most 16): `+17…` or leading zeros would spell one time many ways.
    let strict = !time_stamp.is_empty()
        && time_stamp.len() <= 16
        && time_stamp.bytes().all(|byte| byte.is_ascii_digit())
        && (time_stamp == "0" || !time_stamp.starts_with('0'));
    let signed_at_ms: i64 =
        time_stamp.parse().ok().filter(|_| strict).ok_or_else(|| {
            Refusal::new(ERROR_INVALID_TIMESTAMP, "time-stamp must be the milliseconds since the epoch")
        })?;
    // The signature leaves the time-stamp out: the pair is what a replay repeats.
    let seen = format!("{computed}:{signed_at_ms}");
    state.replay().check(Dialect::Kybio, &app_id, &seen, signed_at_ms, ReplayGuard::now_ms()).map_err(|error| {
        let code = match error {
            ReplayError::Skewed { .. } => ERROR_INVALID_TIMESTAMP,
            ReplayError::Replayed | ReplayError::Full => ERROR_REPLAYED,
        };
        Refusal::new(code, error.to_string())
    })?;
    if app.scope < scope {
        return Err(Refusal::new(
            ERROR_SCOPE,
            format!("the appId has scope {}; this call needs {}", app.scope.as_str(), scope.as_str()),
        ));
    }
    Ok(Signed { object, app, body: body.trim().to_owned() })
}

/// One recharge record, as the seed shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RechargeRecord {
    recharge_store_app_id: String,
    recharge_store_account: String,
    customer_uid: String,
    recharge_money: Box<RawValue>,
    gift_money: Box<RawValue>,
    datetime: String,
    pay_method: String,
    customer_money_after_recharge: Box<RawValue>,
}

/// `POST …/queryCustomerRechargeLog` {appId, customerUid}: the customer's CHARGE flows, oldest
/// first.
pub async fn query_recharge_log(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    respond(recharge_log(&state, &headers, &body).await)
}

async fn recharge_log(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Vec<RechargeRecord>, Refusal> {
    let signed = authenticate(state, headers, body, Scope::Read)?;
    signed.object.only(&["appId", "customerUid"])?;
    let customer = customer_uid(&signed.object)?;
    let ledger = state.ledger();
    // An unknown customer is ACCOUNT_NOT_FOUND from `flows` itself.
    let mut query = FlowQuery::new(customer.clone());
    query.flow_types = vec![FlowType::Charge];
    query.page_size = PAGE_SIZE_MAX;
    let mut records = Vec::new();
    loop {
        let page = ledger.flows(query.clone()).await?;
        if page.total_count > RECHARGE_LOG_RECORDS_MAX {
            return Err(Refusal::new(
                ERROR_INVALID_REQUEST,
                format!(
                    "the customer has {} recharges, more than the {RECHARGE_LOG_RECORDS_MAX} one answer holds",
                    page.total_count
                ),
            ));
        }
        records.extend(page.flows.iter().map(|flow| record(state, &signed.app, flow)));
        if page.flows.is_empty() || records.len() as u64 >= page.total_count {
            break;
        }
        query.page_no += 1;
    }
    Ok(records)
}

/// A CHARGE as KYBIO's record: REAL is `rechargeMoney`; GIFT and PRE (KYBIO keeps no PRE) are
/// `giftMoney`; the TOTAL after it is `customerMoneyAfterRecharge`.
fn record(state: &AppState, app: &AppKey, flow: &Flow) -> RechargeRecord {
    let scale = state.units().scale;
    let number = |amount: Amount| super::json_number(amount.format(scale));
    let gift = flow.affected.gift.checked_add(flow.affected.pre).unwrap_or(flow.affected.gift);
    let after = flow.after().and_then(|after| after.total()).unwrap_or(Amount::ZERO);
    RechargeRecord {
        recharge_store_app_id: flow.shop_id.clone().unwrap_or_else(|| app.app_key.clone()),
        recharge_store_account: flow.operator_id.clone().unwrap_or_default(),
        customer_uid: flow.account_id.clone(),
        recharge_money: number(flow.affected.real),
        gift_money: number(gift),
        datetime: super::top::TOP_ZONE.format_local(flow.order_time),
        pay_method: pay_method(flow.ext_info.as_deref()).unwrap_or_default(),
        customer_money_after_recharge: number(after),
    }
}

/// `pay_method` (what purse-ingest keeps) or `payModeName` of a flow's ext_info, if any.
fn pay_method(ext_info: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(ext_info?).ok()?;
    ["pay_method", "payMethod", "payModeName"]
        .iter()
        .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str).map(str::to_owned))
}

/// `customerUid`: KYBIO's Long, as a JSON number or a text of digits; the purse account id.
fn customer_uid(object: &Object) -> Result<String, FieldError> {
    let uid = object.required("customerUid")?;
    if uid.len() > 19 || !uid.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(FieldError::Invalid("customerUid".into(), format!("{uid:?} is not a customer number")));
    }
    Ok(uid)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BalanceUpdate {
    customer_uid: String,
    balance_before_update: Box<RawValue>,
    balance_after_update: Box<RawValue>,
}

/// `POST …/updateBalancePointByIncrement` {appId, customerUid, balanceIncrement,
/// pointIncrement?, dataChangeTime?}: a positive increment is a CHARGE of REAL, a negative one
/// a DEDUCT.
pub async fn update_balance(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    respond(balance_update(&state, &headers, &body).await)
}

async fn balance_update(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<BalanceUpdate, Refusal> {
    let signed = authenticate(state, headers, body, Scope::Write)?;
    let object = &signed.object;
    object.only(&["appId", "customerUid", "balanceIncrement", "pointIncrement", "dataChangeTime"])?;
    let customer = customer_uid(object)?;
    let scale = state.units().scale;
    let increment = object.required("balanceIncrement")?;
    let increment = Amount::parse(&increment, scale)
        .map_err(|error| ledger_refusal(ErrorCode::InvalidAmount, &format!("balanceIncrement: {error}")))?;
    if let Some(points) = object.text("pointIncrement")? {
        if !points.bytes().all(|byte| matches!(byte, b'0' | b'.' | b'-')) {
            return Err(Refusal::new(
                ERROR_INVALID_REQUEST,
                "pointIncrement: purse keeps no points; send 0 or leave it out",
            ));
        }
    }
    let action = if increment.is_positive() {
        Action::Charge { real: increment, gift: None, pre: Amount::ZERO, trigger_gift: false }
    } else if increment.is_negative() {
        Action::Deduct { value: increment.checked_neg().unwrap_or(Amount::ZERO) }
    } else {
        return Err(ledger_refusal(ErrorCode::InvalidAmount, "balanceIncrement: 0 changes nothing"));
    };
    // KYBIO has no idempotency key, and a balance change without one could not be retried
    // safely (a client whose answer was lost signs the same change anew with a new
    // time-stamp): dataChangeTime names the change, so it is required, and a retry of the
    // same body, however stamped, is the same request.
    let change_time = object.text("dataChangeTime")?.ok_or_else(|| {
        FieldError::Invalid(
            "dataChangeTime".into(),
            "is required (YYYY-MM-DD HH:MM:SS, GMT+8): it names the change, so that a retry is not a second change"
                .into(),
        )
    })?;
    let biz_date = Some(super::top::TOP_ZONE.parse_local(&change_time).ok_or_else(|| {
        FieldError::Invalid("dataChangeTime".into(), format!("{change_time:?} is not YYYY-MM-DD HH:MM:SS (GMT+8)"))
    })?);
    let id = super::content_id(&[signed.app.app_key.as_bytes(), signed.body.as_bytes()]);
    let id = format!("kybio:{id}");
    let mut command = Command::new(&id, &id, &customer, action);
    command.biz_date = biz_date;
    let flow = state.ledger().submit(command).await?;
    let before = flow.before.total().unwrap_or(Amount::ZERO);
    let after = flow.after().and_then(|after| after.total()).unwrap_or(Amount::ZERO);
    Ok(BalanceUpdate {
        customer_uid: customer,
        balance_before_update: super::json_number(before.format(scale)),
        balance_after_update: super::json_number(after.format(scale)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_uppercase_md5_of_secret_and_body() {
        // MD5("") is d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(signature(" ", " "), "D41D8CD98F00B204E9800998ECF8427E");
        assert_eq!(signature("k", "{}"), signature(" k ", " {} "));
    }

    #[test]
    fn ledger_codes_are_numbered() {
        assert_eq!(ledger_refusal(ErrorCode::InvalidArgument, "x").code, 2000);
        assert_eq!(ledger_refusal(ErrorCode::InsufficientBalance, "x").code, 2002);
        assert!(ledger_refusal(ErrorCode::InsufficientBalance, "x").message.starts_with("INSUFFICIENT_BALANCE: "));
    }

    #[test]
    fn pay_methods_from_ext_info() {
        assert_eq!(pay_method(Some(r#"{"pay_method":"Cash"}"#)), Some("Cash".to_owned()));
        assert_eq!(pay_method(Some(r#"{"payModeId":"WX","payModeName":"微信"}"#)), Some("微信".to_owned()));
        assert_eq!(pay_method(None), None);
    }
}
