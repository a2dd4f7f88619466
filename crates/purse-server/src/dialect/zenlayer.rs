//! Zenlayer's Cloud API v2: `POST /api/v2/zbc` with `X-ZC-Action: DescribeRechargeRefundHistory`.
//!
//! Signed as the zenlayercloud SDK signs (ZC2-HMAC-SHA256): the canonical request is
//! `METHOD\n/\n\n` + one `name:value\n` line per signed header + `\n` + the signed header names
//! joined by `;` + `\n` + hex SHA-256 of the body; the string to sign is
//! `ZC2-HMAC-SHA256\n<X-ZC-Timestamp>\n` + hex SHA-256 of the canonical request; the signature
//! is lowercase hex HMAC-SHA256 keyed by the secret, sent as `Authorization: ZC2-HMAC-SHA256
//! Credential=<access key id>, SignedHeaders=content-type;host, Signature=<hex>`.
//!
//! The answer is `{"requestId", "response": {"requestId", "totalCount", "dataSet"}}`; an error
//! is HTTP 4xx/5xx with `{"requestId", "code", "message"}`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use purse_core::{Amount, ErrorCode, Flow, FlowType, Scale, Timestamp};
use purse_ledger::ExportFilter;
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{FieldError, Object};
use crate::error::ErrorCodeTag;
use crate::keys::Dialect;
use crate::replay::{ReplayError, ReplayGuard};
use crate::{AppState, Scope};

pub const PATH: &str = "/api/v2/zbc";
pub const ALGORITHM: &str = "ZC2-HMAC-SHA256";
pub const ACTION: &str = "DescribeRechargeRefundHistory";

/// Zenlayer's documented page-size limit.
const PAGE_SIZE_MAX: u64 = 5000;
/// Zenlayer documents no default; purse's own.
const PAGE_SIZE_DEFAULT: u64 = 20;
/// The headers a signature must cover: the body's type and the host it was sent to.
const SIGNED_HEADERS_REQUIRED: [&str; 2] = ["content-type", "host"];

/// A refusal: HTTP status, Zenlayer-style code, message.
#[derive(Debug)]
struct ZenError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ZenError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ZenError {
        ZenError { status, code, message: message.into() }
    }

    fn parameter(message: impl Into<String>) -> ZenError {
        ZenError::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER", message)
    }

    fn auth(code: &'static str, message: impl Into<String>) -> ZenError {
        ZenError::new(StatusCode::UNAUTHORIZED, code, message)
    }
}

impl From<FieldError> for ZenError {
    fn from(error: FieldError) -> ZenError {
        ZenError::parameter(error.to_string())
    }
}

impl From<purse_ledger::Error> for ZenError {
    fn from(error: purse_ledger::Error) -> ZenError {
        match error.code() {
            ErrorCode::Storage => {
                ZenError::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", error.to_string())
            }
            ErrorCode::Corruption => {
                ZenError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", error.to_string())
            }
            _ => ZenError::parameter(error.to_string()),
        }
    }
}

/// The lowercase hex ZC2-HMAC-SHA256 signature of a request. `headers` are the signed
/// headers' (lowercase name, value) in the order `SignedHeaders` lists them.
pub fn signature(secret: &str, method: &str, headers: &[(&str, &str)], body: &[u8], timestamp: &str) -> String {
    let canonical_headers: String = headers.iter().map(|(name, value)| format!("{name}:{value}\n")).collect();
    let signed_headers: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
    let canonical_request = format!(
        "{method}\n/\n\n{canonical_headers}\n{}\n{}",
        signed_headers.join(";"),
        hex::encode(Sha256::digest(body))
    );
    let string_to_sign =
        format!("{ALGORITHM}\n{timestamp}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())));
    match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(string_to_sign.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes a key of any length.
        Err(_) => String::new(),
    }
}

/// A refusal by the server's own limits (408, 413) in Zenlayer's error shape, with its status.
pub(crate) fn limit_error(status: StatusCode, message: &str, headers: &HeaderMap) -> Response {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "REQUEST_TOO_LARGE" } else { "REQUEST_TIMEOUT" };
    let body = serde_json::json!({"requestId": super::request_id(headers), "code": code, "message": message});
    let mut response = super::answer(status, "application/json; charset=utf-8", body.to_string());
    response.extensions_mut().insert(ErrorCodeTag(ErrorCode::InvalidArgument));
    response
}

