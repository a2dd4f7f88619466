//! `purse cluster init|status`: a ledger's partitions on NATS JetStream (docs/cluster.md).

use clap::{Args, Subcommand};
use purse_cluster::ClusterError;
use purse_wire::error::WireError;
use purse_wire::render::to_text;

/// Where the cluster is.
#[derive(Debug, Args)]
pub struct ClusterWhere {
    /// NATS servers, comma-separated (nats://host:port,…).
    #[arg(long, env = "PURSE_NATS", value_delimiter = ',', required = true)]
    pub nats: Vec<String>,
    /// The cluster's name (its streams are PURSE_<name>_P<k>).
    #[arg(long)]
    pub name: String,
}

/// `purse cluster …`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Make a cluster: its partition count (fixed for good) and the replicas of its streams.
    Init(InitArgs),
    /// Every partition: its owner (node, lease epoch, lease age) and its stream (last
    /// sequence, leader, replicas, and each replica's lag behind the leader).
    Status(ClusterWhere),
    /// Move a partition to another running node: its owner lets go, the node named takes it
    /// over. Waits until it has.
    Move(MoveArgs),
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    #[command(flatten)]
    pub at: ClusterWhere,
    /// The partition (0-based).
    #[arg(long)]
    pub partition: u32,
    /// The node to take it.
    #[arg(long)]
    pub to: String,
    /// How long to wait for the move.
    #[arg(long, default_value_t = 60)]
    pub wait_seconds: u64,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub at: ClusterWhere,
    /// Partitions (1 to 4,096); never changes.
    #[arg(long)]
    pub partitions: u32,
    /// Replicas of each partition's stream.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
}

pub(crate) fn failed(error: ClusterError) -> WireError {
    match error {
        ClusterError::Ledger(error) => WireError::Ledger(error),
        ClusterError::InvalidArgument(message) => WireError::invalid_argument(message),
        other => WireError::System(other.to_string()),
    }
}

pub async fn run(command: ClusterCommand) -> Result<String, WireError> {
    match command {
        ClusterCommand::Init(args) => {
            let context = purse_cluster::connect(&args.at.nats).await.map_err(failed)?;
            let meta = purse_cluster::meta::init(&context, &args.at.name, args.partitions, args.replicas)
                .await
                .map_err(failed)?;
            Ok(to_text(&serde_json::json!({
                "name": args.at.name,
                "partitions": meta.partitions,
                "replicas": meta.replicas,
                "hash": meta.hash,
            })))
        }
        ClusterCommand::Move(args) => {
            let wait = std::time::Duration::from_secs(args.wait_seconds);
            let held = purse_cluster::move_partition(&args.at.nats, &args.at.name, args.partition, &args.to, wait)
                .await
                .map_err(failed)?;
            Ok(to_text(&serde_json::json!({
                "partition": args.partition,
                "owner": { "node": held.holder.node, "address": held.holder.address, "epoch": held.revision },
            })))
        }
        ClusterCommand::Status(at) => {
            let partitions = purse_cluster::status(&at.nats, &at.name).await.map_err(failed)?;
            let partitions: Vec<serde_json::Value> = partitions
                .iter()
                .map(|partition| {
                    serde_json::json!({
                        "partition": partition.partition,
                        "stream": partition.stream,
                        "owner": partition.owner.as_ref().map(|held| serde_json::json!({
                            "node": held.holder.node,
                            "address": held.holder.address,
                            "epoch": held.revision,
                            "lease_age_ms": u64::try_from(held.age.as_millis()).unwrap_or(u64::MAX),
                        })),
                        "last_sequence": partition.stream_state.as_ref().map(|state| state.last_sequence),
                        "leader": partition.stream_state.as_ref().and_then(|state| state.leader.clone()),
                        "replicas": partition.stream_state.as_ref().map(|state| state.replicas.clone()),
                        "replica_lag": partition.replica_lag.iter().map(|replica| serde_json::json!({
                            "name": replica.name,
                            "current": replica.current,
                            "offline": replica.offline,
                            "lag": replica.lag,
                            "active_ms": u64::try_from(replica.active.as_millis()).unwrap_or(u64::MAX),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Ok(to_text(&serde_json::json!({ "name": at.name, "partitions": partitions })))
        }
    }
}
