//! The router with its layers, and the serving loop with its graceful shutdown.

use std::future::Future;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCodeTag};
use crate::metrics::{RequestLabels, RouteLabels};
use crate::native::json;
use crate::{AppState, Scope};

/// Error bodies longer than this from a layer are not read back into a message.
const LAYER_MESSAGE_BYTES_MAX: usize = 4096;

/// The whole service: native API, dialects, console, health, metrics, OpenAPI.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    let request_id = header::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(crate::native::routes())
        .merge(crate::dialect::routes())
        .merge(crate::console::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(config.body_bytes_max))
        .layer(RequestBodyLimitLayer::new(config.body_bytes_max))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(ConcurrencyLimitLayer::new(config.concurrency_max))
        // Outside the limits, so that their refusals (408, 413) are counted and answered as
        // the spec's error object too.
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            // The span names the method and the path only: a query string may hold a console
            // login key, and nothing here ever logs a key.
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn fallback(request: Request) -> ApiError {
    ApiError::transport(
        StatusCode::NOT_FOUND,
        format!("{} {} is not a route of this server (see /openapi.json)", request.method(), request.uri().path()),
    )
}

/// Counts and times every request, and gives every error answer the spec's error object (a
/// layer's own refusals, such as 413 from the body limit, come as plain text).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    // The native routes share one pattern: label them by their command, and only by one that
    // exists (a label per made-up path would let anyone grow the metrics without bound).
    let route = match route.as_str() {
        "/v1/{command}" => {
            let command = request.uri().path().trim_start_matches("/v1/");
            let known =
                crate::native::WRITES.iter().chain(crate::native::QUERIES.iter()).any(|(name, _)| *name == command);
            if known {
                format!("/v1/{command}")
            } else {
                "unmatched".to_owned()
            }
        }
        _ => route,
    };
    let metrics = state.metrics();
    let started = Instant::now();
    // What a dialect's refusal needs, kept for the dialects' routes only (a copy per request
    // of every other route would be paid for nothing).
    let dialect = crate::dialect::PATHS.contains(&request.uri().path()).then(|| {
        (request.uri().path().to_owned(), request.uri().query().map(str::to_owned), request.headers().clone())
    });
    let response = {
        // Counted down when the request ends, answered or not (a client that hangs up drops
        // this future half way).
        let _in_flight = InFlight::enter(&metrics.in_flight);
        let response = next.run(request).await;
        as_error_object(response, dialect.as_ref()).await
    };
    let code = response.extensions().get::<ErrorCodeTag>().map_or("", |tag| tag.0.as_str()).to_owned();
    let status = response.status().as_u16();
    metrics.requests.get_or_create(&RequestLabels { route: route.clone(), status, code }).inc();
    metrics.latency.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    response
}

/// One request in flight, for as long as it lives.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a prometheus_client::metrics::gauge::Gauge) -> InFlight<'a> {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn as_error_object(response: Response, dialect: Option<&(String, Option<String>, HeaderMap)>) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.extensions().get::<ErrorCodeTag>().is_some()
    {
        return response;
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, LAYER_MESSAGE_BYTES_MAX).await.unwrap_or_else(|_| Bytes::new());
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match (status, text.is_empty()) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => "the request body is too large".to_owned(),
        (StatusCode::REQUEST_TIMEOUT, _) => "the request took too long (a slow client, or a slow disk)".to_owned(),
        (_, true) => status.canonical_reason().unwrap_or("refused").to_owned(),
        (_, false) => text,
    };
    // A dialect client gets the refusal in its provider's shape.
    let refusal = dialect.and_then(|(path, query, headers)| {
        crate::dialect::limit_error(path, status, &message, query.as_deref(), headers)
    });
    refusal.unwrap_or_else(|| ApiError::transport(status, message).into_response())
}

async fn healthz() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    if !state.is_ready() {
        return json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "shutting down"}));
    }
    match state.ledger().stats().await {
        Ok(_) => json(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        // The cause goes to the log, not to a caller without credentials (it may name paths).
        Err(error) => {
            tracing::warn!(target: "purse::serve", %error, "not ready");
            json(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "the ledger does not answer"}))
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    let text = state.metrics().render(state.ledger()).await;
    let mut response = Body::from(text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

async fn openapi(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    state.authorize(&headers, Scope::Read)?;
    Ok(json(StatusCode::OK, &crate::openapi::document()))
}

/// How `serve` runs.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--tls-cert` and `--tls-key` (PEM): serve HTTPS with rustls.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests in flight finish within the grace period, and closes the ledger (a request still
/// unanswered after it was never acknowledged, so nothing acknowledged is lost).
pub async fn serve(
    listener: std::net::TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let app = router(state.clone());
    let ready = state.clone();
    let served = serve_app(listener, app, state.config(), options, shutdown, move || ready.set_ready(false)).await;
    let closed = state.ledger().clone().close().await.map_err(|error| format!("closing the ledger: {error}"));
    served.and(closed)
}

/// Serves `app` on `listener` until `shutdown` resolves; then calls `stopping` (no longer
/// ready), stops accepting and lets the requests in flight finish within the grace period.
pub(crate) async fn serve_app(
    listener: std::net::TcpListener,
    app: Router,
    config: &crate::ServerConfig,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: impl FnOnce() + Send + 'static,
) -> Result<(), String> {
    let grace = config.grace_period;
    match options.tls {
        None => serve_plain(listener, app, config.header_read_timeout, grace, shutdown, stopping).await,
        Some((cert, key)) => serve_tls(listener, app, grace, shutdown, stopping, &cert, &key).await,
    }
}

/// The accept loop: hyper's own connection builder rather than `axum::serve`, because that
/// sets no timer and so no limit on how long a client may take to send its headers (a
/// slowloris client held a connection for ever). Here a client gets `header_read_timeout`
/// for each request's headers, the request timeout for the rest, and answers go out with
/// TCP_NODELAY (a small answer is not held back waiting for an ACK).
async fn serve_plain(
    listener: std::net::TcpListener,
    app: Router,
    header_read_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: impl FnOnce() + Send + 'static,
) -> Result<(), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    listener.set_nonblocking(true).map_err(|error| format!("the listener: {error}"))?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|error| format!("the listener: {error}"))?;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors, say: the connections in hand go on; try again shortly.
                        tracing::warn!(target: "purse::serve", %error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client that goes away or breaks the protocol ends only its connection.
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    stopping();
    tracing::info!(target: "purse::serve", "shutting down: finishing the requests in flight");
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(target: "purse::serve", "the grace period ended with requests still in flight; they were not acknowledged");
            Ok(())
        }
    }
}

async fn serve_tls(
    listener: std::net::TcpListener,
    app: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stopping: impl FnOnce() + Send + 'static,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(), String> {
    // One crypto provider for the process (ring); a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|error| format!("--tls-cert {} / --tls-key {}: {error}", cert.display(), key.display()))?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopping();
        tracing::info!(target: "purse::serve", "shutting down: finishing the requests in flight");
        stopper.graceful_shutdown(Some(grace));
    });
    axum_server::from_tcp_rustls(listener, config)
        .map_err(|error| format!("the listener: {error}"))?
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .map_err(|error| format!("serving: {error}"))
}