/// `POST /api/v2/zbc`.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: axum::http::Uri,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Over HTTP/2 (HTTPS, ALPN h2) the host is the `:authority`, not a `Host` header; the
    // signature covers it either way.
    if !headers.contains_key(axum::http::header::HOST) {
        if let Some(authority) = uri.authority().and_then(|authority| authority.as_str().parse().ok()) {
            headers.insert(axum::http::header::HOST, authority);
        }
    }
    let request_id = super::request_id(&headers);
    match serve(&state, &method, &headers, &body, &request_id).await {
        Ok(body) => super::answer(StatusCode::OK, "application/json; charset=utf-8", body),
        Err(error) => {
            let body = serde_json::json!({"requestId": request_id, "code": error.code, "message": error.message});
            let mut response = super::answer(error.status, "application/json; charset=utf-8", body.to_string());
            // The error is already in Zenlayer's shape: the router must not rewrite it.
            let code = if error.status.is_server_error() { ErrorCode::Storage } else { ErrorCode::InvalidArgument };
            response.extensions_mut().insert(ErrorCodeTag(code));
            response.into_response()
        }
    }
}

async fn serve(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Result<String, ZenError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    match header("x-zc-action") {
        Some(ACTION) => {}
        Some(other) => {
            return Err(ZenError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_ACTION",
                format!("{other:?} is not an action of zbc here; use {ACTION}"),
            ))
        }
        None => return Err(ZenError::new(StatusCode::BAD_REQUEST, "MISSING_ACTION", "X-ZC-Action is required")),
    }
    authenticate(state, method, headers, body)?;
    let text = std::str::from_utf8(body).map_err(|_| ZenError::parameter("the body is not UTF-8"))?;
    let object = Object::parse(if text.trim().is_empty() { "{}" } else { text })?;
    let query = Query::read(&object)?;
    let (total, records) = history(state, &query).await?;
    // Serialized straight from typed structs: through `json!` (a `Value`) each amount's
    // `RawValue` would be parsed again into an f64, and `100.00` come out as `100.0`.
    let document = Answer { request_id, response: Page { request_id, total_count: total, data_set: records } };
    serde_json::to_string(&document).map_err(|error| {
        ZenError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", format!("rendering the answer: {error}"))
    })
}

/// `{"requestId", "response": {...}}`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    request_id: &'a str,
    response: Page<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Page<'a> {
    request_id: &'a str,
    total_count: u64,
    data_set: Vec<Record>,
}

/// Authorization, access key, signature, time and replay, scope: in that order.
fn authenticate(state: &AppState, method: &Method, headers: &HeaderMap, body: &[u8]) -> Result<(), ZenError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    let invalid = |why: &str| ZenError::auth("INVALID_AUTHORIZATION", format!("Authorization: {why}"));
    let authorization = header("authorization").ok_or_else(|| invalid("required"))?;
    let (algorithm, rest) = authorization
        .split_once(' ')
        .ok_or_else(|| invalid("expected ZC2-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"))?;
    if algorithm != ALGORITHM || header("x-zc-signature-method").is_some_and(|method| method != ALGORITHM) {
        return Err(invalid("the only signature method is ZC2-HMAC-SHA256"));
    }
    let part = |name: &str| {
        rest.split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim())
    };
    let (credential, signed, given) = match (part("Credential"), part("SignedHeaders"), part("Signature")) {
        (Some(credential), Some(signed), Some(given)) => (credential, signed, given),
        _ => return Err(invalid("Credential, SignedHeaders and Signature are all required")),
    };
    let names: Vec<String> = signed.split(';').map(|name| name.trim().to_ascii_lowercase()).collect();
    if let Some(missing) = SIGNED_HEADERS_REQUIRED.iter().find(|required| !names.iter().any(|name| name == *required)) {
        return Err(invalid(&format!("SignedHeaders must include {missing}")));
    }
    let mut signed_headers = Vec::with_capacity(names.len());
    for name in &names {
        let value = header(name).ok_or_else(|| invalid(&format!("the signed header {name} is not in the request")))?;
        signed_headers.push((name.as_str(), value));
    }
    let timestamp =
        header("x-zc-timestamp").ok_or_else(|| ZenError::auth("INVALID_TIMESTAMP", "X-ZC-Timestamp is required"))?;
    let keys = state.keys().current();
    let app = keys
        .app(Dialect::Zenlayer, credential)
        .ok_or_else(|| ZenError::auth("INVALID_ACCESS_KEY", "the access key id is unknown or revoked"))?;
    let computed = signature(&app.secret, method.as_str(), &signed_headers, body, timestamp);
    if !super::same_signature(&computed, given) {
        return Err(ZenError::auth(
            "SIGNATURE_FAILURE",
            "the signature does not match the request and the access key's secret",
        ));
    }
    let signed_at: i64 = timestamp
        .parse()
        .map_err(|_| ZenError::auth("INVALID_TIMESTAMP", "X-ZC-Timestamp must be the seconds since the epoch"))?;
    state
        .replay()
        .check(Dialect::Zenlayer, credential, &computed, signed_at.saturating_mul(1000), ReplayGuard::now_ms())
        .map_err(|error| match error {
            ReplayError::Skewed { .. } => ZenError::auth("SIGNATURE_EXPIRED", error.to_string()),
            ReplayError::Replayed => ZenError::auth("REQUEST_REPLAYED", error.to_string()),
            ReplayError::Full => {
                ZenError::new(StatusCode::SERVICE_UNAVAILABLE, "REQUEST_LIMIT_EXCEEDED", error.to_string())
            }
        })?;
    if app.scope < Scope::Read {
        return Err(ZenError::new(StatusCode::FORBIDDEN, "UNAUTHORIZED_OPERATION", "the access key may not read"));
    }
    Ok(())
}

