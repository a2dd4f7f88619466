//! `purse bench --http URL`: the in-process run's workload ([`super::workload`], the very same
//! callers and commands) sent to a `purse serve` over its native API, so that the two reports
//! can be put side by side.
//!
//! Each caller owns one keep-alive HTTP/1.1 connection (`hyper::client::conn::http1`) and
//! sends its next request when its last one is answered: `--connections` concurrent clients, on
//! a multi-threaded runtime of its own. Every `purse_core::Command` becomes its route and JSON
//! body by [`native_request`], amounts as decimal text at the server's scale.
//!
//! The run, in order:
//!
//! 1. ask the server for its scale (`GET /v1/liability`: its totals are written at the scale),
//!    set the bench's default rules (`PUT /v1/rules`, when the key's scope is admin);
//! 2. read every bench account's balance (`GET /v1/account`, absent is zero): the baseline, so
//!    that a server that already holds flows is measured too;
//! 3. open every account with one CHARGE of 100.00 (not timed), then the timed run;
//! 4. the self-check: every account's balance less its baseline equals the sum of the
//!    `affected` of every accepted flow (per bucket, held value too), every retry came back as
//!    its first flow, no answer was malformed or refused as malformed (`INVALID_ARGUMENT`), no
//!    `STORAGE` or `CORRUPTION`; with an admin key, `POST /v1/verify` passes and counts the
//!    accepted flows more than before.
//!
//! Every request id and order id carries the run's tag (`workload.run_tag`), so that a second
//! run against the same server sends new requests, not retries of the first run's.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use purse_core::{Action, Amount, Command, ErrorCode, FlowDetail, FlowType, Property, Scale, Zone};
use purse_wire::command::Units;
use purse_wire::error::WireError;
use serde::Deserialize;
use serde_json::{json, Value};

use super::measure::{peak_rss_bytes, MachineCpu, ThreadCpu};
use super::workload::{account_id, opening, Accounts, Answered, Caller, Kind, Plan, Refusal, Tally};
use super::{add, decimal, micros, run_section, BenchArgs, Check, Distribution, Percentiles};

/// Connections when `--connections` is not given: one per caller of the in-process default.
pub const CONNECTIONS_DEFAULT: u32 = 1024;
/// Times a request is sent again, on a new connection, after its connection failed. Writes are
/// idempotent by `request_id`: a resent write that had been applied answers its first flow.
const RESENDS: u32 = 3;
/// Connections opened at once while connecting: below the listen backlog of a server that
/// keeps the usual 128, so that no SYN waits a second to be tried again.
const CONNECTING_AT_ONCE: usize = 100;
/// Malformed answers and transport failures kept word for word (with the count of all).
const FAULTS_KEPT: usize = 8;

/// Runs the HTTP bench against `url` on a multi-threaded runtime of its own (the command line
/// runs on one thread): the report, and the error to end with if the self-check failed.
pub async fn bench(
    args: &BenchArgs,
    url: &str,
    scale: Option<Scale>,
    zone: Option<Zone>,
) -> Result<(Value, Option<WireError>), WireError> {
    let key = args.api_key.clone().filter(|key| !key.trim().is_empty()).ok_or_else(|| {
        WireError::invalid_argument(
            "bench --http needs an API key of scope write (admin also sets the rules and verifies): \
             --api-key KEY or PURSE_API_KEY; make one with purse --data DIR keys add --scope write",
        )
    })?;
    let target = Arc::new(Target::parse(url, key.trim())?);
    let settings = Settings {
        accounts: args.accounts,
        flows: args.flows,
        connections: args.connections.unwrap_or(CONNECTIONS_DEFAULT),
        mix: args.mix,
        distribution: args.distribution,
        replay_ppm: args.replay_ratio,
        seed: args.seed,
    };
    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("purse-bench-http".into())
        .spawn(move || {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("purse-bench-client").build();
            let result = match runtime {
                Ok(runtime) => runtime.block_on(drive(settings, target, scale, zone.unwrap_or_default())),
                Err(io) => Err(WireError::System(format!("starting the client's runtime: {io}"))),
            };
            let _ = done.send(result);
        })
        .map_err(|io| WireError::System(format!("starting the client's thread: {io}")))?;
    outcome.await.map_err(|_| WireError::System("the HTTP bench's thread ended without a report".into()))?
}

/// What the run needs of the command line.
#[derive(Debug, Clone)]
struct Settings {
    accounts: u32,
    flows: u64,
    connections: u32,
    mix: super::workload::Mix,
    distribution: Distribution,
    replay_ppm: u64,
    seed: u64,
}

