//! The [`Journal`] on a NATS JetStream stream (cargo feature `jetstream`; docs/cluster.md §1).
//!
//! One stream per journal: file storage, R3 (by default), `deny_delete`, `deny_purge`, no
//! limits, no rollups. Each journal entry is one message; every append carries
//! `Nats-Expected-Last-Sequence` (the position right before it), so it lands only right after
//! what this writer last saw: a writer taken over is fenced by JetStream itself. A commit is
//! acknowledged only after the PubAck of its last message (a quorum has it).
//!
//! JetStream's default `sync_interval` fsyncs every two minutes and acknowledges before that
//! (nats-server #7564; Jepsen 2025): a power loss then loses acknowledged writes. Connecting
//! therefore checks every server of the stream's group through its monitoring endpoint
//! (`/varz`, `jetstream.config.sync_always`) and refuses to run otherwise.
//!
//! async-nats is asynchronous and the writer is a thread: the client runs on a runtime of its
//! own, on a thread of its own, and the [`Journal`] calls reach it through channels.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};

use crate::error::Error;
use crate::journal::{Journal, JournalEntry, Visit};

/// Where the stream is and how it is made.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// The NATS servers, `nats://host:port` each (any of the cluster's).
    pub servers: Vec<String>,
    /// The stream's name (letters, digits, `-` and `_`); the subject is `purse.<name>`.
    pub stream: String,
    /// Replicas of a stream created here (an existing stream must have as many).
    pub replicas: usize,
    /// Each server's monitoring endpoint, `http://host:port`: where `sync_always` is checked.
    /// Every server of the stream's group must be among them.
    pub monitor: Vec<String>,
    /// How long a publish waits for its acknowledgement before the journal fails.
    pub ack_timeout: Duration,
    /// Whether a missing stream is created (else `INVALID_ARGUMENT`).
    pub create: bool,
    /// How often every server's `sync_always` is checked again while the journal runs (also
    /// at each take-over). A server found not syncing fails the journal: the ledger answers
    /// `STORAGE` until reopened, and reopening refuses while it does not sync.
    pub sync_check_every: Duration,
}

impl JetStreamOptions {
    pub fn new(servers: Vec<String>, stream: &str, monitor: Vec<String>) -> JetStreamOptions {
        JetStreamOptions {
            servers,
            stream: stream.to_owned(),
            replicas: 3,
            monitor,
            ack_timeout: Duration::from_secs(10),
            create: true,
            sync_check_every: Duration::from_secs(60),
        }
    }
}

/// What the client's thread is asked to do.
enum Op {
    TakeOver { owner: String, reply: std::sync::mpsc::Sender<Result<u64, Error>> },
    Append { bytes: Vec<u8>, position: u64, generation: u64 },
    Read { after: u64, until: u64, reply: std::sync::mpsc::SyncSender<Result<(u64, Vec<u8>), Error>> },
    Info { reply: std::sync::mpsc::Sender<Result<StreamState, Error>> },
}

/// The stream as its leader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// The last sequence (the journal's end).
    pub last_sequence: u64,
    /// The server leading the stream's Raft group.
    pub leader: Option<String>,
    /// Its other members.
    pub replicas: Vec<String>,
}

/// The acknowledgements so far, shared by the writer's threads and the client's.
#[derive(Debug, Default)]
struct Acks {
    /// Bumped by each take-over: acknowledgements of an earlier one are ignored.
    generation: u64,
    /// The position the next append lands at; `None` before a take-over.
    next: Option<u64>,
    /// The last position acknowledged.
    acknowledged: u64,
    failed: Option<String>,
}

/// A journal on one JetStream stream. See the module documentation.
#[derive(Debug)]
pub struct JetStreamJournal {
    name: String,
    ops: tokio::sync::mpsc::UnboundedSender<Op>,
    acks: Arc<(Mutex<Acks>, Condvar)>,
    ack_timeout: Duration,
}

fn nats_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::Storage(format!("JetStream: {what}: {error}"))
}

