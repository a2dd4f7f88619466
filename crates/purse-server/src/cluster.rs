//! `purse serve --cluster`: one node of a purse cluster (docs/cluster.md) over HTTP.
//!
//! Any node accepts any request. It finds the request's partition, by the account the request
//! names (`account_id`: a JSON field of a write, a query parameter of a query) or by an
//! explicit partition (`X-Purse-Partition: K`, or `?partition=K`, for the routes that name no
//! account: accounts, liability, export, expire, rules, verify, snapshot, stats, metrics, the
//! dialects and the console). A partition this node serves is answered by that partition's own
//! service, the very router of a one-machine `purse serve` over the partition's ledger; any
//! other is forwarded to the node holding its lease, at the address that node advertised.
//!
//! A forwarded request carries [`FORWARDED`]; a node never forwards such a request again, so a
//! lease that moves while a request is on its way costs one `503 STORAGE` naming the new
//! owner, never a loop. Forwarding is safe to retry: every write carries its `request_id`, and
//! a retry anywhere gets the first answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use purse_cluster::{ClusterError, Node};
use purse_core::ErrorCode;
use purse_ledger::Ledger;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::fields::query_pairs;
use crate::native::json;
use crate::{AppState, KeyStore, Scope, ServeOptions, ServerConfig, TransferHook};

/// Set on a request one node forwards to another (its value: the forwarding node's name).
pub const FORWARDED: &str = "x-purse-forwarded";

/// Names a request's partition explicitly (0-based).
pub const PARTITION: &str = "x-purse-partition";

/// Queries that, without a partition named, answer for the whole cluster: every partition's
/// answer, added up (amounts exactly, counts, and the per-brand rows by brand).
pub const SUMMED: [&str; 1] = ["/v1/liability"];

/// The largest partition answer a [`SUMMED`] route reads.
const SUMMED_BYTES_MAX: usize = 16 << 20;

/// Whether the request names its partition (header or query parameter).
fn names_partition(parts: &Parts) -> bool {
    parts.headers.contains_key(PARTITION) || query_pairs(parts.uri.query()).iter().any(|(name, _)| name == "partition")
}

/// A write's routing key: its `account_id`, read without building the whole document (the
/// partition's service parses the body itself).
#[derive(serde::Deserialize)]
struct AccountOf<'a> {
    #[serde(borrow, default)]
    account_id: Option<std::borrow::Cow<'a, str>>,
}

/// Adds `part` into `sum`, two answers of one query from two partitions: numbers are counts
/// (added), a string member whose name ends in `_value` is an amount (added exactly, digit for
/// digit), rows of an array are matched by their `brand_id`; anything else (times, ids) is the
/// same in both and kept.
fn add_json(sum: &mut serde_json::Value, part: serde_json::Value, name: &str) -> Result<(), String> {
    use serde_json::Value;
    match (sum, part) {
        (Value::Object(sum), Value::Object(part)) => {
            for (key, value) in part {
                match sum.get_mut(&key) {
                    Some(existing) => add_json(existing, value, &key)?,
                    None => {
                        sum.insert(key, value);
                    }
                }
            }
        }
        (Value::Number(sum), Value::Number(part)) => {
            let added = sum.as_u64().zip(part.as_u64()).and_then(|(a, b)| a.checked_add(b));
            *sum = added.ok_or_else(|| format!("{name}: {sum} + {part} is not a count"))?.into();
        }
        (Value::String(sum), Value::String(part)) if name.ends_with("_value") => *sum = add_amounts(sum, &part)?,
        (Value::Array(sum), Value::Array(part)) => {
            for row in part {
                let brand = row.get("brand_id").cloned();
                match sum.iter_mut().find(|existing| existing.get("brand_id") == brand.as_ref()) {
                    Some(existing) => add_json(existing, row, name)?,
                    None => sum.push(row),
                }
            }
            // The ledger's own order: no brand first, then by brand.
            sum.sort_by_key(|row| row.get("brand_id").filter(|brand| !brand.is_null()).map(ToString::to_string));
        }
        _ => {}
    }
    Ok(())
}

