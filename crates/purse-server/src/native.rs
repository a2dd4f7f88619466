//! The native API: one route per command of spec §7, under `/v1/`.
//!
//! - writes: `POST /v1/<command>` (charge, deduct, undeduct, uncharge, import, adjust, hold,
//!   capture, release, freeze, unfreeze, close, transfer, clear, expire) with a JSON object of
//!   the command's fields, named as in the spec (`{"request_id", "outer_order_id",
//!   "account_id", "real_value": "100.00", …}`); the answer is the flow detail of spec §5
//!   (`transfer`: `{"out", "in"}`; `expire`: `{"flows"}`). Scope `write`.
//! - queries: `GET /v1/<command>?field=value…` (flow, account, flows, accounts, statement,
//!   liability, rules, export) with the same fields as query parameters; a repeatable field
//!   (`flow_type`) is repeated. `export` streams JSON lines or CSV. Scope `read`.
//! - `PUT /v1/rules[?brand_id=B]` with a rules document (spec §4), `POST /v1/verify`,
//!   `POST /v1/snapshot`: scope `admin`.
//!
//! `Idempotency-Key` (the IETF httpapi draft's header) is the `request_id` when the body has
//! none; both present and different is a 400. A replay answers the first answer again, byte
//! for byte.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use purse_core::{Action, RuleSet};
use purse_ledger::Ledger;
use purse_wire::args::{
    AccountArgs, AccountsArgs, AdjustArgs, CaptureArgs, ChargeArgs, ClearArgs, DeductArgs, ExpireArgs, ExportArgs,
    ExportFormat, FlowArgs, FlowsArgs, HoldArgs, ImportArgs, LiabilityArgs, ReleaseArgs, RulesGetArgs, StatementArgs,
    StatusArgs, TransferArgs, UnchargeArgs, UndeductArgs,
};
use purse_wire::command::{self, ToCommand};
use purse_wire::render::{
    AccountJson, AccountPageJson, FlowJson, FlowPageJson, LiabilityJson, RulesJson, StatementJson, SweepJson,
    TransferJson, VerifyJson,
};
use serde::Serialize;

use crate::error::ApiError;
use crate::fields::{body_pairs, query_pairs, Definition};
use crate::{AppState, Scope};

/// The clap definition of every native route, built once at start.
#[derive(Debug)]
pub struct Definitions {
    by_name: HashMap<&'static str, Definition>,
}

/// Every write route: (name, what it does).
pub const WRITES: [(&str, &str); 15] = [
    ("charge", "Recharge: add to REAL, GIFT and PRE (spec §2)."),
    ("deduct", "Consume value: PRE first, then REAL and GIFT by the brand's deduction order."),
    ("undeduct", "Refund part or all of one DEDUCT or CAPTURE (outer_order_id is the refunded order's)."),
    ("uncharge", "Reverse one CHARGE exactly."),
    ("import", "Migrate an opening balance from another system."),
    ("adjust", "Operator correction with signed amounts; remark is required."),
    ("hold", "Reserve value for a purchase not yet final (spec §8)."),
    ("capture", "Close a hold and spend value of it."),
    ("release", "Close a hold without spending it."),
    ("freeze", "Block the account (spec §9); remark is required."),
    ("unfreeze", "Unblock a frozen account; remark is required."),
    ("close", "Close the account for good; remark is required."),
    ("transfer", "Move value to another account, bucket for bucket (spec §10)."),
    ("clear", "Take all that is available in GIFT, PRE or both (spec §11)."),
    ("expire", "The expiry sweep at now (spec §11)."),
];

/// Every query route: (name, what it answers).
pub const QUERIES: [(&str, &str); 8] = [
    ("flow", "One flow by flow_id or outer_order_id."),
    ("account", "One account (by account_id or card_id), now or as of a flow id or time (spec §12)."),
    ("flows", "One account's flows, oldest first, filtered and paged."),
    ("accounts", "Accounts ordered by id, filtered by brand and status, paged."),
    ("statement", "One account's opening and closing balance over [start_time, end_time)."),
    ("liability", "What the ledger owes, in all and by brand, now or at a time."),
    ("rules", "The rules in force for a brand (or the ledger default)."),
    ("export", "Every flow in log order as JSON lines (format=jsonl) or CSV (format=csv), streamed."),
];

impl Default for Definitions {
    fn default() -> Definitions {
        Definitions::new()
    }
}