impl JetStreamJournal {
    /// Connects, makes or checks the stream, and checks that every server of its group syncs
    /// every write (`sync_interval: always`).
    pub fn connect(options: JetStreamOptions) -> Result<JetStreamJournal, Error> {
        if options.stream.is_empty()
            || !options.stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::InvalidArgument(format!(
                "stream name {:?}: use letters, digits, '-' and '_' only",
                options.stream
            )));
        }
        let acks: Arc<(Mutex<Acks>, Condvar)> = Arc::default();
        let (ops, receiver) = tokio::sync::mpsc::unbounded_channel();
        let (ready, started) = std::sync::mpsc::channel();
        let thread_acks = Arc::clone(&acks);
        let thread_options = options.clone();
        std::thread::Builder::new()
            .name("purse-jetstream".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(nats_error("starting its runtime", error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match Client::connect(thread_options, thread_acks).await {
                        Ok(client) => {
                            let _ = ready.send(Ok(()));
                            client
                        }
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    client.serve(receiver).await;
                });
            })
            .map_err(|error| Error::Storage(format!("starting the JetStream thread: {error}")))?;
        started.recv().map_err(|_| Error::Storage("the JetStream thread stopped while connecting".into()))??;
        Ok(JetStreamJournal { name: options.stream, ops, acks, ack_timeout: options.ack_timeout })
    }

    fn send(&self, op: Op) -> Result<(), Error> {
        self.ops.send(op).map_err(|_| Error::Storage("the JetStream thread stopped".into()))
    }

    /// The stream's last sequence, leader and replicas, from its leader.
    pub fn state(&self) -> Result<StreamState, Error> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Op::Info { reply })?;
        answer.recv().map_err(|_| Error::Storage("the JetStream thread stopped".into()))?
    }
}

impl Journal for JetStreamJournal {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn take_over(&self, owner: &str) -> Result<u64, Error> {
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Op::TakeOver { owner: owner.to_owned(), reply })?;
        answer.recv().map_err(|_| Error::Storage("the JetStream thread stopped".into()))?
    }

    fn read(&self, after: u64, until: u64, visit: &mut Visit<'_>) -> Result<(), Error> {
        let (reply, entries) = std::sync::mpsc::sync_channel(64);
        self.send(Op::Read { after, until, reply })?;
        for expected in after + 1..=until {
            let (position, bytes) =
                entries.recv().map_err(|_| Error::Storage("the JetStream thread stopped".into()))??;
            if position != expected {
                return Err(Error::Corruption(format!("journal {}: read {position} for {expected}", self.name)));
            }
            visit(position, &bytes)?;
        }
        Ok(())
    }

    fn append(&self, entry: Vec<u8>) -> Result<(), Error> {
        let (lock, _) = &*self.acks;
        let mut acks = lock.lock().map_err(|_| Error::Storage("JetStream acks lock poisoned".into()))?;
        if let Some(reason) = &acks.failed {
            return Err(Error::Storage(reason.clone()));
        }
        let Some(position) = acks.next else {
            return Err(Error::Storage("appending to a journal not taken over".into()));
        };
        acks.next = Some(position + 1);
        let generation = acks.generation;
        drop(acks);
        self.send(Op::Append { bytes: entry, position, generation })
    }

    fn sync(&self) -> Result<u64, Error> {
        let (lock, changed) = &*self.acks;
        let mut acks = lock.lock().map_err(|_| Error::Storage("JetStream acks lock poisoned".into()))?;
        let Some(next) = acks.next else { return Err(Error::Storage("syncing a journal not taken over".into())) };
        // The acknowledgement timeout bounds each publish; this bounds the wait as a whole.
        let deadline = std::time::Instant::now() + self.ack_timeout * 2;
        while acks.failed.is_none() && acks.acknowledged + 1 < next {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                let reason = format!(
                    "journal {}: no acknowledgement of {} within {:?}",
                    self.name,
                    next - 1,
                    self.ack_timeout * 2
                );
                acks.failed = Some(reason);
                break;
            }
            acks =
                changed.wait_timeout(acks, left).map_err(|_| Error::Storage("JetStream acks lock poisoned".into()))?.0;
        }
        match &acks.failed {
            Some(reason) => Err(Error::Storage(reason.clone())),
            None => Ok(acks.acknowledged),
        }
    }
}