/// `a + b` for two amounts as the ledger writes them (`-12.34`, `0.00`, `7`), with the same
/// number of decimals, exactly.
fn add_amounts(a: &str, b: &str) -> Result<String, String> {
    let parse = |text: &str| -> Option<(i128, usize)> {
        let (negative, digits) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let value: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some((if negative { -value } else { value }, fraction.len()))
    };
    let not_amounts = || format!("{a:?} and {b:?} are not two amounts of one scale");
    let ((x, scale), (y, other)) = parse(a).zip(parse(b)).ok_or_else(not_amounts)?;
    if scale != other {
        return Err(not_amounts());
    }
    let total = x.checked_add(y).ok_or_else(not_amounts)?;
    let digits = total.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = digits.split_at(digits.len() - scale);
    let sign = if total < 0 { "-" } else { "" };
    Ok(if scale == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") })
}

/// One cluster node's HTTP front. Cheap to clone.
#[derive(Clone)]
pub struct ClusterFront {
    inner: Arc<Front>,
}

struct Front {
    node: Node,
    keys: Arc<KeyStore>,
    config: ServerConfig,
    /// Each served partition's service, with the lease epoch it was built for: a partition
    /// lost and taken again is a new ledger handle, so a new service.
    services: Mutex<HashMap<u32, (u64, Router)>>,
    client: Client<HttpConnector, Full<Bytes>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for ClusterFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterFront").field("node", &self.inner.node.name()).finish_non_exhaustive()
    }
}

fn cluster_error(error: ClusterError) -> ApiError {
    ApiError::new(error.code(), error.to_string())
}

impl ClusterFront {
    /// The front of `node`: every partition's service checks requests against `keys` (the
    /// same keys on every node: a forwarded request keeps its credentials).
    pub fn new(node: Node, keys: KeyStore, config: ServerConfig) -> ClusterFront {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        ClusterFront {
            inner: Arc::new(Front {
                node,
                keys: Arc::new(keys),
                config,
                services: Mutex::default(),
                client,
                ready: AtomicBool::new(true),
            }),
        }
    }

