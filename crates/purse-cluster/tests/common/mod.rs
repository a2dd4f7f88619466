//! What the cluster tests share: a real NATS cluster made for a test, and a node's settings on it.

use std::path::Path;
use std::time::Duration;

use purse_cluster::{meta, NodeConfig};
use purse_ledger::jetstream::test_cluster::Cluster;

/// Starts a 3-node cluster with client ports `base..base + 3` and makes purse cluster `name` on
/// it with `partitions` partitions.
pub async fn start_cluster((base, name): (u16, &str), partitions: u32) -> Cluster {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cluster = Cluster::start(base, tmp, &tmp.join("nats-server-bin")).await;
    let client = async_nats::connect(cluster.servers()[0].as_str()).await.unwrap();
    meta::init(&async_nats::jetstream::new(client), name, partitions, 3).await.unwrap();
    cluster
}

/// Node `node` of purse cluster `cluster` on the NATS cluster at `base`, its directory under
/// `dir`, with a short lease (3 s) so that take-overs come quickly.
pub fn config((base, cluster): (u16, &str), node: &str, dir: &Path) -> NodeConfig {
    let servers = (0..3).map(|n| format!("nats://127.0.0.1:{}", base + n)).collect();
    let monitor = (0..3).map(|n| format!("http://127.0.0.1:{}", base + 4000 + n)).collect();
    let mut config = NodeConfig::new(cluster, node, servers, monitor, dir.join(node));
    config.lease_ttl = Duration::from_secs(3);
    config.ack_timeout = Duration::from_secs(5);
    config
}