/// `DescribeRechargeRefundHistory`'s input.
struct Query {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    page_num: u64,
    page_size: u64,
    /// Whether the `state` filter lets PAY_SUCCESS through (every purse flow is settled).
    settled: bool,
}

impl Query {
    fn read(object: &Object) -> Result<Query, ZenError> {
        object.only(&["startTime", "endTime", "pageSize", "pageNum", "state"])?;
        let time = |key: &str| -> Result<Option<Timestamp>, ZenError> {
            object
                .text(key)?
                .map(|text| {
                    chrono::DateTime::parse_from_rfc3339(&text).map(|time| Timestamp(time.timestamp())).map_err(|_| {
                        ZenError::parameter(format!("{key}: {text:?} is not a time like 2023-08-15T09:47:01Z"))
                    })
                })
                .transpose()
        };
        let number =
            |key: &str, default: u64| -> Result<u64, ZenError> {
                match object.text(key)? {
                    None => Ok(default),
                    Some(text) => text.parse::<u64>().ok().filter(|value| *value >= 1).ok_or_else(|| {
                        ZenError::parameter(format!("{key}: {text:?} is not a whole number of at least 1"))
                    }),
                }
            };
        let page_size = number("pageSize", PAGE_SIZE_DEFAULT)?;
        if page_size > PAGE_SIZE_MAX {
            return Err(ZenError::parameter(format!("pageSize: {page_size} is above the maximum, {PAGE_SIZE_MAX}")));
        }
        let states = object.list("state")?;
        if let Some(unknown) =
            states.iter().find(|state| !matches!(state.as_str(), "PAYING" | "PAY_FAILED" | "PAY_SUCCESS"))
        {
            return Err(ZenError::parameter(format!("state: {unknown:?} is not PAYING, PAY_FAILED or PAY_SUCCESS")));
        }
        let (start, end) = (time("startTime")?, time("endTime")?);
        if let (Some(start), Some(end)) = (start, end) {
            if start > end {
                return Err(ZenError::parameter("startTime is after endTime"));
            }
        }
        Ok(Query {
            start,
            end,
            page_num: number("pageNum", 1)?,
            page_size,
            settled: states.is_empty() || states.iter().any(|state| state == "PAY_SUCCESS"),
        })
    }
}

/// One record of the history.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    transaction_type: &'static str,
    amount: Box<RawValue>,
    payment_method: String,
    state: &'static str,
    transaction_time: String,
    account_uid: String,
    transaction_id: String,
}

/// Pages of the log (each at most 4,096 entries, read on the writer between batches) one query
/// may scan: about a million entries. `totalCount` needs the whole window counted, and an
/// unbounded window on a long log would have one poller take turns with every write for as
/// long as it likes.
const SCAN_PAGES_MAX: u32 = 256;

/// Every record in the window, counted, and the page asked for: the log streamed in order, a
/// page of it in memory at a time.
async fn history(state: &AppState, query: &Query) -> Result<(u64, Vec<Record>), ZenError> {
    if !query.settled {
        return Ok((0, Vec::new()));
    }
    let scale = state.units().scale;
    let filter =
        ExportFilter { flow_types: Vec::new(), start_time: query.start, end_time: query.end, through_sequence: None };
    let mut stream = state.ledger().export(filter).await?;
    let skip = (query.page_num - 1).saturating_mul(query.page_size);
    let mut total = 0u64;
    let mut records = Vec::new();
    let mut pages = 0u32;
    while let Some(flows) = stream.next_page().await? {
        pages += 1;
        if pages > SCAN_PAGES_MAX {
            return Err(ZenError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER",
                "the time window spans more of the log than one query may scan (about 1,000,000 entries): narrow startTime and endTime",
            ));
        }
        for flow in &flows {
            for (kind, amount, suffix) in transactions(flow) {
                if total >= skip && (records.len() as u64) < query.page_size {
                    records.push(record(flow, kind, amount, suffix, scale));
                }
                total += 1;
            }
        }
    }
    Ok((total, records))
}