async fn drive(
    settings: Settings,
    target: Arc<Target>,
    scale_given: Option<Scale>,
    zone: Zone,
) -> Result<(Value, Option<WireError>), WireError> {
    let failed =
        |what: &str, error: String| WireError::System(format!("purse bench --http {}: {what}: {error}", target.url));
    let mut first = Client::connect(target.clone()).await.map_err(|error| failed("connecting", error))?;
    let scale = match server_scale(&mut first).await.map_err(|error| failed("reading the server's scale", error))? {
        Ok(scale) => scale,
        Err(refused) => return Err(refused_key(&target, &refused)),
    };
    if let Some(given) = scale_given.filter(|given| *given != scale) {
        return Err(WireError::invalid_argument(format!(
            "--scale {} is not the server's scale ({}): leave it out, the bench asks the server",
            given.decimals(),
            scale.decimals()
        )));
    }
    let units = Units { scale, zone };
    let rules = set_rules(&mut first).await.map_err(|error| failed("setting the rules", error))?;
    let verified_before = verify(&mut first).await.map_err(|error| failed("verifying before the run", error))?;
    let stats_before = stats(&mut first).await.map_err(|error| failed("reading /v1/stats", error))?;

    let account_count = u64::from(settings.accounts);
    let plan = Arc::new(Plan {
        scale,
        account_ids: (0..settings.accounts as usize).map(account_id).collect(),
        accounts: match settings.distribution {
            Distribution::Uniform => Accounts::uniform(account_count),
            Distribution::Zipf => Accounts::zipf(account_count),
        },
        mix: settings.mix,
        replay_ppm: settings.replay_ppm,
        seed: settings.seed,
    });
    let shared = Arc::new(Shared { plan: plan.clone(), units, tag: run_tag() });

    let wanted = u64::from(settings.connections).min(settings.flows.max(account_count));
    let connect_started = Instant::now();
    let clients = connect_all(first, usize::try_from(wanted).unwrap_or(usize::MAX))
        .await
        .map_err(|error| failed("connecting", error))?;
    let connect_micros = micros(connect_started);

    // The baseline, then the setup: neither timed.
    let (clients, baseline) = balance_sum(clients, &shared).await?;
    let setup_started = Instant::now();
    let (clients, openings) = each(clients, |number, count, mut client| {
        let shared = shared.clone();
        async move {
            let mut tally = Tally::default();
            for index in (number..shared.plan.account_ids.len()).step_by(count) {
                let command = opening(&shared.plan, index);
                if let Some(answer) = client.write(&shared, &command, None).await {
                    tally.take_opening(&shared.plan, index, answer);
                }
            }
            (client, tally)
        }
    })
    .await?;
    let setup_micros = micros(setup_started);
    if let Some(refused) = clients.iter().find_map(|client| client.refused_key.as_ref()) {
        return Err(refused_key(&target, refused));
    }
    let mut setup = Tally::default();
    for tally in openings {
        setup.merge(tally);
    }
    let setup_http = HttpCounts::sum(&clients);

    // The timed run.
    let callers = u64::from(settings.connections).min(settings.flows);
    let cpu_before = ThreadCpu::now();
    let machine_before = MachineCpu::now();
    let started = Instant::now();
    let (clients, tallies) = each(clients, |number, _, mut client| {
        let shared = shared.clone();
        let number = number as u64;
        let flows = settings.flows;
        async move {
            if number >= callers {
                return (client, Tally::default());
            }
            let requests = flows / callers + u64::from(number < flows % callers);
            let mut caller = Caller::new(shared.plan.clone(), number, requests, 1);
            for _ in 0..caller.requests() {
                let (command, expected) = caller.next();
                let mut started = None;
                if let Some(answer) = client.write(&shared, &command, Some(&mut started)).await {
                    if let Some(started) = started {
                        caller.record_latency(started);
                    }
                    caller.take(expected, answer);
                }
            }
            (client, caller.into_tally())
        }
    })
    .await?;
    let run_micros = micros(started).max(1);
    let cpu = ThreadCpu::now().since(&cpu_before);
    let foreign_run = MachineCpu::now().foreign_since(&machine_before);
    let mut tally = Tally::default();
    for part in tallies {
        tally.merge(part);
    }
    let all_http = HttpCounts::sum(&clients);
    let http = all_http.since(&setup_http);

    // The self-check, through the API.
    let mut check = Check::default();
    check.faults(&setup);
    check.faults(&tally);
    if let Some(refused) = clients.iter().find_map(|client| client.refused_key.as_ref()) {
        // A key revoked (or narrowed) during the run: its requests were dropped, not answered.
        check.fail(format!("the key was refused during the timed run: {refused}"));
    }
    if all_http.fault_count > 0 {
        check.fail(format!(
            "{} answers were malformed, refused as malformed or never came, among them: {}",
            all_http.fault_count,
            all_http.faults.join("; ")
        ));
    }
    let mut clients = clients;
    // `connect_all` starts with the first connection: there is always one.
    let stats_after = stats(&mut clients[0]).await;
    let (mut clients, balances) = balance_sum(clients, &shared).await?;
    let expected = add(setup.effect, tally.effect);
    let expected_held = add(setup.held, tally.held);
    let (baseline_sum, baseline_held) = match baseline {
        Ok(sums) => sums,
        Err(message) => {
            check.fail(format!("before the setup: {message}"));
            ([0; 3], [0; 3])
        }
    };
    let balances = balances.map(|(sum, held)| (sub(sum, baseline_sum), sub(held, baseline_held)));
    check.balances("after the run (less the balances before the setup)", expected, expected_held, &balances);
    let accepted = setup.accepted_total() + tally.accepted_total();
    let verify_started = Instant::now();
    let verified_after = verify(&mut clients[0]).await;
    let verify_micros = micros(verify_started);
    let verify_report = match (&verified_before, &verified_after) {
        (Some(before), Ok(Some(after))) => {
            if after.flows - before.flows != accepted {
                check.fail(format!(
                    "verify counts {} flows more than before the run, the callers had {accepted} accepted",
                    after.flows - before.flows
                ));
            }
            json!({ "flows_before": before.flows, "flows_after": after.flows, "entries": after.entries, "verify_ms": verify_micros / 1000 })
        }
        (_, Err(error)) => {
            check.fail(format!("verify failed: {error}"));
            Value::Null
        }
        _ => json!("not run: the key's scope is below admin"),
    };
    let stats_after = match stats_after {
        Ok(stats) => Some(stats),
        Err(error) => {
            check.fail(format!("reading /v1/stats after the run: {error}"));
            None
        }
    };

    let latencies = Percentiles::new(std::mem::take(&mut tally.latencies_us));
    let rejected: u64 = tally.rejected.values().sum();
    let report = json!({
        "workload": {
            "accounts": settings.accounts,
            "requests": settings.flows,
            "concurrency": callers,
            "connections": callers,
            "batch": 1,
            "mix_percent": Kind::ALL.iter().map(|kind| (kind.name().to_owned(), json!(settings.mix.0[kind.index()])))
                .collect::<serde_json::Map<_, _>>(),
            "distribution": match settings.distribution { Distribution::Uniform => "uniform", Distribution::Zipf => "zipf" },
            "replay_ratio": decimal(settings.replay_ppm, 1_000_000, 6),
            "seed": settings.seed,
            "server": target.url,
            "scale": scale.decimals(),
            "rules": rules,
            "run_tag": shared.tag,
            "durability": "every 200 after the server's ledger answered, which it does once the flow is durable (group commit)",
        },
        "setup": {
            "accounts_opened": setup.accepted_total(),
            "elapsed_ms": setup_micros / 1000,
            "connect_ms": connect_micros / 1000,
        },
        "run": run_section(&tally, rejected, settings.flows, run_micros),
        "latency_us": latencies.report(),
        "latency_of": "one HTTP request, from handing it to its keep-alive connection to its whole answer read (the JSON body built before, parsed after)",
        "http": {
            "connections": callers,
            "requests": http.requests,
            "by_status": http.by_status.iter().map(|(status, count)| (status.to_string(), json!(count))).collect::<serde_json::Map<_, _>>(),
            "resent": http.resent,
            "reconnects": http.reconnects,
            "client_threads": std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
            "note": "the timed run's requests; resent: sent again on a new connection after the first one failed",
        },
        "group_commit": server_group_commit(&stats_before, stats_after.as_ref()),
        "cpu_ms": {
            "client": cpu.callers,
            "client_busy_percent": cpu.callers * 100 / (run_micros / 1000).max(1),
            "note": "CPU time (user + system, 10 ms ticks) of this process (the HTTP client) in the timed run; client_busy_percent is over the run's wall time, 100 per core",
        },
        "memory": {
            "peak_rss_bytes": peak_rss_bytes(),
            "note": "VmHWM of this process (the client), not of the server",
        },
        "machine": {
            "cpus": std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get),
            "foreign_cpu_ms_during_run": foreign_run,
            "note": "CPU time other processes used meanwhile (/proc/stat busy time less this process's): the server's, if it runs on this machine, and anything else's",
        },
        "verify": verify_report,
        "check": check.report(),
    });
    Ok((report, check.failure()))
}