impl Definitions {
    pub fn new() -> Definitions {
        let mut by_name = HashMap::new();
        let mut add = |name: &'static str, definition: Definition| {
            by_name.insert(name, definition);
        };
        add("charge", Definition::of::<ChargeArgs>("charge"));
        add("deduct", Definition::of::<DeductArgs>("deduct"));
        add("undeduct", Definition::of::<UndeductArgs>("undeduct"));
        add("uncharge", Definition::of::<UnchargeArgs>("uncharge"));
        add("import", Definition::of::<ImportArgs>("import"));
        add("adjust", Definition::of::<AdjustArgs>("adjust"));
        add("hold", Definition::of::<HoldArgs>("hold"));
        add("capture", Definition::of::<CaptureArgs>("capture"));
        add("release", Definition::of::<ReleaseArgs>("release"));
        add("freeze", Definition::of::<StatusArgs>("freeze"));
        add("unfreeze", Definition::of::<StatusArgs>("unfreeze"));
        add("close", Definition::of::<StatusArgs>("close"));
        add("transfer", Definition::of::<TransferArgs>("transfer"));
        add("clear", Definition::of::<ClearArgs>("clear"));
        add("expire", Definition::of::<ExpireArgs>("expire"));
        add("flow", Definition::of::<FlowArgs>("flow"));
        add("account", Definition::of::<AccountArgs>("account"));
        add("flows", Definition::of::<FlowsArgs>("flows"));
        add("accounts", Definition::of::<AccountsArgs>("accounts"));
        add("statement", Definition::of::<StatementArgs>("statement"));
        add("liability", Definition::of::<LiabilityArgs>("liability"));
        add("rules", Definition::of::<RulesGetArgs>("rules"));
        add("export", Definition::of::<ExportArgs>("export"));
        Definitions { by_name }
    }

    pub fn get(&self, name: &str) -> &Definition {
        // Every name routed here is in the table above: `routes` only routes those.
        self.by_name.get(name).unwrap_or_else(|| unreachable!("no definition for {name}"))
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/{command}", post(write).get(query).put(put_rules))
        .route("/v1/verify", post(verify))
        .route("/v1/snapshot", post(snapshot))
        .route("/v1/stats", get(stats))
}

/// A compact JSON answer.
pub fn json<T: Serialize>(status: StatusCode, document: &T) -> Response {
    match serde_json::to_vec(document) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => ApiError::new(purse_core::ErrorCode::Storage, format!("rendering JSON: {error}")).into_response(),
    }
}

/// A JSON body needs a JSON content type (or none at all: `curl --data` users forget it,
/// but a form or a text body is a client that means something else).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::CONTENT_TYPE).map(|value| value.to_str().unwrap_or("?")) {
        None => Ok(()),
        Some(value)
            if value.split(';').next().is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json")) =>
        {
            Ok(())
        }
        Some(value) => Err(ApiError::transport(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {value:?}: send application/json"),
        )),
    }
}

/// `Idempotency-Key` as the `request_id`, unless the body names one; both, different: 400.
fn idempotency_key(headers: &HeaderMap, pairs: &mut Vec<(String, String)>) -> Result<(), ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(()) };
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key is not visible ASCII"))?
        .trim()
        // The draft's examples quote the key (a structured-field string).
        .trim_matches('"')
        .to_owned();
    match pairs.iter().find(|(id, _)| id == "request_id") {
        Some((_, request_id)) if *request_id != key => Err(ApiError::bad_request(format!(
            "Idempotency-Key {key:?} and request_id {request_id:?} differ; send one, or both the same"
        ))),
        Some(_) => Ok(()),
        None => {
            pairs.push(("request_id".to_owned(), key));
            Ok(())
        }
    }
}