/// A NATS client on `servers` (`nats://host:port` each), with a 5 s connection timeout: a bad
/// address is `INVALID_ARGUMENT`, no server reached `STORAGE`.
pub async fn connect_client(servers: &[String]) -> Result<async_nats::Client, Error> {
    let addresses: Vec<async_nats::ServerAddr> = servers
        .iter()
        .map(|server| {
            server.parse().map_err(|error| Error::InvalidArgument(format!("NATS server {server:?}: {error}")))
        })
        .collect::<Result<_, _>>()?;
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(addresses)
        .await
        .map_err(|error| nats_error("connecting", error))
}

/// The client's side, on its own thread.
struct Client {
    context: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    options: JetStreamOptions,
    acks: Arc<(Mutex<Acks>, Condvar)>,
    /// Acknowledgements to wait for, in publish order.
    pending: tokio::sync::mpsc::UnboundedSender<(u64, u64, jetstream::context::PublishAckFuture)>,
}

impl Client {
    async fn connect(options: JetStreamOptions, acks: Arc<(Mutex<Acks>, Condvar)>) -> Result<Client, Error> {
        let client = connect_client(&options.servers).await?;
        let context = jetstream::ContextBuilder::new()
            .timeout(options.ack_timeout)
            .ack_timeout(options.ack_timeout)
            .build(client);
        let subject = format!("purse.{}", options.stream);
        let stream = match context.get_stream(&options.stream).await {
            Ok(stream) => stream,
            Err(error) if is_not_found(&error) && options.create => context
                .create_stream(stream::Config {
                    name: options.stream.clone(),
                    subjects: vec![subject.clone()],
                    storage: stream::StorageType::File,
                    num_replicas: options.replicas,
                    deny_delete: true,
                    deny_purge: true,
                    allow_rollup: false,
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                })
                .await
                .map_err(|error| nats_error(&format!("creating stream {}", options.stream), error))?,
            Err(error) if is_not_found(&error) => {
                return Err(Error::InvalidArgument(format!("JetStream has no stream {}", options.stream)))
            }
            Err(error) => return Err(nats_error(&format!("finding stream {}", options.stream), error)),
        };
        let (pending, waiting) = tokio::sync::mpsc::unbounded_channel();
        let mut client = Client { context, stream, subject, options, acks: Arc::clone(&acks), pending };
        client.check_stream().await?;
        client.check_sync_always().await?;
        tokio::spawn(wait_for_acks(waiting, acks, client.options.stream.clone()));
        Ok(client)
    }

    /// The stream must be what this journal needs: nothing may ever remove a message.
    async fn check_stream(&mut self) -> Result<(), Error> {
        let info = self.stream.info().await.map_err(|error| nats_error("reading the stream's info", error))?;
        let config = &info.config;
        let wrong = |what: &str| {
            Err(Error::InvalidArgument(format!("stream {} cannot hold a purse journal: {what}", self.options.stream)))
        };
        if !config.deny_delete || !config.deny_purge {
            return wrong("it allows deleting or purging messages (deny_delete and deny_purge must be set)");
        }
        if config.allow_rollup {
            return wrong("it allows rollups");
        }
        if config.max_messages > 0
            || config.max_bytes > 0
            || !config.max_age.is_zero()
            || config.max_messages_per_subject > 0
        {
            return wrong("it has limits that would drop old messages");
        }
        if config.storage != stream::StorageType::File {
            return wrong("it is not on file storage");
        }
        if config.num_replicas != self.options.replicas {
            return wrong(&format!("it has {} replicas, not {}", config.num_replicas, self.options.replicas));
        }
        if config.subjects != [self.subject.clone()] {
            return wrong(&format!("its subjects are {:?}, not [{:?}]", config.subjects, self.subject));
        }
        Ok(())
    }