/// The writer's counters (`GET /v1/stats`) over the run, as the in-process report's
/// `group_commit` (the fields the server gives).
fn server_group_commit(before: &ServerStats, after: Option<&ServerStats>) -> Value {
    let Some(after) = after else { return Value::Null };
    let batches = after.batches.saturating_sub(before.batches);
    let requests = after.requests.saturating_sub(before.requests);
    json!({
        "batches": batches,
        "batch_size_mean": decimal(requests, batches.max(1), 2),
        "batch_size_max": after.batch_requests_max,
        "entries_written": after.entries_written.saturating_sub(before.entries_written),
        "note": "the server's writer counters (GET /v1/stats) from before the setup to after the run, setup included; batch_size_max since the server started",
    })
}

/// The server refused the key itself (401, 403): no run can follow.
fn refused_key(target: &Target, refused: &HttpRefusal) -> WireError {
    WireError::invalid_argument(format!(
        "purse bench --http {}: the server refused the API key ({refused}); the bench needs a key of scope \
         write: purse --data DIR keys add --scope write",
        target.url
    ))
}

/// What every client task shares.
#[derive(Debug)]
struct Shared {
    plan: Arc<Plan>,
    units: Units,
    /// Put before every request id and order id of this run.
    tag: String,
}

/// A tag no earlier run against the same server used: the start time in microseconds.
fn run_tag() -> String {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_micros());
    format!("b{micros:x}.")
}

fn sub(a: [i128; 3], b: [i128; 3]) -> [i128; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The route (under `/v1/`) and JSON body of a write command of the native API: the fields of
/// spec §2 by their names, amounts as decimal text at `units.scale`, times as
/// "YYYY-MM-DD HH:MM:SS" in `units.zone`; what is absent is left out. Refused: the commands
/// no route takes (an ingested record, an opening balance, the sweep's own commands).
pub fn native_request(command: &Command, units: Units) -> Result<(&'static str, Value), String> {
    let amount = |amount: Amount| Value::String(amount.format(units.scale));
    let text = |text: &str| Value::String(text.to_owned());
    let mut body = serde_json::Map::new();
    let mut expiry = false;
    let route = match &command.action {
        Action::Charge { real, gift, pre, trigger_gift } => {
            body.insert("real_value".into(), amount(*real));
            if let Some(gift) = gift {
                body.insert("gift_value".into(), amount(*gift));
            }
            if !pre.is_zero() {
                body.insert("pre_value".into(), amount(*pre));
            }
            if *trigger_gift {
                body.insert("trigger_gift".into(), Value::Bool(true));
            }
            expiry = true;
            "charge"
        }
        Action::Deduct { value } => {
            body.insert("value".into(), amount(*value));
            "deduct"
        }
        Action::Undeduct { original_outer_order_id, value } => {
            // The ALSC naming: outer_order_id is the refunded order's, the refund's own is new.
            body.insert("new_outer_order_id".into(), text(&command.outer_order_id));
            body.insert("outer_order_id".into(), text(original_outer_order_id));
            if let Some(value) = value {
                body.insert("value".into(), amount(*value));
            }
            "undeduct"
        }
        Action::Uncharge { src_outer_order_id } => {
            body.insert("src_outer_order_id".into(), text(src_outer_order_id));
            "uncharge"
        }
        Action::Import { real, gift, pre } | Action::Adjust { real, gift, pre } => {
            body.insert("real_value".into(), amount(*real));
            body.insert("gift_value".into(), amount(*gift));
            body.insert("pre_value".into(), amount(*pre));
            if matches!(command.action, Action::Import { .. }) {
                expiry = true;
                "import"
            } else {
                "adjust"
            }
        }
        Action::Hold { value, expire_time } => {
            body.insert("value".into(), amount(*value));
            if let Some(time) = expire_time {
                body.insert("expire_time".into(), Value::String(units.zone.format_local(*time)));
            }
            "hold"
        }
        Action::Capture { src_outer_order_id, value } => {
            body.insert("src_outer_order_id".into(), text(src_outer_order_id));
            if let Some(value) = value {
                body.insert("value".into(), amount(*value));
            }
            "capture"
        }
        Action::Release { src_outer_order_id } => {
            body.insert("src_outer_order_id".into(), text(src_outer_order_id));
            "release"
        }
        Action::Freeze => "freeze",
        Action::Unfreeze => "unfreeze",
        Action::Close => "close",
        Action::Transfer { to_account_id, value } => {
            body.insert("to_account_id".into(), text(to_account_id));
            if let Some(value) = value {
                body.insert("value".into(), amount(*value));
            }
            "transfer"
        }
        Action::Clear { buckets } => {
            body.insert("bucket".into(), text(buckets.as_str()));
            "clear"
        }
        Action::Recorded { .. }
        | Action::Open { .. }
        | Action::Expire { .. }
        | Action::ExpireHold { .. }
        | Action::TransferHold { .. }
        | Action::TransferCredit { .. }
        | Action::TransferSettle { .. }
        | Action::TransferAbort { .. } => {
            return Err(format!("{:?} has no route of the native API", command.action));
        }
    };
    body.entry("outer_order_id").or_insert_with(|| text(&command.outer_order_id));
    body.insert("request_id".into(), text(&command.request_id));
    body.insert("account_id".into(), text(&command.account_id));
    let optional = [
        ("card_id", &command.card_id),
        ("brand_id", &command.brand_id),
        ("shop_id", &command.shop_id),
        ("operator_id", &command.operator_id),
        ("remark", &command.remark),
        ("ext_info", &command.ext_info),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            body.insert(field.into(), text(value));
        }
    }
    if let Some(time) = command.biz_date {
        body.insert("biz_date".into(), Value::String(units.zone.format_local(time)));
    }
    for (field, time) in [("gift_expire_time", command.gift_expire_time), ("pre_expire_time", command.pre_expire_time)]
    {
        match time {
            Some(time) if expiry => {
                body.insert(field.into(), Value::String(units.zone.format_local(time)));
            }
            Some(_) => return Err(format!("{route} takes no {field}")),
            None => {}
        }
    }
    Ok((route, Value::Object(body)))
}

