//! A node of a cluster: it takes the leases of partitions nobody holds (up to its share), opens
//! each one's replicated ledger (which fences any earlier owner), renews the leases, and serves
//! the accounts of the partitions it owns through one handle with the [`Ledger`]'s API.
//!
//! A command goes to its account's partition ([`crate::partition::partition_of`]). One this
//! node does not own is answered with [`ClusterError::NotOwner`] naming the owner, for the
//! caller to retry there (`purse serve --cluster` forwards it instead). Idempotency and order
//! uniqueness are per partition: a retry names the same account, so it reaches the same
//! partition and gets the first answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use purse_core::{Command, Flow};
use purse_ledger::jetstream::{JetStreamJournal, JetStreamOptions};
use purse_ledger::{AccountView, Ledger, LedgerConfig, Transfer};
use tokio::sync::RwLock;

use crate::error::{nats, ClusterError};
use crate::lease::{Holder, Leases, LEASE_TTL_DEFAULT};
use crate::meta::Meta;
use crate::partition::{partition_of, stream_name};

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub cluster: String,
    /// This node's name, unique in the cluster.
    pub node: String,
    /// NATS servers, `nats://host:port`.
    pub servers: Vec<String>,
    /// Every NATS server's monitoring endpoint (`sync_always` is checked on each).
    pub monitor: Vec<String>,
    /// The node's own directory: one ledger directory per partition it has owned.
    pub data_dir: PathBuf,
    /// Where this node answers requests, for the others to forward to.
    pub address: Option<String>,
    pub lease_ttl: Duration,
    /// Partitions this node takes at most (by default its fair share).
    pub partitions_max: Option<u32>,
    /// How long a journal append waits for JetStream's acknowledgement.
    pub ack_timeout: Duration,
}

impl NodeConfig {
    pub fn new(cluster: &str, node: &str, servers: Vec<String>, monitor: Vec<String>, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            cluster: cluster.into(),
            node: node.into(),
            servers,
            monitor,
            data_dir,
            address: None,
            lease_ttl: LEASE_TTL_DEFAULT,
            partitions_max: None,
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// A partition this node serves.
#[derive(Debug)]
struct Owned {
    ledger: Ledger,
    revision: u64,
    renewed: Instant,
}

#[derive(Debug)]
struct Inner {
    config: NodeConfig,
    meta: Meta,
    holder: Holder,
    leases: Leases,
    owned: RwLock<BTreeMap<u32, Owned>>,
    stopped: tokio::sync::Notify,
    /// While set, the node neither renews nor takes leases (tests: an owner that stalls).
    paused: std::sync::atomic::AtomicBool,
}

/// A running node. See the module documentation.
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

/// One partition as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    pub partition: u32,
    pub stream: String,
    pub owner: Option<crate::lease::Held>,
    /// The stream's last sequence, leader and replicas (`None` if it does not exist yet).
    pub stream_state: Option<purse_ledger::jetstream::StreamState>,
    /// Whether this node serves it.
    pub served_here: bool,
}

pub(crate) async fn connect(servers: &[String]) -> Result<jetstream::Context, ClusterError> {
    let addresses: Vec<async_nats::ServerAddr> = servers
        .iter()
        .map(|server| {
            server.parse().map_err(|error| ClusterError::InvalidArgument(format!("NATS server {server:?}: {error}")))
        })
        .collect::<Result<_, _>>()?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(addresses)
        .await
        .map_err(|error| nats("connecting", error))?;
    Ok(jetstream::new(client))
}

impl Node {
    /// Joins the cluster `config.cluster` (made by [`crate::meta::init`]) and starts taking
    /// partitions in the background.
    pub async fn start(config: NodeConfig) -> Result<Node, ClusterError> {
        let context = connect(&config.servers).await?;
        let meta = crate::meta::read(&context, &config.cluster).await?;
        let leases = Leases::open(&context, &config.cluster, meta.replicas, config.lease_ttl).await?;
        let holder = Holder { node: config.node.clone(), address: config.address.clone() };
        let inner = Arc::new(Inner {
            config,
            meta,
            holder,
            leases,
            owned: RwLock::default(),
            stopped: tokio::sync::Notify::new(),
            paused: std::sync::atomic::AtomicBool::new(false),
        });
        let node = Node { inner };
        node.tick().await;
        let background = node.clone();
        tokio::spawn(async move { background.run().await });
        Ok(node)
    }