    /// Every server of the stream's group that is up reports `jetstream.config.sync_always` in
    /// `/varz`, and every endpoint that answers says so. A server that is down (offline in the
    /// stream's info, its endpoint not answering) acknowledges nothing meanwhile: it is checked
    /// when it answers again, at the next periodic check.
    async fn check_sync_always(&mut self) -> Result<(), Error> {
        let info = self.stream.info().await.map_err(|error| nats_error("reading the stream's info", error))?;
        let mut peers: Vec<String> = Vec::new();
        if let Some(cluster) = &info.cluster {
            peers.extend(cluster.leader.clone());
            // A replica not heard from for a few seconds, or not current, is taken as down: if it
            // is up after all, its endpoint answers and is checked below like every other.
            let up = |peer: &&stream::PeerInfo| !peer.offline && peer.current && peer.active < Duration::from_secs(3);
            peers.extend(cluster.replicas.iter().filter(up).map(|peer| peer.name.clone()));
        }
        if self.options.monitor.is_empty() {
            return Err(Error::InvalidArgument(
                "no NATS monitoring endpoint given: sync_interval: always cannot be checked, and without it \
                 JetStream acknowledges writes it has not synced (nats-server #7564)"
                    .into(),
            ));
        }
        let mut syncing = Vec::new();
        let mut silent = Vec::new();
        for url in &self.options.monitor {
            let varz = match http_get_json(url, "/varz").await {
                Ok(varz) => varz,
                Err(error) => {
                    silent.push(error.to_string());
                    continue;
                }
            };
            let name = varz.get("server_name").and_then(|name| name.as_str()).unwrap_or_default().to_owned();
            let always =
                varz.pointer("/jetstream/config/sync_always").and_then(serde_json::Value::as_bool).unwrap_or(false);
            if !always {
                return Err(Error::InvalidArgument(format!(
                    "NATS server {name} ({url}) does not run with sync_interval: always: it would acknowledge \
                     writes it has not synced (nats-server #7564); purse refuses to run on it"
                )));
            }
            syncing.push(name);
        }
        if peers.is_empty() {
            // A server without clustering: itself.
            return Ok(());
        }
        if let Some(unchecked) = peers.iter().find(|peer| !syncing.contains(peer)) {
            if let Some(why) = silent.first() {
                // Perhaps that server is down and not yet offline in the stream's info: a
                // STORAGE answer, for the caller to retry.
                return Err(Error::Storage(format!(
                    "stream {} is on server {unchecked}, whose sync_interval could not be checked: {why}",
                    self.options.stream
                )));
            }
            return Err(Error::InvalidArgument(format!(
                "stream {} is on server {unchecked}, whose monitoring endpoint was not given or did not answer: \
                 its sync_interval cannot be checked",
                self.options.stream
            )));
        }
        Ok(())
    }

    async fn serve(mut self, mut ops: tokio::sync::mpsc::UnboundedReceiver<Op>) {
        let mut checks = tokio::time::interval(self.options.sync_check_every);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checks.tick().await;
        loop {
            let op = tokio::select! {
                op = ops.recv() => op,
                _ = checks.tick() => {
                    // Only a server that answers that it does not sync fails the journal; one
                    // that does not answer is checked again at the next tick.
                    if let Err(error @ Error::InvalidArgument(_)) = self.check_sync_always().await {
                        let generation = self.acks.0.lock().map_or(0, |acks| acks.generation);
                        fail(&self.acks, generation, &format!("JetStream: {error}"));
                    }
                    continue;
                }
            };
            let Some(op) = op else { return };
            match op {
                Op::TakeOver { owner, reply } => {
                    let _ = reply.send(self.take_over(&owner).await);
                }
                Op::Append { bytes, position, generation } => self.publish(bytes, position, generation).await,
                Op::Read { after, until, reply } => {
                    for position in after + 1..=until {
                        let read = self
                            .stream
                            .get_raw_message(position)
                            .await
                            .map(|message| (position, message.payload.to_vec()))
                            .map_err(|error| nats_error(&format!("reading message {position}"), error));
                        let failed = read.is_err();
                        if reply.send(read).is_err() || failed {
                            break;
                        }
                    }
                }
                Op::Info { reply } => {
                    let _ = reply.send(self.state().await);
                }
            }
        }
    }

    async fn state(&mut self) -> Result<StreamState, Error> {
        let info = self.stream.info().await.map_err(|error| nats_error("reading the stream's info", error))?;
        let (leader, replicas) = match &info.cluster {
            Some(cluster) => (cluster.leader.clone(), cluster.replicas.iter().map(|peer| peer.name.clone()).collect()),
            None => (None, Vec::new()),
        };
        Ok(StreamState { last_sequence: info.state.last_sequence, leader, replicas })
    }