    async fn route(&self, request: Request) -> Result<Response, ApiError> {
        let (mut parts, body) = request.into_parts();
        let config = &self.inner.config;
        // The body is read here (its account routes it): the request timeout covers the read.
        let body = match tokio::time::timeout(config.request_timeout, axum::body::to_bytes(body, config.body_bytes_max))
            .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => {
                return Err(ApiError::transport(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large"));
            }
            Err(_) => return Err(ApiError::transport(StatusCode::REQUEST_TIMEOUT, "the request body took too long")),
        };
        if parts.method == Method::GET && SUMMED.contains(&parts.uri.path()) && !names_partition(&parts) {
            return self.summed(parts).await;
        }
        let partition = self.partition_of(&mut parts, &body)?;
        self.answer(partition, parts, body).await
    }

    /// Answers a request of `partition`: here, or forwarded to its owner.
    async fn answer(&self, partition: u32, parts: Parts, body: Bytes) -> Result<Response, ApiError> {
        let node = &self.inner.node;
        match node.serving(partition).await {
            Ok((epoch, ledger)) => {
                let service = self.service(partition, epoch, ledger);
                let request = Request::from_parts(parts, Body::from(body));
                Ok(service.oneshot(request).await.unwrap_or_else(|never| match never {}))
            }
            Err(error) => {
                self.inner.services.lock().unwrap_or_else(PoisonError::into_inner).remove(&partition);
                match error {
                    ClusterError::NotOwner { owner: Some(owner), .. }
                        if owner.node != node.name() && !parts.headers.contains_key(FORWARDED) =>
                    {
                        match owner.address.as_deref() {
                            Some(address) => self.forward(parts, body, &owner.node, address).await,
                            None => Err(ApiError::new(
                                ErrorCode::Storage,
                                format!(
                                    "partition {partition} is served by node {}, which advertised no address: \
                                     start it with --advertise, or send the request to it",
                                    owner.node
                                ),
                            )),
                        }
                    }
                    error => Err(cluster_error(error)),
                }
            }
        }
    }

    /// A [`SUMMED`] route over the whole cluster: asked of every partition (here or at its
    /// owner), the answers added up. Any partition's failure is the answer: a sum without one
    /// partition would be wrong, not partial.
    async fn summed(&self, parts: Parts) -> Result<Response, ApiError> {
        let mut sum: Option<serde_json::Value> = None;
        for partition in 0..self.inner.node.meta().partitions {
            let mut request = Request::builder().method(parts.method.clone()).uri(parts.uri.clone());
            for (name, value) in &parts.headers {
                request = request.header(name, value);
            }
            let request = request
                .header(PARTITION, partition)
                .body(Body::empty())
                .map_err(|error| ApiError::bad_request(format!("the request: {error}")))?;
            let (partition_parts, _) = request.into_parts();
            let answer = self.answer(partition, partition_parts, Bytes::new()).await?;
            if answer.status() != StatusCode::OK {
                return Ok(answer);
            }
            let body = axum::body::to_bytes(answer.into_body(), SUMMED_BYTES_MAX).await.map_err(|error| {
                ApiError::new(ErrorCode::Storage, format!("partition {partition}'s answer could not be read: {error}"))
            })?;
            let document: serde_json::Value = serde_json::from_slice(&body).map_err(|error| {
                ApiError::new(ErrorCode::Storage, format!("partition {partition}'s answer is not JSON: {error}"))
            })?;
            match &mut sum {
                None => sum = Some(document),
                Some(sum) => add_json(sum, document, "").map_err(|error| {
                    ApiError::new(ErrorCode::Corruption, format!("adding partition {partition}'s answer: {error}"))
                })?,
            }
        }
        Ok(json(StatusCode::OK, &sum.unwrap_or_default()))
    }

    /// The request's partition: `X-Purse-Partition`, else `?partition=` (taken out of the
    /// query, which the partition's routes check), else the partition of its `account_id`.
    fn partition_of(&self, parts: &mut Parts, body: &Bytes) -> Result<u32, ApiError> {
        let partitions = self.inner.node.meta().partitions;
        let check = |text: &str, from: &str| {
            text.trim().parse::<u32>().ok().filter(|partition| *partition < partitions).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{from} {text:?} is not a partition of this cluster (0 to {})",
                    partitions - 1
                ))
            })
        };
        if let Some(value) = parts.headers.get(PARTITION) {
            return check(value.to_str().unwrap_or("?"), "X-Purse-Partition");
        }
        let pairs = query_pairs(parts.uri.query());
        if let Some((_, text)) = pairs.iter().find(|(name, _)| name == "partition") {
            let partition = check(text, "partition")?;
            let rest = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter().filter(|(name, _)| name != "partition"))
                .finish();
            let path = parts.uri.path();
            let target = if rest.is_empty() { path.to_owned() } else { format!("{path}?{rest}") };
            parts.uri = target.parse::<Uri>().map_err(|error| ApiError::bad_request(format!("the URI: {error}")))?;
            // A forwarded copy names it the same way.
            parts.headers.insert(HeaderName::from_static(PARTITION), HeaderValue::from(partition));
            return Ok(partition);
        }
        if parts.uri.path().starts_with("/v1/") {
            let account = if parts.method == Method::GET {
                pairs.into_iter().find(|(name, _)| name == "account_id").map(|(_, account)| account)
            } else {
                serde_json::from_slice::<AccountOf>(body).ok().and_then(|of| of.account_id).map(String::from)
            };
            if let Some(account) = account {
                return Ok(self.inner.node.partition_of(&account));
            }
        }
        Err(ApiError::bad_request(format!(
            "{} {}: a cluster node routes a request by its account_id (a JSON field of a write, a query \
             parameter of a query), and this one names none (or its body is not JSON): name its partition \
             with X-Purse-Partition: K or ?partition=K (0 to {})",
            parts.method,
            parts.uri.path(),
            partitions - 1
        )))
    }

    /// Partition `partition`'s service (built once per lease epoch).
    fn service(&self, partition: u32, epoch: u64, ledger: Ledger) -> Router {
        let mut services = self.inner.services.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((built_for, service)) = services.get(&partition) {
            if *built_for == epoch {
                return service.clone();
            }
        }
        let node = self.inner.node.clone();
        let transfer = TransferHook(Arc::new(move |command| {
            let node = node.clone();
            Box::pin(async move { node.transfer(command).await.map_err(cluster_error) })
        }));
        let state = AppState::with_transfer(ledger, self.inner.keys.clone(), self.inner.config.clone(), transfer);
        let service = crate::router(state);
        services.insert(partition, (epoch, service.clone()));
        service
    }

    /// Sends the request to node `node` at `address` and answers what it answers.
    async fn forward(&self, parts: Parts, body: Bytes, node: &str, address: &str) -> Result<Response, ApiError> {
        let unavailable = |what: String| ApiError::new(ErrorCode::Storage, what);
        let target = parts.uri.path_and_query().map_or("/", |target| target.as_str());
        let uri: Uri = format!("http://{address}{target}").parse().map_err(|error| {
            unavailable(format!("node {node} advertised the address {address:?}, which is not host:port: {error}"))
        })?;
        let mut request = hyper::Request::builder().method(parts.method).uri(uri);
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                request = request.header(name, value);
            }
        }
        let this = HeaderValue::from_str(self.inner.node.name()).unwrap_or(HeaderValue::from_static("-"));
        let request = request
            .header(FORWARDED, this)
            .body(Full::new(body))
            .map_err(|error| ApiError::bad_request(format!("the request cannot be forwarded: {error}")))?;
        let timeout = self.inner.config.request_timeout;
        let answer = match tokio::time::timeout(timeout, self.inner.client.request(request)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                return Err(unavailable(format!(
                    "forwarding to node {node} at {address} (the owner of the request's partition) failed: {error}; \
                     retry with the same request_id (a write is applied once)"
                )))
            }
            Err(_) => {
                return Err(unavailable(format!(
                    "node {node} at {address} (the owner of the request's partition) did not answer within \
                     {timeout:?}; retry with the same request_id (a write is applied once)"
                )))
            }
        };
        let (mut parts, incoming) = answer.into_parts();
        for name in [header::CONNECTION, header::TRANSFER_ENCODING, header::UPGRADE, header::TRAILER] {
            parts.headers.remove(name);
        }
        parts.headers.remove("keep-alive");
        Ok(Response::from_parts(parts, Body::new(incoming)))
    }
}