async fn write(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !WRITES.iter().any(|(write, _)| *write == name) {
        return Err(not_a_route(&name, "POST"));
    }
    state.authorize(&headers, Scope::Write)?;
    require_json(&headers)?;
    let mut pairs = body_pairs(&body)?;
    if name != "expire" {
        idempotency_key(&headers, &mut pairs)?;
    }
    let definition = state.definitions().get(&name);
    let named = |error| definition.api_error(error);
    let units = state.units();
    let ledger = state.ledger();
    let command = match name.as_str() {
        "charge" => definition.parse::<ChargeArgs>(&pairs)?.to_command(units),
        "deduct" => definition.parse::<DeductArgs>(&pairs)?.to_command(units),
        "undeduct" => definition.parse::<UndeductArgs>(&pairs)?.to_command(units),
        "uncharge" => definition.parse::<UnchargeArgs>(&pairs)?.to_command(units),
        "import" => definition.parse::<ImportArgs>(&pairs)?.to_command(units),
        "adjust" => definition.parse::<AdjustArgs>(&pairs)?.to_command(units),
        "hold" => definition.parse::<HoldArgs>(&pairs)?.to_command(units),
        "capture" => definition.parse::<CaptureArgs>(&pairs)?.to_command(units),
        "release" => definition.parse::<ReleaseArgs>(&pairs)?.to_command(units),
        "clear" => definition.parse::<ClearArgs>(&pairs)?.to_command(units),
        "freeze" | "unfreeze" | "close" => {
            let action = match name.as_str() {
                "freeze" => Action::Freeze,
                "unfreeze" => Action::Unfreeze,
                _ => Action::Close,
            };
            command::status_command(&definition.parse::<StatusArgs>(&pairs)?, units, action)
        }
        "transfer" => {
            let command = definition.parse::<TransferArgs>(&pairs)?.to_command(units).map_err(named)?;
            let transfer = match state.transfer_hook() {
                Some(hook) => (hook.0)(command).await?,
                None => ledger.transfer(command).await?,
            };
            let (out, transfer_in) = (ledger.detail(&transfer.out)?, ledger.detail(&transfer.transfer_in)?);
            return Ok(json(StatusCode::OK, &TransferJson::new(&out, &transfer_in)));
        }
        _ => {
            let (now, scope) = command::sweep(&definition.parse::<ExpireArgs>(&pairs)?, units.zone).map_err(named)?;
            let flows = ledger.expire(now, scope).await?;
            let details = flows.iter().map(|flow| ledger.detail(flow)).collect::<Result<Vec<_>, _>>()?;
            return Ok(json(StatusCode::OK, &SweepJson::new(&details)));
        }
    }
    .map_err(named)?;
    let flow = ledger.submit(command).await?;
    Ok(json(StatusCode::OK, &FlowJson::new(&ledger.detail(&flow)?)))
}

fn not_a_route(name: &str, method: &str) -> ApiError {
    let (writes, queries): (Vec<&str>, Vec<&str>) =
        (WRITES.iter().map(|(name, _)| *name).collect(), QUERIES.iter().map(|(name, _)| *name).collect());
    ApiError::transport(
        StatusCode::NOT_FOUND,
        format!(
            "{method} /v1/{name} is not a route; writes (POST): {}; queries (GET): {}",
            writes.join(", "),
            queries.join(", ")
        ),
    )
}

async fn query(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !QUERIES.iter().any(|(query, _)| *query == name) {
        return Err(not_a_route(&name, "GET"));
    }
    state.authorize(&headers, Scope::Read)?;
    let pairs = query_pairs(raw.as_deref());
    let definition = state.definitions().get(&name);
    let named = |error| definition.api_error(error);
    let ledger = state.ledger();
    let units = state.units();
    match name.as_str() {
        "flow" => {
            let args: FlowArgs = definition.parse(&pairs)?;
            let flow = ledger.flow(command::flow_key(&args).map_err(named)?).await?;
            Ok(json(StatusCode::OK, &FlowJson::new(&ledger.detail(&flow)?)))
        }
        "account" => {
            let args: AccountArgs = definition.parse(&pairs)?;
            let account_id = command::account_id(ledger, &args.who).await.map_err(named)?;
            let account = match command::as_of(&args, units.zone).map_err(named)? {
                None => ledger.account(&account_id).await?,
                Some(point) => ledger.account_as_of(&account_id, point).await?,
            };
            Ok(json(StatusCode::OK, &AccountJson::new(&account, units.scale, units.zone)))
        }
        "flows" => {
            let args: FlowsArgs = definition.parse(&pairs)?;
            let page = ledger.flows(command::flow_query(&args, units.zone).map_err(named)?).await?;
            let details = page.flows.iter().map(|flow| ledger.detail(flow)).collect::<Result<Vec<_>, _>>()?;
            Ok(json(StatusCode::OK, &FlowPageJson::new(&page, &details)))
        }
        "accounts" => {
            let args: AccountsArgs = definition.parse(&pairs)?;
            let page = ledger.accounts(command::account_query(&args).map_err(named)?).await?;
            Ok(json(StatusCode::OK, &AccountPageJson::new(&page, units.scale, units.zone)))
        }
        "statement" => {
            let args: StatementArgs = definition.parse(&pairs)?;
            let (start, end) = command::statement_window(&args, units.zone).map_err(named)?;
            let statement = ledger.statement(&args.account_id, start, end).await?;
            Ok(json(StatusCode::OK, &StatementJson::new(&statement, units.scale, units.zone)))
        }
        "liability" => {
            let args: LiabilityArgs = definition.parse(&pairs)?;
            let liability = ledger.liability(command::liability_at(&args, units.zone).map_err(named)?).await?;
            Ok(json(StatusCode::OK, &LiabilityJson::new(&liability, units.scale, units.zone)))
        }
        "rules" => {
            let args: RulesGetArgs = definition.parse(&pairs)?;
            let rules = ledger.rules(args.brand_id).await?;
            Ok(json(StatusCode::OK, &RulesJson::new(&rules, units.scale)))
        }
        _ => {
            let args: ExportArgs = definition.parse(&pairs)?;
            let filter = command::export_filter(&args, units.zone).map_err(named)?;
            export(ledger.clone(), filter, args.format).await
        }
    }
}

