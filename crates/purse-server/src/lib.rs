//! purse-server: the ledger over HTTP (`purse serve`).
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository; docs/server.md is this crate's user guide.
//!
//! [`router`] builds the whole service as an axum `Router`, so it can be embedded in another
//! application or tested in process; [`serve`] runs it on a listener until a shutdown signal,
//! then lets the requests in flight finish (within the grace period) and closes the ledger.
//!
//! - the native API (`/v1/…`, [`native`]): one route per command of spec §7, whose JSON fields
//!   (or query parameters) are the command's options by their spec names;
//! - the provider dialects ([`dialect`]): Alibaba's TOP gateway for the ALSC recharge methods,
//!   KYBIO's open API, Zenlayer's API v2, each signed as its provider signs it;
//! - the operator console (`/console`, [`console`]);
//! - `/healthz`, `/readyz`, `/metrics` and `/openapi.json`.
//!
//! **Architecture Invariant:** the server decides nothing. Every write is a `purse_core`
//! command submitted to the `Ledger`, exactly as the command line submits it; a 2xx is only
//! ever sent after the ledger answered, which it does only once the flow is durable.

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod console;
pub mod dialect;
pub mod error;
pub mod fields;
pub mod keys;
pub mod local;
pub mod metrics;
pub mod native;
pub mod openapi;
pub mod replay;
mod service;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use purse_ledger::Ledger;
use purse_wire::command::Units;

pub use error::ApiError;
pub use keys::{Dialect, KeyStore, Keys, Scope};
pub use service::{router, serve, ServeOptions};

/// Limits and timeouts of the service; every one has a default that suits a till or a back
/// office on one machine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted (413 beyond it).
    pub body_bytes_max: usize,
    /// Time to answer one request, the body read included (408 beyond it): a slow client
    /// cannot hold a connection's request open for ever.
    pub request_timeout: Duration,
    /// Time a client has to send one request's headers; a slower one loses its connection.
    pub header_read_timeout: Duration,
    /// Requests served at once; more wait for a slot (the ledger batches them anyway).
    pub concurrency_max: usize,
    /// After a shutdown signal, how long the requests in flight may take before the server
    /// stops anyway (and closes the ledger: nothing unanswered was acknowledged).
    pub grace_period: Duration,
    /// How far a signed request's timestamp may be from the server's clock.
    pub clock_skew: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            body_bytes_max: 1 << 20,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            concurrency_max: 4096,
            grace_period: Duration::from_secs(30),
            clock_skew: Duration::from_secs(300),
        }
    }
}

/// What every handler shares: the ledger, the keys, the metrics.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ledger: Ledger,
    keys: Arc<KeyStore>,
    metrics: metrics::Metrics,
    replay: replay::ReplayGuard,
    native: native::Definitions,
    config: ServerConfig,
    units: Units,
    ready: AtomicBool,
    /// The admin socket's key (`local.rs`): admin scope, known only to this process.
    local_key: Option<String>,
    /// Who runs `transfer` instead of the ledger (a cluster node: spec §10 across partitions).
    transfer: Option<TransferHook>,
}

/// The future a [`TransferHook`] answers.
pub type TransferFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<purse_ledger::Transfer, ApiError>> + Send>>;

/// Runs the `transfer` command in place of the state's ledger: a cluster node whose transfers
/// may span partitions ([`cluster`]). The answer is rendered by the state's ledger.
#[derive(Clone)]
pub struct TransferHook(pub Arc<dyn Fn(purse_core::Command) -> TransferFuture + Send + Sync>);

impl std::fmt::Debug for TransferHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TransferHook")
    }
}

impl AppState {
    pub fn new(ledger: Ledger, keys: KeyStore, config: ServerConfig) -> AppState {
        AppState::with_local_key(ledger, keys, config, None)
    }

    /// As `new`, also accepting `local_key` with admin scope (the admin socket's key).
    pub fn with_local_key(ledger: Ledger, keys: KeyStore, config: ServerConfig, local_key: Option<String>) -> AppState {
        AppState::build(ledger, Arc::new(keys), config, local_key, None)
    }

    /// A state whose keys are shared with others (one per partition of a cluster node), and
    /// whose transfers run through `transfer`.
    pub fn with_transfer(
        ledger: Ledger,
        keys: Arc<KeyStore>,
        config: ServerConfig,
        transfer: TransferHook,
    ) -> AppState {
        AppState::build(ledger, keys, config, None, Some(transfer))
    }

    fn build(
        ledger: Ledger,
        keys: Arc<KeyStore>,
        config: ServerConfig,
        local_key: Option<String>,
        transfer: Option<TransferHook>,
    ) -> AppState {
        let units = Units { scale: ledger.scale(), zone: ledger.zone() };
        let replay = replay::ReplayGuard::new(config.clock_skew);
        AppState {
            inner: Arc::new(Shared {
                ledger,
                keys,
                metrics: metrics::Metrics::new(),
                replay,
                native: native::Definitions::new(),
                config,
                units,
                ready: AtomicBool::new(true),
                local_key,
                transfer,
            }),
        }
    }

    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    pub fn keys(&self) -> &KeyStore {
        &self.inner.keys
    }

    pub(crate) fn transfer_hook(&self) -> Option<&TransferHook> {
        self.inner.transfer.as_ref()
    }

    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub fn replay(&self) -> &replay::ReplayGuard {
        &self.inner.replay
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The ledger's scale and time zone.
    pub fn units(&self) -> Units {
        self.inner.units
    }

    pub(crate) fn definitions(&self) -> &native::Definitions {
        &self.inner.native
    }

    /// False once shutdown began: `/readyz` answers 503 so a balancer stops sending.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// The API key of a request (`Authorization: Bearer …` or `X-Api-Key`), checked against
    /// `scope`: 401 without a known key, 403 when its scope is too small.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<keys::ApiKey, ApiError> {
        authorize(&self.inner.keys, self.inner.local_key.as_deref(), headers, scope)
    }
}

/// [`AppState::authorize`] against `keys` (and the admin socket's `local` key, if any).
pub(crate) fn authorize(
    keys: &KeyStore,
    local: Option<&str>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<keys::ApiKey, ApiError> {
    let token = api_key_of(headers).ok_or_else(|| {
        ApiError::unauthorized(
            "this route needs an API key: send Authorization: Bearer <key> (make one with purse keys add)",
        )
    })?;
    if let Some(local) = local {
        if keys::constant_time_eq(local, token) {
            return Ok(keys::ApiKey {
                id: "local".into(),
                name: "admin socket".into(),
                scope: Scope::Admin,
                sha256: String::new(),
                created_unix: 0,
                revoked: false,
            });
        }
    }
    let keys = keys.current();
    let key = keys.authorize(token).ok_or_else(|| ApiError::unauthorized("the API key is unknown or revoked"))?;
    if key.scope < scope {
        return Err(ApiError::forbidden(format!(
            "the key {:?} has scope {}; this route needs {}",
            key.id,
            key.scope.as_str(),
            scope.as_str()
        )));
    }
    Ok(key.clone())
}

/// The key text of `Authorization: Bearer` or `X-Api-Key`, or of the console's cookie.
pub(crate) fn api_key_of(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION).and_then(|value| value.to_str().ok()) {
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return Some(token.trim());
        }
    }
    if let Some(value) = headers.get("x-api-key").and_then(|value| value.to_str().ok()) {
        return Some(value.trim());
    }
    console::cookie_key(headers)
}