    pub fn meta(&self) -> &Meta {
        &self.inner.meta
    }

    /// The partitions this node serves now.
    pub async fn owned(&self) -> Vec<u32> {
        self.inner.owned.read().await.keys().copied().collect()
    }

    /// Waits until this node serves `partitions` partitions (or `timeout` passes).
    pub async fn wait_for_partitions(&self, partitions: usize, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        while self.inner.owned.read().await.len() < partitions {
            if Instant::now() > deadline {
                return Err(ClusterError::Nats(format!(
                    "node {} serves {:?}, not {partitions} partitions, after {timeout:?}",
                    self.inner.config.node,
                    self.owned().await
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    async fn run(self) {
        let period = self.inner.config.lease_ttl / 3;
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => self.tick().await,
                () = self.inner.stopped.notified() => return,
            }
        }
    }

    /// Stops renewing and taking leases (the node looks stalled to the others) until resumed.
    #[doc(hidden)]
    pub fn pause(&self, paused: bool) {
        self.inner.paused.store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Renews what this node holds (dropping what it lost), then takes free partitions up to
    /// its share.
    async fn tick(&self) {
        if self.inner.paused.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let inner = &self.inner;
        let mut lost = Vec::new();
        {
            let mut owned = inner.owned.write().await;
            for (partition, held) in owned.iter_mut() {
                match inner.leases.renew(*partition, &inner.holder, held.revision).await {
                    Ok(Some(revision)) => {
                        held.revision = revision;
                        held.renewed = Instant::now();
                    }
                    Ok(None) => lost.push(*partition),
                    // NATS unreachable: keep serving until the lease's time runs out (checked on
                    // every command), then let go.
                    Err(_) if held.renewed.elapsed() < inner.config.lease_ttl => {}
                    Err(_) => lost.push(*partition),
                }
            }
            for partition in &lost {
                if let Some(held) = owned.remove(partition) {
                    tokio::spawn(async move { drop(held.ledger.close().await) });
                }
            }
        }
        let share = match self.share().await {
            Ok(share) => share,
            Err(_) => return,
        };
        for partition in 0..inner.meta.partitions {
            if inner.owned.read().await.len() >= share as usize {
                break;
            }
            if inner.owned.read().await.contains_key(&partition) {
                continue;
            }
            let Ok(Some(revision)) = inner.leases.take(partition, &inner.holder).await else { continue };
            match self.open_partition(partition, revision).await {
                Ok(ledger) => {
                    let renewed = Instant::now();
                    inner.owned.write().await.insert(partition, Owned { ledger, revision, renewed });
                }
                Err(_) => {
                    let _ = inner.leases.release(partition, revision).await;
                }
            }
        }
    }

    /// This node's fair share: the partitions over the nodes holding leases, this one counted.
    async fn share(&self) -> Result<u32, ClusterError> {
        let inner = &self.inner;
        let mut nodes = std::collections::BTreeSet::from([inner.holder.node.clone()]);
        for partition in 0..inner.meta.partitions {
            if let Some(held) = inner.leases.holder(partition).await? {
                nodes.insert(held.holder.node);
            }
        }
        let fair = inner.meta.partitions.div_ceil(u32::try_from(nodes.len()).unwrap_or(u32::MAX));
        Ok(inner.config.partitions_max.map_or(fair, |max| max.min(inner.meta.partitions)))
    }

    /// Opens partition `partition`'s replicated ledger (taking its journal over: the fence).
    async fn open_partition(&self, partition: u32, revision: u64) -> Result<Ledger, ClusterError> {
        let config = &self.inner.config;
        let mut options = JetStreamOptions::new(
            config.servers.clone(),
            &stream_name(&config.cluster, partition),
            config.monitor.clone(),
        );
        options.replicas = self.inner.meta.replicas;
        options.ack_timeout = config.ack_timeout;
        let journal = tokio::task::spawn_blocking(move || JetStreamJournal::connect(options))
            .await
            .map_err(|error| ClusterError::Nats(format!("connecting the journal: {error}")))??;
        let path = config.data_dir.join(format!("p{partition:04}"));
        let owner = format!("{}@{revision}", config.node);
        Ok(Ledger::open_replicated(LedgerConfig::new(path), Arc::new(journal), &owner).await?)
    }

    /// The ledger of `account_id`'s partition, if this node serves it and its lease is current.
    async fn ledger_of(&self, account_id: &str) -> Result<Ledger, ClusterError> {
        let inner = &self.inner;
        let partition = partition_of(account_id, inner.meta.partitions);
        // A lease about to run out may already be another node's: refuse before that (reads
        // too, which could otherwise be stale). The margin is a third of the TTL.
        let current = inner.config.lease_ttl - inner.config.lease_ttl / 3;
        if let Some(held) = inner.owned.read().await.get(&partition) {
            if held.renewed.elapsed() < current {
                return Ok(held.ledger.clone());
            }
        }
        let owner = inner.leases.holder(partition).await.ok().flatten().map(|held| held.holder);
        Err(ClusterError::NotOwner { partition, account: account_id.into(), owner })
    }

    /// [`Ledger::submit`] on the account's partition.
    pub async fn submit(&self, command: Command) -> Result<Flow, ClusterError> {
        let ledger = self.ledger_of(&command.account_id).await?;
        Ok(ledger.submit(command).await?)
    }

    /// [`Ledger::transfer`] between two accounts of one partition. Transfers across partitions
    /// are not built yet (docs/cluster.md §4): `INVALID_ARGUMENT`, nothing written.
    pub async fn transfer(&self, command: Command) -> Result<Transfer, ClusterError> {
        if let purse_core::Action::Transfer { to_account_id, .. } = &command.action {
            let partitions = self.inner.meta.partitions;
            let (from, to) = (partition_of(&command.account_id, partitions), partition_of(to_account_id, partitions));
            if from != to {
                return Err(ClusterError::InvalidArgument(format!(
                    "accounts {:?} (partition {from}) and {to_account_id:?} (partition {to}) are in different \
                     partitions: transfers across partitions are not built yet",
                    command.account_id
                )));
            }
        }
        let ledger = self.ledger_of(&command.account_id).await?;
        Ok(ledger.transfer(command).await?)
    }

    /// [`Ledger::account`] on the account's partition.
    pub async fn account(&self, account_id: &str) -> Result<AccountView, ClusterError> {
        Ok(self.ledger_of(account_id).await?.account(account_id).await?)
    }

    /// The ledger of a partition this node serves (verify, queries across its accounts).
    pub async fn partition(&self, partition: u32) -> Option<Ledger> {
        self.inner.owned.read().await.get(&partition).map(|held| held.ledger.clone())
    }

    /// Stops: closes every partition's ledger and gives its lease up.
    pub async fn stop(self) -> Result<(), ClusterError> {
        self.inner.stopped.notify_one();
        let owned = std::mem::take(&mut *self.inner.owned.write().await);
        let mut first_error = None;
        for (partition, held) in owned {
            if let Err(error) = held.ledger.close().await {
                first_error.get_or_insert(ClusterError::from(error));
            }
            let _ = self.inner.leases.release(partition, held.revision).await;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Every partition of cluster `cluster`: its owner and its stream.
pub async fn status(
    servers: &[String],
    monitor: &[String],
    cluster: &str,
) -> Result<Vec<PartitionStatus>, ClusterError> {
    let context = connect(servers).await?;
    let meta = crate::meta::read(&context, cluster).await?;
    let leases = Leases::open(&context, cluster, meta.replicas, LEASE_TTL_DEFAULT).await?;
    let mut partitions = Vec::new();
    for partition in 0..meta.partitions {
        let stream = stream_name(cluster, partition);
        let stream_state = match context.get_stream(&stream).await {
            Ok(mut found) => {
                let info = found.info().await.map_err(|error| nats(&format!("reading stream {stream}"), error))?;
                let (leader, replicas) = match &info.cluster {
                    Some(cluster) => {
                        (cluster.leader.clone(), cluster.replicas.iter().map(|peer| peer.name.clone()).collect())
                    }
                    None => (None, Vec::new()),
                };
                Some(purse_ledger::jetstream::StreamState { last_sequence: info.state.last_sequence, leader, replicas })
            }
            Err(_) => None,
        };
        let owner = leases.holder(partition).await?;
        partitions.push(PartitionStatus { partition, stream, owner, stream_state, served_here: false });
    }
    let _ = monitor;
    Ok(partitions)
}
