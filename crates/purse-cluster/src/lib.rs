//! purse-cluster: a purse ledger past one machine (docs/cluster.md).
//!
//! Accounts map to a fixed number of partitions ([`partition::partition_of`]). Each partition
//! is a replicated ledger (`purse_ledger::Ledger::open_replicated`) whose log is a NATS
//! JetStream stream (R3, `sync_interval: always` checked on every server). A [`Node`] owns the
//! partitions whose leases it holds ([`lease`]) and serves their accounts; a node that takes a
//! partition over fences the previous owner through the stream itself.
//!
//! ```no_run
//! # async fn example() -> Result<(), purse_cluster::ClusterError> {
//! use purse_cluster::{meta, Node, NodeConfig};
//! let servers = vec!["nats://127.0.0.1:14222".to_owned()];
//! let monitor = vec!["http://127.0.0.1:18222".to_owned()];
//! let context = async_nats::jetstream::new(async_nats::connect("127.0.0.1:14222").await.unwrap());
//! meta::init(&context, "shop", 4, 3).await?;
//! let node = Node::start(NodeConfig::new("shop", "n1", servers, monitor, "./n1".into())).await?;
//! # Ok(()) }
//! ```

mod error;
pub mod lease;
mod locks;
pub mod meta;
mod node;
pub mod partition;
mod peer;

pub use error::ClusterError;
pub use node::{connect, move_partition, status, Node, NodeConfig, PartitionStatus, ReplicaLag};