/// `command` with `tag` before its request id, its order id and the order id it refers to.
fn tagged(mut command: Command, tag: &str) -> Command {
    let put = |id: &mut String| id.insert_str(0, tag);
    put(&mut command.request_id);
    put(&mut command.outer_order_id);
    match &mut command.action {
        Action::Undeduct { original_outer_order_id: id, .. }
        | Action::Uncharge { src_outer_order_id: id }
        | Action::Capture { src_outer_order_id: id, .. }
        | Action::Release { src_outer_order_id: id }
        | Action::ExpireHold { src_outer_order_id: id, .. } => put(id),
        _ => {}
    }
    command
}

/// The server's error object, as the workload records a refusal.
#[derive(Debug)]
struct HttpRefusal {
    status: u16,
    code: ErrorCode,
    message: String,
}

impl std::fmt::Display for HttpRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code.as_str(), self.message)
    }
}

impl Refusal for HttpRefusal {
    fn code(&self) -> ErrorCode {
        self.code
    }
}

#[derive(Deserialize)]
struct ErrorDocument {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
}

/// The refusal an error answer stands for, or why it is not one.
fn refusal(status: StatusCode, body: &[u8]) -> Result<HttpRefusal, String> {
    let document: ErrorDocument = serde_json::from_slice(body)
        .map_err(|error| format!("{status} with a body that is not an error object ({error}): {}", shown(body)))?;
    let code = ErrorCode::ALL
        .into_iter()
        .find(|code| code.as_str() == document.error.code)
        .ok_or_else(|| format!("{status} with the unknown code {:?}", document.error.code))?;
    Ok(HttpRefusal { status: status.as_u16(), code, message: document.error.message })
}

fn shown(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

/// The flow detail of spec §5 as the server writes it.
#[derive(Deserialize)]
struct FlowAnswer {
    flow_id: String,
    flow_type: String,
    account_id: String,
    card_id: Option<String>,
    brand_id: Option<String>,
    shop_id: Option<String>,
    operator: Option<String>,
    request_id: String,
    outer_order_id: String,
    order_time: String,
    order_value: String,
    current_value: String,
    affected_property_list: Vec<PropertyAnswer>,
    before_property_list: Vec<PropertyAnswer>,
    after_property_list: Vec<PropertyAnswer>,
    held_property_list: Vec<PropertyAnswer>,
    src_outer_order_id: Option<String>,
    remark: Option<String>,
    ext_info: Option<String>,
}

#[derive(Deserialize)]
struct PropertyAnswer {
    #[serde(rename = "type")]
    property: String,
    value: String,
}

/// A 200's body as the flow detail the in-process caller renders and reads back.
fn flow_detail(body: &[u8]) -> Result<FlowDetail, String> {
    let answer: FlowAnswer =
        serde_json::from_slice(body).map_err(|error| format!("a 200 that is not a flow ({error}): {}", shown(body)))?;
    let flow_type = FlowType::parse(&answer.flow_type)
        .map(FlowType::as_str)
        .ok_or_else(|| format!("flow {}: unknown flow_type {:?}", answer.flow_id, answer.flow_type))?;
    let list = |list: Vec<PropertyAnswer>| -> Result<Vec<(&'static str, String)>, String> {
        list.into_iter()
            .map(|item| {
                let name = Property::ALL.into_iter().map(Property::as_str).find(|name| *name == item.property);
                name.map(|name| (name, item.value)).ok_or_else(|| format!("unknown property {:?}", item.property))
            })
            .collect()
    };
    Ok(FlowDetail {
        flow_type,
        affected_property_list: list(answer.affected_property_list)?,
        before_property_list: list(answer.before_property_list)?,
        after_property_list: list(answer.after_property_list)?,
        held_property_list: list(answer.held_property_list)?,
        flow_id: answer.flow_id,
        account_id: answer.account_id,
        card_id: answer.card_id,
        brand_id: answer.brand_id,
        shop_id: answer.shop_id,
        operator: answer.operator,
        request_id: answer.request_id,
        outer_order_id: answer.outer_order_id,
        order_time: answer.order_time,
        order_value: answer.order_value,
        current_value: answer.current_value,
        src_outer_order_id: answer.src_outer_order_id,
        remark: answer.remark,
        ext_info: answer.ext_info,
    })
}

/// Where the server is: the address to connect to, the `Host` header, the path before `/v1`,
/// the credentials.
#[derive(Debug)]
struct Target {
    url: String,
    connect: String,
    authority: HeaderValue,
    base: String,
    bearer: HeaderValue,
}

impl Target {
    fn parse(url: &str, key: &str) -> Result<Target, WireError> {
        let wrong = |why: &str| WireError::invalid_argument(format!("--http {url:?}: {why}"));
        let uri: Uri = url.parse().map_err(|error| wrong(&format!("not a URL ({error})")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(wrong("bench --http speaks plain HTTP (loopback); serve without TLS to bench"))
            }
            _ => return Err(wrong("give the server's base URL, http://HOST:PORT")),
        }
        let authority = uri.authority().ok_or_else(|| wrong("it names no host"))?;
        let connect = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let bearer = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| WireError::invalid_argument("--api-key holds characters a header cannot"))?;
        Ok(Target {
            url: url.to_owned(),
            connect,
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|_| wrong("its host is not a header value"))?,
            base: uri.path().trim_end_matches('/').to_owned(),
            bearer,
        })
    }
}

