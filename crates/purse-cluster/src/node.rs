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
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use purse_core::{Action, Command, ErrorCode, Flow, FlowType, TRANSFER_HOLD_SUFFIX};
use purse_ledger::jetstream::{JetStreamJournal, JetStreamOptions};
use purse_ledger::{AccountView, FlowKey, Ledger, LedgerConfig, Transfer, TransferHold};
use tokio::sync::RwLock;

use crate::error::{nats, ClusterError};
use crate::lease::{Holder, Leases, LEASE_TTL_DEFAULT};
use crate::locks::KeyedLocks;
use crate::meta::Meta;
use crate::partition::{partition_of, stream_name};
use crate::peer::{self, PeerReply, PeerRequest};

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
    /// The settings of each partition's ledger (scale, time zone, limits); its path is the
    /// partition's directory under `data_dir`. Every node of a cluster must use the same.
    pub ledger: LedgerConfig,
}

impl NodeConfig {
    pub fn new(cluster: &str, node: &str, servers: Vec<String>, monitor: Vec<String>, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            cluster: cluster.into(),
            node: node.into(),
            servers,
            monitor,
            ledger: LedgerConfig::new(&data_dir),
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
    /// The lease's revision when this node took it: stays while the node serves it.
    epoch: u64,
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
    /// One per transfer between partitions, held while it is completed: a refusal and a later
    /// credit of the same transfer must never both be acted on. Different transfers run at once.
    sagas: KeyedLocks,
    /// One per transfer whose credit another node asked of this one, held until it is decided:
    /// two requests for one transfer are decided in the order they arrived.
    credits: KeyedLocks,
    /// Whether a transfer may be left half-done in a partition served here: set when one is
    /// taken over and when a transfer stopped short, cleared once recovery finished them all.
    /// Recovery scans the orders in memory, so it runs only then, not at every renewal.
    recovery_due: std::sync::atomic::AtomicBool,
    /// Whether the recovery task runs now.
    recovering: std::sync::atomic::AtomicBool,
    /// The NATS connection: node-to-node requests (peer.rs) go over it.
    client: async_nats::Client,
    /// Ends the loop answering the other nodes' requests.
    peer_stopped: tokio::sync::Notify,
}

/// Whether a saga's outcome is final: settled, refused by the destination, or refused for good
/// (anything but `STORAGE`, `CORRUPTION` and `NOT_OWNER`, which recovery tries again).
trait Final {
    fn is_ok_and_final(&self) -> bool;
}

impl Final for Result<Transfer, ClusterError> {
    fn is_ok_and_final(&self) -> bool {
        match self {
            Ok(_) | Err(ClusterError::Refused { .. }) => true,
            Err(error) => !matches!(error.code(), ErrorCode::Storage | ErrorCode::Corruption),
        }
    }
}

/// How the RELEASE of a refused transfer's hold begins its remark; the refusal follows.
const REFUSED_REMARK: &str = "transfer refused: ";

/// The refusal a transfer's RELEASE recorded.
fn refusal_of(release: &Flow) -> ClusterError {
    let reason = release.remark.as_deref().and_then(|remark| remark.strip_prefix(REFUSED_REMARK)).unwrap_or_default();
    let (code, message) = reason.split_once(": ").unwrap_or(("INVALID_ARGUMENT", reason));
    let code = ErrorCode::ALL.into_iter().find(|known| known.as_str() == code).unwrap_or(ErrorCode::InvalidArgument);
    ClusterError::Refused { code, message: message.to_owned() }
}

/// Where a transfer's destination partition is served.
#[derive(Debug)]
enum Destination {
    Here(Ledger),
    /// By this other node.
    Peer(String),
}

/// A command of a transfer's later steps, derived from its HOLD flow: its business time,
/// remark, shop and operator.
fn derived(hold: &Flow, request_id: String, outer_order_id: String, account_id: &str, action: Action) -> Command {
    let mut command = Command::new(&request_id, &outer_order_id, account_id, action);
    command.shop_id = hold.shop_id.clone();
    command.operator_id = hold.operator_id.clone();
    command.biz_date = Some(hold.order_time);
    command.remark = hold.remark.clone();
    command.ext_info = hold.ext_info.clone();
    command
}

/// Step 2 of the transfer held by `hold`: the TRANSFER_IN on its destination. The same on
/// every node that derives it, so a retry anywhere is answered once.
fn credit_command(hold: &TransferHold) -> Result<Command, ClusterError> {
    let flow = &hold.flow;
    let not_a_hold = || ClusterError::InvalidArgument(format!("flow {} is not a transfer hold", flow.flow_id));
    let order = flow.outer_order_id.strip_suffix(TRANSFER_HOLD_SUFFIX).ok_or_else(not_a_hold)?;
    let to = flow.counterparty.as_deref().filter(|_| flow.flow_type == FlowType::Hold).ok_or_else(not_a_hold)?;
    let credit = Action::TransferCredit {
        from_account_id: flow.account_id.clone(),
        hold_outer_order_id: flow.outer_order_id.clone(),
        parts: hold.parts,
        lots: hold.lots.clone(),
        brand_id: flow.brand_id.clone(),
    };
    Ok(derived(flow, flow.request_id.clone(), order.to_owned(), to, credit))
}

/// A peer's request, decoded: the credit command derived from the HOLD sent, or an order to read.
enum Asked {
    Credit(Box<Command>),
    Order { account_id: String, outer_order_id: String },
}

impl Asked {
    fn of(request: PeerRequest) -> Result<Asked, ClusterError> {
        match request {
            PeerRequest::Credit { hold, parts, lots } => {
                let flow = purse_ledger::flow_from_bytes(&hold)?;
                let lots = peer::lots_of_wire(lots)?;
                let hold = TransferHold { flow, closed_by: None, parts: peer::parts_of_wire(parts), lots };
                Ok(Asked::Credit(Box::new(credit_command(&hold)?)))
            }
            PeerRequest::Order { account_id, outer_order_id } => Ok(Asked::Order { account_id, outer_order_id }),
        }
    }
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
    /// How far each replica (the leader's followers) is behind, as the stream's Raft group
    /// reports it.
    pub replica_lag: Vec<ReplicaLag>,
}

/// One follower of a partition's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLag {
    pub name: String,
    /// Up to date with the leader.
    pub current: bool,
    /// Considered offline by the group.
    pub offline: bool,
    /// Operations it is behind the leader (0 when the server does not say).
    pub lag: u64,
    /// Time since the leader last heard from it.
    pub active: Duration,
}