/// Headers of one connection, not of the request (RFC 9110 §7.6.1), and those the client
/// sets itself.
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
        header::HOST,
        header::CONTENT_LENGTH,
        header::PROXY_AUTHORIZATION,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The node's service: health, its own status, and every other route routed (module docs).
pub fn cluster_router(front: ClusterFront) -> Router {
    let concurrency_max = front.inner.config.concurrency_max;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/cluster", get(status))
        .fallback(route)
        .layer(tower::limit::ConcurrencyLimitLayer::new(concurrency_max))
        .with_state(front)
}

async fn route(State(front): State<ClusterFront>, request: Request) -> Response {
    front.route(request).await.unwrap_or_else(IntoResponse::into_response)
}

async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn readyz(State(front): State<ClusterFront>) -> Response {
    if front.inner.ready.load(Ordering::SeqCst) {
        json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "shutting down"}))
    }
}

/// `GET /v1/cluster`: this node, the cluster's partition count, the partitions served here.
async fn status(State(front): State<ClusterFront>, headers: HeaderMap) -> Result<Response, ApiError> {
    crate::authorize(&front.inner.keys, None, &headers, Scope::Read)?;
    let node = &front.inner.node;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "node": node.name(),
            "cluster": node.cluster(),
            "partitions": node.meta().partitions,
            "serving": node.owned().await,
        }),
    ))
}

/// Serves `front` on `listener` until `shutdown` resolves; then lets the requests in flight
/// finish (within the grace period) and stops the node: it closes every partition's ledger
/// and gives its leases up, so the other nodes take them over at once.
pub async fn serve_cluster(
    listener: std::net::TcpListener,
    front: ClusterFront,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let app = cluster_router(front.clone());
    let stopping = front.clone();
    let served = crate::service::serve_app(listener, app, &front.inner.config, options, shutdown, move || {
        stopping.inner.ready.store(false, Ordering::SeqCst);
    })
    .await;
    let stopped = front.inner.node.clone().stop().await.map_err(|error| format!("stopping the node: {error}"));
    served.and(stopped)
}

#[cfg(test)]
mod tests {
    use super::{add_amounts, add_json};
    use serde_json::json;

    #[test]
    fn amounts_add_exactly() {
        let check = |a: &str, b: &str, expected: Result<&str, ()>| {
            assert_eq!(add_amounts(a, b).map_err(|_| ()), expected.map(str::to_owned), "{a} + {b}");
        };
        check("0.00", "0.00", Ok("0.00"));
        check("12.34", "0.66", Ok("13.00"));
        check("99999999999999999.99", "0.01", Ok("100000000000000000.00"));
        check("-1.50", "1.25", Ok("-0.25"));
        check("-0.01", "0.01", Ok("0.00"));
        check("7", "8", Ok("15"));
        check("0.001", "0.002", Ok("0.003"));
        check("1.0", "1.00", Err(()));
        check("1.", "1.0", Err(()));
        check("2026-12-03", "1", Err(()));
        check("", "1", Err(()));
        check("1e3", "1", Err(()));
    }

    #[test]
    fn answers_add_member_by_member_and_brand_by_brand() {
        let part = |accounts: u64, total: &str, brand: &str| {
            json!({"at": null, "accounts": accounts, "total": {"total_value": total, "expiring": {"from": "t"}},
                   "by_brand": [{"brand_id": brand, "accounts": accounts, "total_value": total}]})
        };
        let mut sum = part(2, "10.00", "b");
        add_json(&mut sum, part(3, "0.50", "a"), "").unwrap();
        add_json(&mut sum, part(1, "1.00", "b"), "").unwrap();
        assert_eq!(
            sum,
            json!({"at": null, "accounts": 6, "total": {"total_value": "11.50", "expiring": {"from": "t"}},
                   "by_brand": [{"brand_id": "a", "accounts": 3, "total_value": "0.50"},
                                {"brand_id": "b", "accounts": 3, "total_value": "11.00"}]})
        );
        let mut sum = part(1, "1.00", "b");
        assert!(add_json(&mut sum, part(1, "1.000", "b"), "").is_err(), "two scales");
    }
}