    /// Appends the epoch marker right after the stream's current end (retrying while another
    /// writer is still appending), then starts a new generation of appends after it.
    async fn take_over(&mut self, owner: &str) -> Result<u64, Error> {
        self.check_sync_always().await?;
        let marker = JournalEntry::Epoch(owner.to_owned()).encode();
        let mut tries = 0;
        loop {
            tries += 1;
            let last = self.state().await?.last_sequence;
            let publish = PublishMessage::build().payload(marker.clone().into()).expected_last_sequence(last);
            let acked = async { self.context.send_publish(self.subject.clone(), publish).await?.await }.await;
            match acked {
                Ok(ack) => {
                    let (lock, changed) = &*self.acks;
                    let mut acks = lock.lock().map_err(|_| Error::Storage("JetStream acks lock poisoned".into()))?;
                    acks.generation += 1;
                    acks.next = Some(ack.sequence + 1);
                    acks.acknowledged = ack.sequence;
                    acks.failed = None;
                    changed.notify_all();
                    return Ok(ack.sequence);
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence && tries < 50 => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(nats_error("appending the epoch marker", error)),
            }
        }
    }

    async fn publish(&mut self, bytes: Vec<u8>, position: u64, generation: u64) {
        let publish = PublishMessage::build().payload(bytes.into()).expected_last_sequence(position - 1);
        match self.context.send_publish(self.subject.clone(), publish).await {
            Ok(ack) => {
                let _ = self.pending.send((position, generation, ack));
            }
            Err(error) => fail(&self.acks, generation, &describe(&self.options.stream, position, &error)),
        }
    }
}

fn describe(stream: &str, position: u64, error: &jetstream::context::PublishError) -> String {
    if error.kind() == PublishErrorKind::WrongLastSequence {
        format!("journal {stream}: fenced: another writer appended at {position}; reopen to take the journal over")
    } else {
        format!("journal {stream}: appending at {position}: {error}")
    }
}

fn fail(acks: &(Mutex<Acks>, Condvar), generation: u64, reason: &str) {
    let (lock, changed) = acks;
    if let Ok(mut acks) = lock.lock() {
        if acks.generation == generation && acks.failed.is_none() {
            acks.failed = Some(reason.to_owned());
        }
        changed.notify_all();
    }
}

/// Waits for each publish's acknowledgement in order and records it.
async fn wait_for_acks(
    mut waiting: tokio::sync::mpsc::UnboundedReceiver<(u64, u64, jetstream::context::PublishAckFuture)>,
    acks: Arc<(Mutex<Acks>, Condvar)>,
    stream: String,
) {
    while let Some((position, generation, ack)) = waiting.recv().await {
        match ack.await {
            Ok(ack) if ack.sequence == position => {
                let (lock, changed) = &*acks;
                if let Ok(mut acks) = lock.lock() {
                    if acks.generation == generation && acks.failed.is_none() {
                        acks.acknowledged = position;
                    }
                    changed.notify_all();
                }
            }
            Ok(ack) => fail(
                &acks,
                generation,
                &format!(
                    "JetStream acknowledged the append at {position} at sequence {} (another writer?)",
                    ack.sequence
                ),
            ),
            Err(error) => fail(&acks, generation, &describe(&stream, position, &error)),
        }
    }
}

fn is_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(inner)
        if inner.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// GET `path` of a NATS monitoring endpoint `http://host:port`, as JSON.
async fn http_get_json(base: &str, path: &str) -> Result<serde_json::Value, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .ok_or_else(|| Error::InvalidArgument(format!("NATS monitoring endpoint {base:?}: give http://host:port")))?;
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| Error::Storage(format!("NATS monitoring endpoint {base}: no answer within 5 s")))?
        .map_err(|error| Error::Storage(format!("NATS monitoring endpoint {base}: {error}")))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| Error::Storage(format!("NATS monitoring endpoint {base}{path}: not an HTTP answer")))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        let status = head.lines().next().unwrap_or_default();
        return Err(Error::Storage(format!("NATS monitoring endpoint {base}{path}: {status}")));
    }
    serde_json::from_str(body)
        .map_err(|error| Error::Storage(format!("NATS monitoring endpoint {base}{path}: {error}")))
}