/// A JetStream context on the NATS servers `servers` (`nats://host:port` each).
pub async fn connect(servers: &[String]) -> Result<jetstream::Context, ClusterError> {
    let client = purse_ledger::jetstream::connect_client(servers).await.map_err(|error| match error {
        purse_ledger::Error::InvalidArgument(message) => ClusterError::InvalidArgument(message),
        other => ClusterError::Nats(other.to_string()),
    })?;
    Ok(jetstream::new(client))
}

impl Node {
    /// Joins the cluster `config.cluster` (made by [`crate::meta::init`]) and starts taking
    /// partitions in the background.
    pub async fn start(config: NodeConfig) -> Result<Node, ClusterError> {
        let context = connect(&config.servers).await?;
        // Buckets just made may still be electing their leaders: NATS errors are retried for
        // a while, with the last one reported.
        let deadline = Instant::now() + Duration::from_secs(15);
        let (meta, leases) = loop {
            let opened = async {
                let meta = crate::meta::read(&context, &config.cluster).await?;
                let leases = Leases::open(&context, &config.cluster, meta.replicas, config.lease_ttl).await?;
                Ok::<_, ClusterError>((meta, leases))
            };
            match opened.await {
                Ok(opened) => break opened,
                Err(ClusterError::Nats(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let holder = Holder { node: config.node.clone(), address: config.address.clone() };
        let inner = Arc::new(Inner {
            config,
            meta,
            holder,
            leases,
            owned: RwLock::default(),
            stopped: tokio::sync::Notify::new(),
            paused: std::sync::atomic::AtomicBool::new(false),
            sagas: KeyedLocks::default(),
            credits: KeyedLocks::default(),
            recovery_due: std::sync::atomic::AtomicBool::new(false),
            recovering: std::sync::atomic::AtomicBool::new(false),
            client: context.client(),
            peer_stopped: tokio::sync::Notify::new(),
        });
        let node = Node { inner };
        // Answering before taking anything: another node may ask as soon as this one owns.
        let subject = crate::peer::subject(&node.inner.config.cluster, &node.inner.holder.node);
        let requests = node.inner.client.subscribe(subject.clone()).await.map_err(|error| nats(&subject, error))?;
        let answering = node.clone();
        tokio::spawn(async move { answering.answer_peers(requests).await });
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
        let mut moved = Vec::new();
        {
            let mut owned = inner.owned.write().await;
            for (partition, held) in owned.iter_mut() {
                match inner.leases.renew(*partition, &inner.holder, held.revision).await {
                    Ok(Some(revision)) => {
                        held.revision = revision;
                        held.renewed = Instant::now();
                        // Asked to move it to another node: let go (the ledger closed first).
                        let moving = inner.leases.move_to(*partition).await.ok().flatten();
                        if moving.is_some_and(|to| to != inner.holder.node) {
                            moved.push((*partition, revision));
                        }
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
            for (partition, revision) in &moved {
                if let Some(held) = owned.remove(partition) {
                    drop(held.ledger.close().await);
                    let _ = inner.leases.release(*partition, *revision).await;
                }
            }
        }
        let share = match self.share().await {
            Ok(share) => share,
            Err(_) => return,
        };
        for partition in 0..inner.meta.partitions {
            if inner.owned.read().await.contains_key(&partition) {
                continue;
            }
            // A partition being moved is for the node named; that node takes it beyond its share.
            let moving = match inner.leases.move_to(partition).await {
                Ok(moving) => moving,
                Err(_) => continue,
            };
            let for_me = moving.as_deref() == Some(inner.holder.node.as_str());
            if !for_me && (moving.is_some() || inner.owned.read().await.len() >= share as usize) {
                continue;
            }
            let Ok(Some(revision)) = inner.leases.take(partition, &inner.holder).await else { continue };
            if for_me {
                let _ = inner.leases.clear_move(partition).await;
            }
            match self.open_partition(partition, revision).await {
                Ok(ledger) => {
                    let renewed = Instant::now();
                    inner.owned.write().await.insert(partition, Owned { ledger, epoch: revision, revision, renewed });
                    inner.recovery_due.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                Err(_) => {
                    let _ = inner.leases.release(partition, revision).await;
                }
            }
        }
        // Transfers between partitions left half-done (a crash, a take-over) are finished by a
        // task of their own: a saga step may wait on another node (up to twice the journal's
        // timeout), and the renewals above must never wait for it. One such task at a time.
        let idle = inner.recovering.compare_exchange(false, true, SeqCst, SeqCst).is_ok();
        if idle {
            if inner.recovery_due.swap(false, SeqCst) {
                let node = self.clone();
                tokio::spawn(async move {
                    node.recover().await;
                    node.inner.recovering.store(false, SeqCst);
                });
            } else {
                inner.recovering.store(false, SeqCst);
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
        let mut ledger = config.ledger.clone();
        ledger.path = config.data_dir.join(format!("p{partition:04}"));
        ledger.create = true;
        let owner = format!("{}@{revision}", config.node);
        Ok(Ledger::open_replicated(ledger, Arc::new(journal), &owner).await?)
    }

    /// The partition of `account_id` in this cluster.
    pub fn partition_of(&self, account_id: &str) -> u32 {
        partition_of(account_id, self.inner.meta.partitions)
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.holder.node
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.inner.config.cluster
    }

    /// Partition `partition`'s ledger with the epoch of this node's lease on it (the lease's
    /// revision when taken: a new epoch is a new ledger handle), if this node serves it and the
    /// lease is current; else [`ClusterError::NotOwner`] naming the owner, if any.
    pub async fn serving(&self, partition: u32) -> Result<(u64, Ledger), ClusterError> {
        self.serving_for(partition, "").await
    }

    async fn serving_for(&self, partition: u32, account_id: &str) -> Result<(u64, Ledger), ClusterError> {
        let inner = &self.inner;
        // A lease about to run out may already be another node's: refuse before that (reads
        // too, which could otherwise be stale). The margin is a third of the TTL.
        let current = inner.config.lease_ttl - inner.config.lease_ttl / 3;
        if let Some(held) = inner.owned.read().await.get(&partition) {
            if held.renewed.elapsed() < current {
                return Ok((held.epoch, held.ledger.clone()));
            }
        }
        let owner = inner.leases.holder(partition).await.ok().flatten().map(|held| held.holder);
        Err(ClusterError::NotOwner { partition, account: account_id.into(), owner })
    }

    /// The ledger of `account_id`'s partition, if this node serves it and its lease is current.
    async fn ledger_of(&self, account_id: &str) -> Result<Ledger, ClusterError> {
        let partition = partition_of(account_id, self.inner.meta.partitions);
        Ok(self.serving_for(partition, account_id).await?.1)
    }

    /// [`Ledger::submit`] on the account's partition.
    pub async fn submit(&self, command: Command) -> Result<Flow, ClusterError> {
        let ledger = self.ledger_of(&command.account_id).await?;
        Ok(ledger.submit(command).await?)
    }

    /// [`Ledger::transfer`] (spec §10). Between two accounts of one partition it is that
    /// partition's one atomic transfer. Between partitions it is a saga keyed by the transfer's
    /// `request_id` (docs/cluster.md §4): a transfer hold on the source, the TRANSFER_IN on the
    /// destination, then the TRANSFER_OUT that settles the hold, or, if the destination
    /// refused, a RELEASE of it and the refusal. Every step is idempotent; a transfer left
    /// half-done (a crash, an unreachable destination) is finished by [`Node::recover`], which
    /// the node runs on its own. The destination's steps run on its owner: this node, or
    /// another one asked over NATS (peer.rs).
    pub async fn transfer(&self, command: Command) -> Result<Transfer, ClusterError> {
        let Action::Transfer { to_account_id, value } = &command.action else {
            return Ok(self.ledger_of(&command.account_id).await?.transfer(command).await?);
        };
        let partitions = self.inner.meta.partitions;
        if partition_of(&command.account_id, partitions) == partition_of(to_account_id, partitions) {
            return Ok(self.ledger_of(&command.account_id).await?.transfer(command).await?);
        }
        if command.card_id.is_some() {
            return Err(ClusterError::InvalidArgument(
                "card_id names a new destination's card, which a transfer between partitions does not open: \
                 open the destination first"
                    .into(),
            ));
        }
        let source = self.ledger_of(&command.account_id).await?;
        // The destination must be served, here or by another node, before anything is held.
        self.destination(to_account_id).await?;
        let hold_id = format!("{}{TRANSFER_HOLD_SUFFIX}", command.outer_order_id);
        let action = Action::TransferHold { to_account_id: to_account_id.clone(), value: *value };
        let hold = Command { outer_order_id: hold_id.clone(), action, ..command.clone() };
        source.submit(hold).await?;
        self.complete(&source, &hold_id).await
    }

    /// Finishes every transfer between partitions left half-done in the partitions this node
    /// serves: each open transfer hold is credited and settled, or given back. Returns how many
    /// it finished; those it could not (a destination not served here) stay for the next run.
    pub async fn recover(&self) -> usize {
        let ledgers: Vec<Ledger> = self.inner.owned.read().await.values().map(|held| held.ledger.clone()).collect();
        let mut finished = 0;
        for ledger in ledgers {
            let Ok(holds) = ledger.open_transfer_holds().await else {
                self.inner.recovery_due.store(true, std::sync::atomic::Ordering::SeqCst);
                continue;
            };
            for hold in holds {
                // `complete` marks recovery due again for what it could not finish.
                if self.complete(&ledger, &hold).await.is_ok_and_final() {
                    finished += 1;
                }
            }
        }
        finished
    }

    /// Steps 2 and 3 of the transfer whose hold is `hold_id` on `source`. Everything it writes
    /// is derived from the HOLD flow alone, so a second run (a retry, recovery) asks exactly the
    /// same of each partition and gets the first answers. One run at a time per node.
    async fn complete(&self, source: &Ledger, hold_id: &str) -> Result<Transfer, ClusterError> {
        let outcome = self.complete_once(source, hold_id).await;
        if !outcome.is_ok_and_final() {
            self.inner.recovery_due.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        outcome
    }

    async fn complete_once(&self, source: &Ledger, hold_id: &str) -> Result<Transfer, ClusterError> {
        let _one_at_a_time = self.inner.sagas.lock(hold_id).await;
        let hold = source
            .transfer_hold(hold_id)
            .await?
            .ok_or_else(|| ClusterError::InvalidArgument(format!("no transfer hold {hold_id:?}")))?;
        let flow = &hold.flow;
        let order = hold_id.strip_suffix(TRANSFER_HOLD_SUFFIX).expect("a transfer hold's id").to_owned();
        let to = flow.counterparty.clone().expect("a transfer hold names its destination");
        let destination = self.destination(&to).await?;
        if let Some(closed_by) = hold.closed_by {
            let closing = source.flow(FlowKey::Id(closed_by)).await?;
            if closing.flow_type == FlowType::Release {
                return Err(refusal_of(&closing));
            }
            let transfer_in = self.order_of(&destination, &to, order).await?;
            return Ok(Transfer { out: closing, transfer_in });
        }
        match self.credit(&destination, &hold).await {
            Ok(transfer_in) => {
                let settle = Action::TransferSettle { src_outer_order_id: hold_id.to_owned(), to_account_id: to };
                let out = source
                    .submit(derived(flow, format!("{}:settle", flow.request_id), order, &flow.account_id, settle))
                    .await?;
                Ok(Transfer { out, transfer_in })
            }
            Err(error) if !matches!(error.code(), ErrorCode::Storage | ErrorCode::Corruption) => {
                // Refused by the destination's rules: nothing arrived there, so the hold goes back.
                let mut abort = derived(
                    flow,
                    format!("{}:abort", flow.request_id),
                    format!("{order}:transfer-abort"),
                    &flow.account_id,
                    Action::TransferAbort { src_outer_order_id: hold_id.to_owned() },
                );
                let message = match &error {
                    ClusterError::Peer { message, .. } => message.clone(),
                    error => error.to_string(),
                };
                let reason: String = format!("{}: {message}", error.code().as_str()).chars().take(480).collect();
                abort.remark = Some(format!("{REFUSED_REMARK}{reason}"));
                source.submit(abort).await?;
                Err(ClusterError::Refused { code: error.code(), message })
            }
            Err(error) => Err(error),
        }
    }

    /// Where `account_id`'s partition is served: here, or by the node holding its lease.
    async fn destination(&self, account_id: &str) -> Result<Destination, ClusterError> {
        match self.ledger_of(account_id).await {
            Ok(ledger) => Ok(Destination::Here(ledger)),
            Err(ClusterError::NotOwner { owner: Some(owner), .. }) if owner.node != self.inner.holder.node => {
                Ok(Destination::Peer(owner.node))
            }
            Err(error) => Err(error),
        }
    }

    /// Step 2 of the transfer held by `hold`, on its destination.
    async fn credit(&self, destination: &Destination, hold: &TransferHold) -> Result<Flow, ClusterError> {
        match destination {
            Destination::Here(ledger) => Ok(ledger.submit(credit_command(hold)?).await?),
            Destination::Peer(node) => {
                let request = PeerRequest::Credit {
                    hold: purse_ledger::flow_to_bytes(&hold.flow),
                    parts: peer::parts_to_wire(&hold.parts),
                    lots: peer::lots_to_wire(&hold.lots),
                };
                self.ask(node, &request).await
            }
        }
    }

    /// The flow of order `order` on `account_id`'s partition.
    async fn order_of(&self, destination: &Destination, account_id: &str, order: String) -> Result<Flow, ClusterError> {
        match destination {
            Destination::Here(ledger) => Ok(ledger.flow(FlowKey::OuterOrderId(order)).await?),
            Destination::Peer(node) => {
                let request = PeerRequest::Order { account_id: account_id.to_owned(), outer_order_id: order };
                self.ask(node, &request).await
            }
        }
    }

    /// Sends `request` to node `node` and waits for its answer (at most twice the journal's
    /// acknowledgement timeout: the other node's own append may wait that long).
    async fn ask(&self, node: &str, request: &PeerRequest) -> Result<Flow, ClusterError> {
        let subject = peer::subject(&self.inner.config.cluster, node);
        let payload = serde_json::to_vec(request).map_err(|error| nats("encoding a request", error))?;
        let timeout = self.inner.config.ack_timeout * 2;
        let message = async_nats::Request::new().payload(payload.into()).timeout(Some(timeout));
        let answer = self
            .inner
            .client
            .send_request(subject.clone(), message)
            .await
            .map_err(|error| nats(&format!("asking node {node} ({subject})"), error))?;
        let reply: PeerReply = serde_json::from_slice(&answer.payload)
            .map_err(|error| nats(&format!("node {node}'s answer is not one"), error))?;
        reply.into_flow(node)
    }

    /// Answers the other nodes' requests (peer.rs): each at once, except a credit of a transfer
    /// whose earlier credit is still being decided, which waits its turn (in arrival order).
    async fn answer_peers(self, mut requests: async_nats::Subscriber) {
        use futures_util::StreamExt;
        loop {
            let message = tokio::select! {
                message = requests.next() => match message {
                    Some(message) => message,
                    None => return,
                },
                () = self.inner.peer_stopped.notified() => return,
            };
            let Some(reply_to) = message.reply else { continue };
            let request = serde_json::from_slice::<PeerRequest>(&message.payload)
                .map_err(|error| ClusterError::InvalidArgument(format!("a peer's request is not one: {error}")))
                .and_then(Asked::of);
            // Waiting here, in the loop, keeps the arrival order of one transfer's requests.
            let turn = match &request {
                Ok(Asked::Credit(command)) => match self.inner.credits.try_lock(&command.outer_order_id) {
                    Some(turn) => Some(turn),
                    None => Some(self.inner.credits.lock(&command.outer_order_id).await),
                },
                _ => None,
            };
            let node = self.clone();
            tokio::spawn(async move {
                let outcome = match request {
                    Ok(request) => node.answer(request).await,
                    Err(error) => Err(error),
                };
                drop(turn);
                let reply = serde_json::to_vec(&PeerReply::of(outcome)).unwrap_or_default();
                // A requester gone (timed out) is not this node's failure: it asks again.
                let _ = node.inner.client.publish(reply_to, reply.into()).await;
            });
        }
    }

    async fn answer(&self, request: Asked) -> Result<Flow, ClusterError> {
        match request {
            Asked::Credit(command) => Ok(self.ledger_of(&command.account_id).await?.submit(*command).await?),
            Asked::Order { account_id, outer_order_id } => {
                Ok(self.ledger_of(&account_id).await?.flow(FlowKey::OuterOrderId(outer_order_id)).await?)
            }
        }
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
        self.inner.peer_stopped.notify_one();
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

/// Moves partition `partition` of cluster `cluster` to node `to` (a running node of the
/// cluster): its owner lets go at its next renewal and `to` takes it over (fencing the old
/// owner through the stream as any take-over does). Waits until `to` holds its lease.
pub async fn move_partition(
    servers: &[String],
    cluster: &str,
    partition: u32,
    to: &str,
    timeout: Duration,
) -> Result<crate::lease::Held, ClusterError> {
    let context = connect(servers).await?;
    let meta = crate::meta::read(&context, cluster).await?;
    if partition >= meta.partitions {
        return Err(ClusterError::InvalidArgument(format!(
            "cluster {cluster} has partitions 0 to {}, not {partition}",
            meta.partitions - 1
        )));
    }
    let leases = Leases::open(&context, cluster, meta.replicas, LEASE_TTL_DEFAULT).await?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(held) = leases.holder(partition).await?.filter(|held| held.holder.node == to) {
            return Ok(held);
        }
        // The request expires with the lease TTL: renewed until the move is done.
        if leases.move_to(partition).await?.as_deref() != Some(to) {
            leases.request_move(partition, to).await?;
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Nats(format!(
                "partition {partition} did not move to node {to} within {timeout:?}: is {to} running?"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every partition of cluster `cluster`: its owner and its stream.
pub async fn status(servers: &[String], cluster: &str) -> Result<Vec<PartitionStatus>, ClusterError> {
    let context = connect(servers).await?;
    let meta = crate::meta::read(&context, cluster).await?;
    let leases = Leases::open(&context, cluster, meta.replicas, LEASE_TTL_DEFAULT).await?;
    let mut partitions = Vec::new();
    for partition in 0..meta.partitions {
        let stream = stream_name(cluster, partition);
        let mut replica_lag = Vec::new();
        let stream_state = match context.get_stream(&stream).await {
            Ok(mut found) => {
                let info = found.info().await.map_err(|error| nats(&format!("reading stream {stream}"), error))?;
                let (leader, replicas) = match &info.cluster {
                    Some(cluster) => {
                        replica_lag = cluster
                            .replicas
                            .iter()
                            .map(|peer| ReplicaLag {
                                name: peer.name.clone(),
                                current: peer.current,
                                offline: peer.offline,
                                lag: peer.lag.unwrap_or(0),
                                active: peer.active,
                            })
                            .collect();
                        (cluster.leader.clone(), cluster.replicas.iter().map(|peer| peer.name.clone()).collect())
                    }
                    None => (None, Vec::new()),
                };
                Some(purse_ledger::jetstream::StreamState { last_sequence: info.state.last_sequence, leader, replicas })
            }
            Err(_) => None,
        };
        let owner = leases.holder(partition).await?;
        partitions.push(PartitionStatus { partition, stream, owner, stream_state, replica_lag });
    }
    Ok(partitions)
}