/// What a flow is in Zenlayer's terms: (transactionType, amount, transactionId suffix), one
/// balance (Zenlayer keeps no bucket split), amounts positive. A CAPTURE is the hold given up
/// (`ORDER_UNFROZEN`, id `<flow_id>-unfrozen`) and then the spending (`DEDUCTION`).
fn transactions(flow: &Flow) -> Vec<(&'static str, Amount, &'static str)> {
    let total = flow.affected.total().unwrap_or(Amount::ZERO);
    let held = flow.held.total().unwrap_or(Amount::ZERO);
    let magnitude = |amount: Amount| amount.checked_neg().filter(|_| amount.is_negative()).unwrap_or(amount);
    let list = match flow.flow_type {
        FlowType::Charge | FlowType::Import | FlowType::TransferIn => vec![("RECHARGE", total, "")],
        FlowType::Uncharge => vec![("REFUND", magnitude(total), "")],
        FlowType::Deduct | FlowType::TransferOut | FlowType::Expire | FlowType::Clear => {
            vec![("DEDUCTION", magnitude(total), "")]
        }
        FlowType::Undeduct => vec![("ORDER_REFUND", total, "")],
        FlowType::Adjust if total.is_positive() => vec![("DERATE", total, "")],
        FlowType::Adjust => vec![("DEDUCTION", magnitude(total), "")],
        FlowType::Hold => vec![("ORDER_FROZEN", held, "")],
        FlowType::Release => vec![("ORDER_UNFROZEN", magnitude(held), "")],
        FlowType::Capture => {
            vec![("ORDER_UNFROZEN", magnitude(held), "-unfrozen"), ("DEDUCTION", magnitude(total), "")]
        }
        FlowType::Freeze | FlowType::Unfreeze | FlowType::Close => Vec::new(),
    };
    list.into_iter().filter(|(_, amount, _)| amount.is_positive()).collect()
}

fn record(flow: &Flow, kind: &'static str, amount: Amount, suffix: &str, scale: Scale) -> Record {
    let time = chrono::DateTime::from_timestamp(flow.order_time.0, 0)
        .map_or_else(String::new, |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    Record {
        transaction_type: kind,
        amount: super::json_number(amount.format(scale)),
        payment_method: payment_method(flow.ext_info.as_deref()).unwrap_or_else(|| "BALANCE".to_owned()),
        state: "PAY_SUCCESS",
        transaction_time: time,
        account_uid: flow.account_id.clone(),
        transaction_id: format!("{}{suffix}", flow.flow_id),
    }
}

/// `payment_method` (what purse-ingest keeps) of a flow's ext_info, if any.
fn payment_method(ext_info: Option<&str>) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(ext_info?).ok()?;
    ["payment_method", "paymentMethod"]
        .iter()
        .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str).map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_follows_the_sdk() {
        // The canonical request and string to sign, built by hand as the SDK builds them.
        let body = br#"{"pageSize":10}"#;
        let canonical = format!(
            "POST\n/\n\ncontent-type:application/json\nhost:console.zenlayer.com\n\ncontent-type;host\n{}",
            hex::encode(Sha256::digest(body))
        );
        let to_sign = format!("ZC2-HMAC-SHA256\n1700000000\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
        mac.update(to_sign.as_bytes());
        let expect = hex::encode(mac.finalize().into_bytes());
        let headers = [("content-type", "application/json"), ("host", "console.zenlayer.com")];
        assert_eq!(signature("secret", "POST", &headers, body, "1700000000"), expect);
    }

    #[test]
    fn captures_are_two_transactions() {
        let mut flow = Flow {
            flow_id: 7,
            flow_type: FlowType::Capture,
            request_id: "r".into(),
            outer_order_id: "o".into(),
            account_id: "a".into(),
            card_id: None,
            brand_id: None,
            shop_id: None,
            operator_id: None,
            source_order_id: Some("h".into()),
            order_time: Timestamp(0),
            before: purse_core::Buckets::from_minor(1000, 0, 0),
            affected: purse_core::Buckets::from_minor(-300, 0, 0),
            held: purse_core::Buckets::from_minor(-500, 0, 0),
            expire_time: None,
            counterparty: None,
            lots: Vec::new(),
            remark: None,
            ext_info: None,
            source: None,
        };
        let kinds = |flow: &Flow| {
            transactions(flow).iter().map(|(kind, amount, _)| format!("{kind} {}", amount.minor())).collect::<Vec<_>>()
        };
        assert_eq!(kinds(&flow), ["ORDER_UNFROZEN 500", "DEDUCTION 300"]);
        flow.flow_type = FlowType::Freeze;
        assert!(kinds(&flow).is_empty());
    }
}