/// What one connection's requests got, merged over all at the end.
#[derive(Debug, Default, Clone)]
struct HttpCounts {
    requests: u64,
    by_status: BTreeMap<u16, u64>,
    resent: u64,
    reconnects: u64,
    faults: Vec<String>,
    fault_count: u64,
}

impl HttpCounts {
    fn sum(clients: &[Client]) -> HttpCounts {
        let mut sum = HttpCounts::default();
        for client in clients {
            let counts = &client.counts;
            sum.requests += counts.requests;
            sum.resent += counts.resent;
            sum.reconnects += counts.reconnects;
            for (status, count) in &counts.by_status {
                *sum.by_status.entry(*status).or_default() += count;
            }
            sum.fault_count += counts.fault_count;
            sum.faults.extend(counts.faults.iter().cloned());
        }
        sum.faults.truncate(FAULTS_KEPT);
        sum
    }

    /// The counts since `before` (faults are kept whole: any fails the check).
    fn since(&self, before: &HttpCounts) -> HttpCounts {
        let mut by_status = self.by_status.clone();
        for (status, count) in &before.by_status {
            if let Some(now) = by_status.get_mut(status) {
                *now -= count;
            }
        }
        by_status.retain(|_, count| *count > 0);
        HttpCounts {
            requests: self.requests - before.requests,
            by_status,
            resent: self.resent - before.resent,
            reconnects: self.reconnects - before.reconnects,
            faults: self.faults.clone(),
            fault_count: self.fault_count,
        }
    }
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
struct Client {
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
    counts: HttpCounts,
    /// The first write refused for its key (401, 403).
    refused_key: Option<HttpRefusal>,
}

impl Client {
    async fn connect(target: Arc<Target>) -> Result<Client, String> {
        let sender = open(&target).await?;
        Ok(Client { target, sender, counts: HttpCounts::default(), refused_key: None })
    }

    fn fault(&mut self, message: String) {
        self.counts.fault_count += 1;
        if self.counts.faults.len() < FAULTS_KEPT {
            self.counts.faults.push(message);
        }
    }