/// A real 3-node cluster on 127.0.0.1 for tests, started by the repository's
/// `.ci/nats-cluster` (the pinned nats-server, `sync_interval: always`) and stopped on drop.
/// One runs at a time in a process.
#[doc(hidden)]
pub mod test_cluster {
    use std::path::{Path, PathBuf};

    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[derive(Debug)]
    pub struct Cluster {
        pub dir: PathBuf,
        _dir: Option<tempfile_dir::Dir>,
        pub base: u16,
        _serial: tokio::sync::MutexGuard<'static, ()>,
    }

    mod tempfile_dir {
        /// A directory removed on drop.
        #[derive(Debug)]
        pub struct Dir(pub std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/nats-cluster")
    }

    impl Cluster {
        /// Starts a cluster with client ports `base..base + 3` (routes +2000, monitoring +4000)
        /// in a new directory under `parent`; the binary is installed into `install` once.
        pub async fn start(base: u16, parent: &Path, install: &Path) -> Cluster {
            let serial = SERIAL.lock().await;
            let dir = parent.join(format!("nats-{base}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("making the cluster's directory");
            let cluster = Cluster { _dir: Some(tempfile_dir::Dir(dir.clone())), dir, base, _serial: serial };
            let output = cluster.run("start", install);
            assert!(
                output.status.success(),
                "the cluster did not start: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            cluster.wait_for_placement().await;
            cluster
        }

        /// Waits until an R3 stream can be placed. Right after a start the meta leader may not
        /// know every peer's JetStream yet and refuses with "no suitable peers for placement,
        /// peer offline" (seen in CI and in a soak), though every node is up and current.
        async fn wait_for_placement(&self) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let client = async_nats::connect(self.servers()[0].as_str()).await.expect("connecting to the cluster");
            let context = async_nats::jetstream::new(client);
            let probe = async_nats::jetstream::stream::Config {
                name: "PURSE_PLACEMENT_PROBE".into(),
                subjects: vec!["purse-placement-probe".into()],
                num_replicas: 3,
                ..Default::default()
            };
            while let Err(error) = context.create_stream(probe.clone()).await {
                assert!(std::time::Instant::now() < deadline, "no R3 stream can be placed after 30 s: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            context.delete_stream("PURSE_PLACEMENT_PROBE").await.expect("deleting the placement probe");
        }

        /// Runs `.ci/nats-cluster COMMAND` on this cluster (`start` restarts killed nodes).
        pub fn run(&self, command: &str, install: &Path) -> std::process::Output {
            std::process::Command::new("bash")
                .arg(script())
                .arg(command)
                .arg(&self.dir)
                .env("NATS_PORT_BASE", self.base.to_string())
                .env("NATS_LIFETIME", "600")
                .env("NATS_INSTALL_DIR", install)
                .output()
                .expect("running .ci/nats-cluster")
        }

        pub fn servers(&self) -> Vec<String> {
            (0..3).map(|n| format!("nats://127.0.0.1:{}", self.base + n)).collect()
        }

        pub fn monitor(&self) -> Vec<String> {
            (0..3).map(|n| format!("http://127.0.0.1:{}", self.base + 4000 + n)).collect()
        }

        /// SIGKILL of the node named `purse-nN`.
        pub fn kill(&self, server_name: &str) {
            kill(&self.dir, server_name);
        }
    }

    /// SIGKILL of the node named `purse-nN` of the cluster in `dir`.
    pub fn kill(dir: &Path, server_name: &str) {
        let n = server_name.strip_prefix("purse-n").expect("a node of this cluster");
        let pid = std::fs::read_to_string(dir.join(format!("n{n}/nats.pid"))).expect("the node's pid file");
        let status = std::process::Command::new("kill").arg("-9").arg(pid.trim()).status().expect("running kill");
        assert!(status.success(), "kill -9 {pid}");
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            let _ = std::process::Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(&self.dir)
                .env("NATS_PORT_BASE", self.base.to_string())
                .output();
        }
    }
}
