//! `purse serve` and `purse keys`: the ledger as a service (purse-server), and its credentials.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use purse_ledger::{Ledger, LedgerConfig};
use purse_server::{AppState, Dialect, KeyStore, Keys, Scope, ServeOptions, ServerConfig};
use purse_wire::render::to_text;
use purse_wire::WireError;
use serde::Deserialize;

/// `purse serve --listen ADDR [--config FILE] [--log-format text|json] [--tls-cert F --tls-key F]`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the first line on stdout names it).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A JSON file of limits: body_bytes_max, request_timeout_ms, header_read_timeout_ms,
    /// concurrency_max, grace_period_ms, clock_skew_seconds (each optional).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text (default) or JSON, on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds the requests in flight may take after SIGTERM/SIGINT (overrides the config).
    #[arg(long, value_name = "SECONDS")]
    pub grace_period: Option<u64>,
    #[command(flatten)]
    pub cluster: ClusterServeArgs,
}

/// `purse serve --cluster nats://…`: serve as one node of a cluster (docs/cluster.md).
#[derive(Debug, Args)]
pub struct ClusterServeArgs {
    /// Serve as a node of a purse cluster on these NATS servers (comma-separated
    /// nats://host:port): any request is answered here or forwarded to its partition's owner.
    /// --data is then the node's own directory (a ledger per partition it serves, keys.json).
    #[arg(long, value_name = "NATS", value_delimiter = ',', requires_all = ["cluster_name", "node", "nats_monitor"])]
    pub cluster: Vec<String>,
    /// The cluster's name (made with `purse cluster init`).
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// This node's name, unique in the cluster.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Every NATS server's monitoring endpoint (comma-separated http://host:port): each is
    /// checked for sync_interval: always.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub nats_monitor: Vec<String>,
    /// host:port where the other nodes reach this one (default: the --listen address).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Seconds a partition's lease lives unless renewed: how long a dead node's partitions
    /// wait for a new owner.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub lease_ttl: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    body_bytes_max: Option<usize>,
    request_timeout_ms: Option<u64>,
    header_read_timeout_ms: Option<u64>,
    concurrency_max: Option<usize>,
    grace_period_ms: Option<u64>,
    clock_skew_seconds: Option<u64>,
}

fn server_config(args: &ServeArgs) -> Result<ServerConfig, WireError> {
    let mut config = ServerConfig::default();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .map_err(|error| WireError::invalid_argument(format!("--config {}: {error}", path.display())))?;
        let file: ConfigFile = serde_json::from_str(&text)
            .map_err(|error| WireError::invalid_argument(format!("--config {}: {error}", path.display())))?;
        if let Some(bytes) = file.body_bytes_max {
            config.body_bytes_max = bytes;
        }
        if let Some(ms) = file.request_timeout_ms {
            config.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = file.header_read_timeout_ms {
            config.header_read_timeout = Duration::from_millis(ms);
        }
        if let Some(count) = file.concurrency_max.filter(|count| *count > 0) {
            config.concurrency_max = count;
        }
        if let Some(ms) = file.grace_period_ms {
            config.grace_period = Duration::from_millis(ms);
        }
        if let Some(seconds) = file.clock_skew_seconds {
            config.clock_skew = Duration::from_secs(seconds);
        }
    }
    if let Some(seconds) = args.grace_period {
        config.grace_period = Duration::from_secs(seconds);
    }
    Ok(config)
}