    /// Sends one request and reads its whole answer; on a failed connection, sends it again on
    /// a new one ([`RESENDS`] times). `started` gets the time it was first handed over.
    async fn send(
        &mut self,
        method: &Method,
        path: &str,
        body: Bytes,
        mut started: Option<&mut Option<Instant>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut attempt = 0;
        loop {
            let result = self.attempt(method, path, body.clone(), started.as_deref_mut()).await;
            match result {
                Ok((status, answer)) => {
                    self.counts.requests += 1;
                    *self.counts.by_status.entry(status.as_u16()).or_default() += 1;
                    return Ok((status, answer));
                }
                Err(error) if attempt < RESENDS => {
                    attempt += 1;
                    self.counts.resent += 1;
                    self.sender = open(&self.target).await.map_err(|again| format!("{error}; then {again}"))?;
                    self.counts.reconnects += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(
        &mut self,
        method: &Method,
        path: &str,
        body: Bytes,
        started: Option<&mut Option<Instant>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.target.base))
            .header(HOST, self.target.authority.clone())
            .header(AUTHORIZATION, self.target.bearer.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .map_err(|error| format!("building {method} {path}: {error}"))?;
        self.sender.ready().await.map_err(|error| format!("{method} {path}: the connection failed: {error}"))?;
        if let Some(started) = started {
            started.get_or_insert_with(Instant::now);
        }
        let response = self.sender.send_request(request).await.map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("{method} {path}: reading the answer: {error}"))?
            .to_bytes();
        Ok((status, body))
    }

    /// Sends one write command of the workload; the answer as the caller records it, or `None`
    /// if it is no answer (a fault, kept here). `started`: see [`Client::send`].
    async fn write(
        &mut self,
        shared: &Shared,
        command: &Command,
        started: Option<&mut Option<Instant>>,
    ) -> Option<Result<Answered, HttpRefusal>> {
        let command = tagged(command.clone(), &shared.tag);
        let (route, body) = match native_request(&command, shared.units) {
            Ok(request) => request,
            Err(error) => {
                self.fault(error);
                return None;
            }
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let path = format!("/v1/{route}");
        let (status, answer) = match self.send(&Method::POST, &path, body, started).await {
            Ok(answer) => answer,
            Err(error) => {
                self.fault(error);
                return None;
            }
        };
        if status == StatusCode::OK {
            return match flow_detail(&answer) {
                Ok(detail) => Some(Ok(Answered::Rendered(detail))),
                Err(error) => {
                    self.fault(format!("{route} {}: {error}", command.outer_order_id));
                    None
                }
            };
        }
        match refusal(status, &answer) {
            Ok(refused) => {
                // The workload sends only well-formed commands: INVALID_ARGUMENT is a body the
                // server could not take (or a refused key, a full server), not a domain answer.
                if [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN]
                    .map(|status| status.as_u16())
                    .contains(&refused.status)
                {
                    self.refused_key.get_or_insert(refused);
                    return None;
                }
                if refused.code == ErrorCode::InvalidArgument {
                    self.fault(format!("{route} {}: {refused}", command.outer_order_id));
                }
                Some(Err(refused))
            }
            Err(error) => {
                self.fault(format!("{route} {}: {error}", command.outer_order_id));
                None
            }
        }
    }

    /// A query or admin request whose 200 body is JSON; `Ok(Err(refusal))` for an error object.
    async fn ask(&mut self, method: Method, path: &str, body: Bytes) -> Result<Result<Value, HttpRefusal>, String> {
        let (status, answer) = self.send(&method, path, body, None).await?;
        if status == StatusCode::OK {
            return serde_json::from_slice(&answer)
                .map(Ok)
                .map_err(|error| format!("{method} {path}: the answer is not JSON ({error}): {}", shown(&answer)));
        }
        refusal(status, &answer).map(Err).map_err(|error| format!("{method} {path}: {error}"))
    }
}

async fn open(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(&target.connect).await.map_err(|error| {
        let hint = if error.raw_os_error() == Some(24) { " (too many open files: raise ulimit -n)" } else { "" };
        format!("connecting to {}: {error}{hint}", target.connect)
    })?;
    stream.set_nodelay(true).map_err(|error| format!("TCP_NODELAY: {error}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("the HTTP handshake with {}: {error}", target.connect))?;
    tokio::spawn(async move {
        // Ends with the connection: an error shows in the next request on it.
        let _ = connection.await;
    });
    Ok(sender)
}

/// `first` and more connections up to `count`, [`CONNECTING_AT_ONCE`] at a time.
async fn connect_all(first: Client, count: usize) -> Result<Vec<Client>, String> {
    let target = first.target.clone();
    let mut clients = vec![first];
    while clients.len() < count {
        let wave = (count - clients.len()).min(CONNECTING_AT_ONCE);
        let tasks: Vec<_> = (0..wave).map(|_| tokio::spawn(Client::connect(target.clone()))).collect();
        for task in tasks {
            clients.push(task.await.map_err(|error| format!("a connecting task failed: {error}"))??);
        }
    }
    Ok(clients)
}

/// Runs `job(number, count, client)` on every client at once; gives the clients back with
/// their results, in order.
async fn each<R, F, Fut>(clients: Vec<Client>, job: F) -> Result<(Vec<Client>, Vec<R>), WireError>
where
    F: Fn(usize, usize, Client) -> Fut,
    Fut: Future<Output = (Client, R)> + Send + 'static,
    R: Send + 'static,
{
    let count = clients.len();
    let tasks: Vec<_> =
        clients.into_iter().enumerate().map(|(number, client)| tokio::spawn(job(number, count, client))).collect();
    let mut clients = Vec::with_capacity(count);
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        let (client, result) =
            task.await.map_err(|error| WireError::System(format!("a client task failed: {error}")))?;
        clients.push(client);
        results.push(result);
    }
    Ok((clients, results))
}

#[derive(Deserialize)]
struct AccountAnswer {
    real_value: String,
    gift_value: String,
    pre_value: String,
    held_real_value: String,
    held_gift_value: String,
    held_pre_value: String,
}

/// The sums of every bench account's REAL, GIFT, PRE and held value in minor units, read with
/// `GET /v1/account` over all the connections (an account the server does not know holds
/// nothing), or why they could not be read.
async fn balance_sum(
    clients: Vec<Client>,
    shared: &Arc<Shared>,
) -> Result<(Vec<Client>, Result<([i128; 3], [i128; 3]), String>), WireError> {
    let (clients, parts) = each(clients, |number, count, mut client| {
        let shared = shared.clone();
        async move {
            let mut sums = ([0i128; 3], [0i128; 3]);
            for index in (number..shared.plan.account_ids.len()).step_by(count) {
                match account_balance(&mut client, &shared.plan.account_ids[index], shared.units.scale).await {
                    Ok(Some((sum, held))) => sums = (add(sums.0, sum), add(sums.1, held)),
                    Ok(None) => {}
                    Err(error) => return (client, Err(error)),
                }
            }
            (client, Ok(sums))
        }
    })
    .await?;
    let mut total = ([0i128; 3], [0i128; 3]);
    for part in parts {
        match part {
            Ok((sum, held)) => total = (add(total.0, sum), add(total.1, held)),
            Err(error) => return Ok((clients, Err(error))),
        }
    }
    Ok((clients, Ok(total)))
}

/// One account's balance and held value, `None` if the server does not know it.
async fn account_balance(
    client: &mut Client,
    id: &str,
    scale: Scale,
) -> Result<Option<([i128; 3], [i128; 3])>, String> {
    let query = form_urlencoded::Serializer::new(String::new()).append_pair("account_id", id).finish();
    let path = format!("/v1/account?{query}");
    let document = match client.ask(Method::GET, &path, Bytes::new()).await? {
        Ok(document) => document,
        Err(refused) if refused.code == ErrorCode::AccountNotFound => return Ok(None),
        Err(refused) => return Err(format!("reading account {id}: {refused}")),
    };
    let account: AccountAnswer =
        serde_json::from_value(document).map_err(|error| format!("reading account {id}: {error}"))?;
    let minor = |text: &str| -> Result<i128, String> {
        Amount::parse(text, scale)
            .map(|amount| i128::from(amount.minor()))
            .map_err(|error| format!("account {id}: {text:?}: {error}"))
    };
    Ok(Some((
        [minor(&account.real_value)?, minor(&account.gift_value)?, minor(&account.pre_value)?],
        [minor(&account.held_real_value)?, minor(&account.held_gift_value)?, minor(&account.held_pre_value)?],
    )))
}

/// The server's scale: the decimals of the totals `GET /v1/liability` writes (at the scale,
/// zero included: "0.00"). The first request of the run: `Ok(Err(..))` if the server refused
/// the key.
async fn server_scale(client: &mut Client) -> Result<Result<Scale, HttpRefusal>, String> {
    let document = match client.ask(Method::GET, "/v1/liability", Bytes::new()).await? {
        Ok(document) => document,
        Err(refused) if [401, 403].contains(&refused.status) => return Ok(Err(refused)),
        Err(refused) => return Err(refused.to_string()),
    };
    let total =
        document["total"]["total_value"].as_str().ok_or_else(|| format!("no total.total_value in {document}"))?;
    let decimals = total.split_once('.').map_or(0, |(_, decimals)| decimals.len());
    u32::try_from(decimals)
        .ok()
        .and_then(Scale::new)
        .map(Ok)
        .ok_or_else(|| format!("{total:?} has no scale purse knows"))
}

/// The in-process bench's rules as the ledger default (CUSTOMIZED: 100.00 → 20.00,
/// 500.00 → 150.00), if the key may set rules; says which.
async fn set_rules(client: &mut Client) -> Result<&'static str, String> {
    let rules = json!({
        "gift_type": "CUSTOMIZED",
        "full_gift_switch": false,
        "tiers": [
            { "real_value": "100.00", "gift_value": "20.00" },
            { "real_value": "500.00", "gift_value": "150.00" },
        ],
    });
    let body = Bytes::from(rules.to_string());
    match client.ask(Method::PUT, "/v1/rules", body).await? {
        Ok(_) => Ok("CUSTOMIZED 100.00 -> 20.00, 500.00 -> 150.00 (set as the ledger default, as in process)"),
        Err(refused) if refused.status == StatusCode::FORBIDDEN.as_u16() => {
            Ok("left as the server has them: the key's scope is below admin")
        }
        Err(refused) => Err(refused.to_string()),
    }
}

#[derive(Debug)]
struct Verified {
    flows: u64,
    entries: u64,
}

/// `POST /v1/verify`; `None` when the key's scope is below admin.
async fn verify(client: &mut Client) -> Result<Option<Verified>, String> {
    match client.ask(Method::POST, "/v1/verify", Bytes::new()).await? {
        Ok(document) => {
            let count = |field: &str| document[field].as_u64().ok_or_else(|| format!("no {field} in {document}"));
            Ok(Some(Verified { flows: count("flows")?, entries: count("entries")? }))
        }
        Err(refused) if refused.status == StatusCode::FORBIDDEN.as_u16() => Ok(None),
        Err(refused) => Err(refused.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ServerStats {
    batches: u64,
    requests: u64,
    entries_written: u64,
    batch_requests_max: u64,
}

async fn stats(client: &mut Client) -> Result<ServerStats, String> {
    let document = client.ask(Method::GET, "/v1/stats", Bytes::new()).await?.map_err(|refused| refused.to_string())?;
    serde_json::from_value(document).map_err(|error| format!("GET /v1/stats: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use purse_core::Timestamp;
    use purse_server::fields::body_pairs;
    use purse_server::native::Definitions;
    use purse_wire::args::{
        AdjustArgs, CaptureArgs, ChargeArgs, ClearArgs, DeductArgs, HoldArgs, ImportArgs, ReleaseArgs, StatusArgs,
        TransferArgs, UnchargeArgs, UndeductArgs,
    };
    use purse_wire::command::{status_command, ToCommand};

    fn units() -> Units {
        Units { scale: Scale::new(2).unwrap(), zone: Zone::CHINA }
    }

    fn minor(minor: i64) -> Amount {
        Amount::from_minor(minor)
    }

    /// 2024-03-01 12:00:00 in China (UTC+8).
    const NOON: Timestamp = Timestamp(1_709_265_600);

    /// Every command of the table, with the route and body it must become.
    fn table() -> Vec<(Command, &'static str, Value)> {
        let command = |action: Action| Command::new("r1", "o1", "alice", action);
        let mut described = command(Action::Adjust { real: minor(-150), gift: minor(0), pre: minor(7) });
        described.remark = Some("-1.50 for the broken cup".into());
        described.operator_id = Some("op7".into());
        described.biz_date = Some(NOON);
        let mut imported = command(Action::Import { real: minor(100), gift: minor(20), pre: minor(0) });
        imported.gift_expire_time = Some(NOON);
        imported.card_id = Some("card-9".into());
        let mut frozen = command(Action::Freeze);
        frozen.remark = Some("lost card".into());
        vec![
            (
                command(Action::Charge { real: minor(10_000), gift: None, pre: minor(0), trigger_gift: true }),
                "charge",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "real_value": "100.00", "trigger_gift": true}),
            ),
            (
                command(Action::Charge {
                    real: minor(5),
                    gift: Some(minor(120)),
                    pre: minor(30_001),
                    trigger_gift: false,
                }),
                "charge",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "real_value": "0.05", "gift_value": "1.20", "pre_value": "300.01"}),
            ),
            (
                command(Action::Deduct { value: minor(100) }),
                "deduct",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "value": "1.00"}),
            ),
            (
                command(Action::Undeduct { original_outer_order_id: "o0".into(), value: Some(minor(50)) }),
                "undeduct",
                json!({"request_id": "r1", "outer_order_id": "o0", "new_outer_order_id": "o1", "account_id": "alice", "value": "0.50"}),
            ),
            (
                command(Action::Undeduct { original_outer_order_id: "o0".into(), value: None }),
                "undeduct",
                json!({"request_id": "r1", "outer_order_id": "o0", "new_outer_order_id": "o1", "account_id": "alice"}),
            ),
            (
                command(Action::Uncharge { src_outer_order_id: "o0".into() }),
                "uncharge",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "src_outer_order_id": "o0"}),
            ),
            (
                command(Action::Hold { value: minor(5_900), expire_time: Some(NOON) }),
                "hold",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "value": "59.00", "expire_time": "2024-03-01 12:00:00"}),
            ),
            (
                command(Action::Capture { src_outer_order_id: "o0".into(), value: Some(minor(1)) }),
                "capture",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "src_outer_order_id": "o0", "value": "0.01"}),
            ),
            (
                command(Action::Release { src_outer_order_id: "o0".into() }),
                "release",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "src_outer_order_id": "o0"}),
            ),
            (
                described,
                "adjust",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "real_value": "-1.50", "gift_value": "0.00",
                       "pre_value": "0.07", "remark": "-1.50 for the broken cup", "operator_id": "op7", "biz_date": "2024-03-01 12:00:00"}),
            ),
            (
                imported,
                "import",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "real_value": "1.00", "gift_value": "0.20",
                       "pre_value": "0.00", "card_id": "card-9", "gift_expire_time": "2024-03-01 12:00:00"}),
            ),
            (
                frozen,
                "freeze",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "remark": "lost card"}),
            ),
            (
                command(Action::Transfer { to_account_id: "bob".into(), value: Some(minor(2_500)) }),
                "transfer",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "to_account_id": "bob", "value": "25.00"}),
            ),
            (
                command(Action::Clear { buckets: purse_core::ClearBuckets::All }),
                "clear",
                json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "bucket": "ALL"}),
            ),
        ]
    }

    #[test]
    fn commands_become_their_route_and_body() {
        for (command, route, body) in table() {
            assert_eq!(native_request(&command, units()), Ok((route, body)), "{command:?}");
        }
        let refused = [
            Action::Open { real: minor(1), gift: minor(0), pre: minor(0) },
            Action::Expire { now: NOON },
            Action::ExpireHold { src_outer_order_id: "o0".into(), now: NOON },
        ];
        for action in refused {
            assert!(native_request(&Command::new("r1", "o1", "alice", action.clone()), units()).is_err(), "{action:?}");
        }
        let mut expiring = Command::new("r1", "o1", "alice", Action::Deduct { value: minor(1) });
        expiring.pre_expire_time = Some(NOON);
        assert_eq!(native_request(&expiring, units()), Err("deduct takes no pre_expire_time".into()));
    }

    /// Each body, parsed by the server's own definitions (purse-server's `fields` and the
    /// clap options of purse-wire), is the command it came from.
    #[test]
    fn the_server_reads_each_body_back_as_its_command() {
        let definitions = Definitions::new();
        for (command, _, _) in table() {
            let (route, body) = native_request(&command, units()).unwrap();
            let pairs = body_pairs(body.to_string().as_bytes()).unwrap();
            let definition = definitions.get(route);
            let parsed = match route {
                "charge" => definition.parse::<ChargeArgs>(&pairs).unwrap().to_command(units()),
                "deduct" => definition.parse::<DeductArgs>(&pairs).unwrap().to_command(units()),
                "undeduct" => definition.parse::<UndeductArgs>(&pairs).unwrap().to_command(units()),
                "uncharge" => definition.parse::<UnchargeArgs>(&pairs).unwrap().to_command(units()),
                "import" => definition.parse::<ImportArgs>(&pairs).unwrap().to_command(units()),
                "adjust" => definition.parse::<AdjustArgs>(&pairs).unwrap().to_command(units()),
                "hold" => definition.parse::<HoldArgs>(&pairs).unwrap().to_command(units()),
                "capture" => definition.parse::<CaptureArgs>(&pairs).unwrap().to_command(units()),
                "release" => definition.parse::<ReleaseArgs>(&pairs).unwrap().to_command(units()),
                "transfer" => definition.parse::<TransferArgs>(&pairs).unwrap().to_command(units()),
                "clear" => definition.parse::<ClearArgs>(&pairs).unwrap().to_command(units()),
                "freeze" => status_command(&definition.parse::<StatusArgs>(&pairs).unwrap(), units(), Action::Freeze),
                other => panic!("no parser for {other}"),
            };
            let parsed = parsed.unwrap_or_else(|error| panic!("{route}: {body}: {error}"));
            assert_eq!(parsed, command, "{route}: {body}");
        }
    }

    #[test]
    fn the_run_tag_goes_before_every_id_it_sends() {
        let table = [
            (Action::Deduct { value: minor(1) }, None),
            (Action::Undeduct { original_outer_order_id: "o0".into(), value: None }, Some("t.o0")),
            (Action::Uncharge { src_outer_order_id: "o0".into() }, Some("t.o0")),
            (Action::Capture { src_outer_order_id: "o0".into(), value: None }, Some("t.o0")),
            (Action::Release { src_outer_order_id: "o0".into() }, Some("t.o0")),
        ];
        for (action, source) in table {
            let command = tagged(Command::new("r1", "o1", "alice", action), "t.");
            assert_eq!((command.request_id.as_str(), command.outer_order_id.as_str()), ("t.r1", "t.o1"));
            assert_eq!(command.account_id, "alice");
            let referred = match &command.action {
                Action::Undeduct { original_outer_order_id: id, .. }
                | Action::Uncharge { src_outer_order_id: id }
                | Action::Capture { src_outer_order_id: id, .. }
                | Action::Release { src_outer_order_id: id } => Some(id.as_str()),
                _ => None,
            };
            assert_eq!(referred, source, "{:?}", command.action);
        }
    }

    #[test]
    fn answers_become_flows_or_refusals() {
        let body = br#"{"flow_id":"42","flow_type":"DEDUCT","account_id":"alice","card_id":null,"brand_id":null,"shop_id":null,
            "operator":null,"request_id":"r1","outer_order_id":"o1","order_time":"2024-03-01 12:00:00","order_value":"-1.00",
            "current_value":"119.00","affected_property_list":[{"type":"REAL","value":"-1.00"},{"type":"GIFT","value":"0.00"},
            {"type":"PRE","value":"0.00"}],"before_property_list":[],"after_property_list":[],"remark":null,"ext_info":null,
            "held_property_list":[{"type":"REAL","value":"0.00"}],"src_outer_order_id":null}"#;
        let detail = flow_detail(body).unwrap();
        assert_eq!((detail.flow_id.as_str(), detail.flow_type), ("42", "DEDUCT"));
        assert_eq!(detail.affected_property_list[0], ("REAL", "-1.00".to_owned()));
        assert!(flow_detail(br#"{"flow_id":"42"}"#).is_err());
        let unknown_type = String::from_utf8_lossy(body).replace("\"DEDUCT\"", "\"DEDUCTED\"");
        assert!(flow_detail(unknown_type.as_bytes()).is_err());

        let refused = refusal(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"error":{"code":"INSUFFICIENT_BALANCE","message":"needs 5.00"}}"#,
        )
        .unwrap();
        assert_eq!((refused.status, refused.code), (422, ErrorCode::InsufficientBalance));
        assert_eq!(refused.to_string(), "422 INSUFFICIENT_BALANCE: needs 5.00");
        assert!(refusal(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>").is_err());
        assert!(refusal(StatusCode::CONFLICT, br#"{"error":{"code":"NOPE","message":""}}"#).is_err());
    }

    #[test]
    fn targets_are_base_urls_over_plain_http() {
        let target = Target::parse("http://127.0.0.1:8080/", "k1").unwrap();
        assert_eq!((target.connect.as_str(), target.base.as_str()), ("127.0.0.1:8080", ""));
        assert_eq!(target.bearer, "Bearer k1");
        let prefixed = Target::parse("http://localhost/purse", "k1").unwrap();
        assert_eq!((prefixed.connect.as_str(), prefixed.base.as_str()), ("localhost:80", "/purse"));
        assert_eq!(prefixed.authority, "localhost");
        for wrong in ["https://127.0.0.1:8443", "127.0.0.1:8080", "not a url"] {
            assert!(Target::parse(wrong, "k1").is_err(), "{wrong}");
        }
    }
}