/// `GET /v1/export`: the export streamed a page of the log at a time, so memory holds one
/// page, never the log. A failure part way ends the stream early (the client sees a body cut
/// short, not a complete-looking one: HTTP/1.1 chunked encoding ends without its last chunk).
async fn export(
    ledger: Ledger,
    filter: purse_ledger::ExportFilter,
    format: ExportFormat,
) -> Result<Response, ApiError> {
    let stream = ledger.export(filter).await?;
    let header_row = if format == ExportFormat::Csv {
        let mut row = Vec::new();
        purse_wire::export::csv_row(&mut row, purse_wire::export::CSV_HEADER.iter().map(|name| Some(*name)))
            .map_err(|error| ApiError::new(purse_core::ErrorCode::Storage, error.to_string()))?;
        Some(Bytes::from(row))
    } else {
        None
    };
    let pages = futures_util::stream::unfold(
        (ledger, stream, header_row),
        move |(ledger, mut stream, header_row)| async move {
            if let Some(row) = header_row {
                return Some((Ok::<Bytes, std::io::Error>(row), (ledger, stream, None)));
            }
            let flows = match stream.next_page().await {
                Ok(Some(flows)) => flows,
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(target: "purse::export", %error, "export stopped part way");
                    return Some((Err(std::io::Error::other(error.to_string())), (ledger, stream, None)));
                }
            };
            let mut chunk = Vec::new();
            for flow in &flows {
                let written =
                    ledger.detail(flow).map_err(|error| std::io::Error::other(error.to_string())).and_then(|detail| {
                        match format {
                            ExportFormat::Jsonl => purse_wire::export::json_line(&mut chunk, &detail),
                            ExportFormat::Csv => {
                                purse_wire::export::csv_row(&mut chunk, purse_wire::export::csv_fields(&detail))
                            }
                        }
                    });
                if let Err(error) = written {
                    return Some((Err(error), (ledger, stream, None)));
                }
            }
            Some((Ok(Bytes::from(chunk)), (ledger, stream, None)))
        },
    );
    let content_type = match format {
        ExportFormat::Jsonl => "application/x-ndjson",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    };
    let mut response = Body::from_stream(pages).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

async fn put_rules(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if name != "rules" {
        return Err(not_a_route(&name, "PUT"));
    }
    state.authorize(&headers, Scope::Admin)?;
    require_json(&headers)?;
    let args: RulesGetArgs = state.definitions().get("rules").parse(&query_pairs(raw.as_deref()))?;
    let text =
        std::str::from_utf8(&body).map_err(|error| ApiError::bad_request(format!("the body is not UTF-8: {error}")))?;
    let units = state.units();
    let rules = RuleSet::from_text(&purse_wire::rules_file::parse(text)?, units.scale)?;
    let rules = state.ledger().set_rules(args.brand_id, rules).await?;
    Ok(json(StatusCode::OK, &RulesJson::new(&rules, units.scale)))
}

async fn verify(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Admin)?;
    let report = state.ledger().verify().await?;
    Ok(json(StatusCode::OK, &VerifyJson::new(&report)))
}

async fn snapshot(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Admin)?;
    let snapshot = state.ledger().snapshot().await?;
    Ok(json(StatusCode::OK, &serde_json::json!({ "sequence": snapshot.sequence, "bytes": snapshot.bytes })))
}

async fn stats(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let stats = state.ledger().stats().await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "batches": stats.batches,
            "requests": stats.requests,
            "entries_written": stats.entries_written,
            "batch_requests_max": stats.batch_requests_max,
            "batches_pipelined": stats.batches_pipelined,
            "queue_depth": state.ledger().queue_depth(),
        }),
    ))
}