/// Runs the server until SIGTERM or SIGINT, then closes the ledger. Prints one JSON line when
/// it listens (`{"listen": "127.0.0.1:8080", "socket": …}`) and `{"stopped": true}` at the end.
pub async fn run(args: ServeArgs, config: LedgerConfig) -> Result<String, WireError> {
    init_logging(args.log_format);
    let server_config = server_config(&args)?;
    let data = config.path.clone();
    let keys = KeyStore::open(&data).map_err(|error| WireError::invalid_argument(error.to_string()))?;
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|error| WireError::System(format!("--listen {}: {error}", args.listen)))?;
    let address = listener.local_addr().map_err(|error| WireError::System(error.to_string()))?;
    if !args.cluster.cluster.is_empty() {
        return run_node(args, config, keys, listener, server_config).await;
    }
    let ledger = Ledger::open(config).await?;
    let local_key = purse_server::local::new_local_key();
    let state = AppState::with_local_key(ledger, keys, server_config, local_key.clone());
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let socket = match local_key {
        Some(local_key) => serve_socket(&data, &state, local_key, &stop),
        None => {
            tracing::warn!(target: "purse::serve", "no randomness for the admin socket's key: no admin socket");
            None
        }
    };
    let scheme = if args.tls_cert.is_some() { "https" } else { "http" };
    crate::print(&format!(
        "{}\n",
        serde_json::json!({"listen": address.to_string(), "url": format!("{scheme}://{address}"), "socket": socket})
    ))?;
    tracing::info!(target: "purse::serve", %address, "listening");
    let options = ServeOptions { tls: args.tls_cert.zip(args.tls_key) };
    let mut stopped = stop.subscribe();
    let signals = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signals.send(());
    });
    let shutdown = async move {
        let _ = stopped.recv().await;
    };
    purse_server::serve(listener, state, options, shutdown).await.map_err(WireError::System)?;
    Ok(to_text(&serde_json::json!({"stopped": true})))
}

/// `purse serve --cluster`: joins the cluster as a node, then serves until SIGTERM or SIGINT
/// and stops the node (its leases given up).
async fn run_node(
    args: ServeArgs,
    config: LedgerConfig,
    keys: KeyStore,
    listener: std::net::TcpListener,
    server_config: ServerConfig,
) -> Result<String, WireError> {
    let cluster = args.cluster;
    if args.tls_cert.is_some() {
        return Err(WireError::invalid_argument(
            "--cluster with --tls-cert: the nodes forward to one another over plain HTTP; put TLS in front \
             of them (a balancer), or serve one machine without --cluster",
        ));
    }
    let address = listener.local_addr().map_err(|error| WireError::System(error.to_string()))?;
    let advertise = match cluster.advertise {
        Some(advertise) => advertise,
        None if address.ip().is_unspecified() => {
            return Err(WireError::invalid_argument(format!(
                "--listen {address} is every interface: say where the other nodes reach this one with --advertise HOST:PORT"
            )))
        }
        None => address.to_string(),
    };
    if cluster.lease_ttl < 3 {
        return Err(WireError::invalid_argument(format!(
            "--lease-ttl {} is too short: 3 seconds at least",
            cluster.lease_ttl
        )));
    }
    let (Some(name), Some(node)) = (cluster.cluster_name, cluster.node) else {
        return Err(WireError::invalid_argument("--cluster needs --cluster-name and --node"));
    };
    let mut node_config =
        purse_cluster::NodeConfig::new(&name, &node, cluster.cluster, cluster.nats_monitor, config.path.clone());
    node_config.address = Some(advertise.clone());
    node_config.lease_ttl = Duration::from_secs(cluster.lease_ttl);
    node_config.ledger = config;
    let started = purse_cluster::Node::start(node_config).await.map_err(crate::cluster::failed)?;
    let front = purse_server::cluster::ClusterFront::new(started, keys, server_config);
    crate::print(&format!(
        "{}\n",
        serde_json::json!({"listen": address.to_string(), "url": format!("http://{address}"), "node": node, "advertise": advertise})
    ))?;
    tracing::info!(target: "purse::serve", %address, node, "listening as a cluster node");
    purse_server::cluster::serve_cluster(listener, front, ServeOptions::default(), shutdown_signal())
        .await
        .map_err(WireError::System)?;
    Ok(to_text(&serde_json::json!({"stopped": true})))
}

/// Starts the admin socket; answers its path, or `null` where it cannot be made (the server
/// still runs; read commands then report the ledger as in use).
fn serve_socket(
    data: &Path,
    state: &AppState,
    local_key: String,
    stop: &tokio::sync::broadcast::Sender<()>,
) -> Option<String> {
    #[cfg(unix)]
    {
        let path = purse_server::local::socket_path(data);
        let app = purse_server::router(state.clone());
        let mut stopped = stop.subscribe();
        let data = data.to_owned();
        let shown = path.display().to_string();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.recv().await;
            };
            if let Err(error) = purse_server::local::serve_socket(&data, app, local_key, shutdown).await {
                tracing::warn!(target: "purse::serve", %error, "no admin socket: read commands cannot reach this server");
            }
        });
        Some(shown)
    }
    #[cfg(not(unix))]
    {
        let _ = (data, state, local_key, stop);
        None
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PURSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// `purse keys add|list|revoke`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make an API key (printed once: only its hash is kept), or register a dialect app key.
    Add(KeysAddArgs),
    /// List the keys, without their secrets.
    List,
    /// Revoke an API key by its id, or a dialect app key by its app key.
    Revoke(KeysRevokeArgs),
}

#[derive(Debug, Args)]
pub struct KeysAddArgs {
    /// read, write or admin.
    #[arg(long, default_value = "read")]
    pub scope: String,
    /// A name for the key (who uses it).
    #[arg(long, default_value = "")]
    pub name: String,
    /// Register an app key of a signed dialect instead: top, kybio or zenlayer.
    #[arg(long, requires = "app_key")]
    pub dialect: Option<String>,
    /// The dialect's app key (TOP app_key, KYBIO appId, Zenlayer access key id).
    #[arg(long, requires = "dialect")]
    pub app_key: Option<String>,
    /// The dialect's shared secret (default: a new random one, printed).
    #[arg(long, requires = "dialect")]
    pub secret: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeysRevokeArgs {
    /// The key's id (or the app key).
    pub id: String,
    /// Revoke only this dialect's app key of that name: top, kybio or zenlayer.
    #[arg(long)]
    pub dialect: Option<String>,
}

pub fn keys(data: &Path, command: KeysCommand) -> Result<String, WireError> {
    let failed = |error: purse_server::keys::KeysError| WireError::invalid_argument(error.to_string());
    let mut keys = Keys::load(data).map_err(failed)?;
    match command {
        KeysCommand::Add(args) => {
            let scope = Scope::parse(&args.scope).ok_or_else(|| {
                WireError::invalid_argument(format!("--scope {:?} is not one of read, write, admin", args.scope))
            })?;
            let document = match (args.dialect, args.app_key) {
                (Some(dialect), Some(app_key)) => {
                    let dialect = Dialect::parse(&dialect).ok_or_else(|| {
                        WireError::invalid_argument(format!("--dialect {dialect:?} is not one of top, kybio, zenlayer"))
                    })?;
                    let app = keys.add_app(dialect, &app_key, args.secret.as_deref(), scope).map_err(failed)?;
                    serde_json::json!({"dialect": dialect.as_str(), "app_key": app.app_key, "secret": app.secret, "scope": scope.as_str()})
                }
                _ => {
                    let (key, token) = keys.add_key(&args.name, scope).map_err(failed)?;
                    serde_json::json!({"id": key.id, "name": key.name, "scope": scope.as_str(), "key": token})
                }
            };
            keys.save(data).map_err(failed)?;
            Ok(to_text(&document))
        }
        KeysCommand::List => {
            let api: Vec<_> = keys
                .keys
                .iter()
                .map(|key| serde_json::json!({"id": key.id, "name": key.name, "scope": key.scope.as_str(), "created_unix": key.created_unix, "revoked": key.revoked}))
                .collect();
            let apps: Vec<_> = keys
                .apps
                .iter()
                .map(|app| serde_json::json!({"dialect": app.dialect.as_str(), "app_key": app.app_key, "scope": app.scope.as_str(), "created_unix": app.created_unix, "revoked": app.revoked}))
                .collect();
            Ok(to_text(&serde_json::json!({"keys": api, "apps": apps})))
        }
        KeysCommand::Revoke(args) => {
            let dialect = args
                .dialect
                .as_deref()
                .map(|name| {
                    Dialect::parse(name).ok_or_else(|| {
                        WireError::invalid_argument(format!("--dialect {name:?} is not one of top, kybio, zenlayer"))
                    })
                })
                .transpose()?;
            let revoked = keys.revoke(&args.id, dialect);
            if revoked == 0 {
                return Err(WireError::invalid_argument(format!("no live key has the id or app key {:?}", args.id)));
            }
            keys.save(data).map_err(failed)?;
            Ok(to_text(&serde_json::json!({"revoked": revoked})))
        }
    }
}
