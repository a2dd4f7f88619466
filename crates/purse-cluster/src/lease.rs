//! Partition leases: which node serves a partition, in a KV bucket whose entries expire after
//! the lease's time to live unless renewed. A lease is for liveness only: correctness comes from
//! the journal's fence (a new owner's epoch marker makes the old owner's appends fail).
//!
//! Take: `create` the partition's key (it exists only while its holder renews it); the revision
//! is the lease's epoch. Renew: `update` at the last revision, every third of the TTL; if that
//! fails the lease is lost and the node stops serving the partition at once. Release: delete
//! at the revision.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use crate::error::{nats, ClusterError};

/// The lease's time to live by default.
pub const LEASE_TTL_DEFAULT: Duration = Duration::from_secs(10);

/// Who holds a partition's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    /// Where the node answers requests (`purse serve --advertise`), if it said.
    pub address: Option<String>,
}

/// A lease's current entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub holder: Holder,
    pub revision: u64,
    /// Time since its last renewal.
    pub age: Duration,
}

/// The lease bucket of one cluster.
#[derive(Debug, Clone)]
pub struct Leases {
    store: kv::Store,
}

fn key(partition: u32) -> String {
    format!("p{partition:04}")
}

/// The key of a request to move a partition to a node (`purse cluster move`). It lives in the
/// lease bucket, so it expires after one TTL: the owner lets go within a third of it, and the
/// node named takes the partition at its next renewal; others leave it alone meanwhile.
fn move_key(partition: u32) -> String {
    format!("move-p{partition:04}")
}

#[derive(Debug, Serialize, Deserialize)]
struct Move {
    to: String,
}

impl Leases {
    pub async fn open(
        context: &jetstream::Context,
        cluster: &str,
        replicas: usize,
        ttl: Duration,
    ) -> Result<Leases, ClusterError> {
        let config = kv::Config {
            bucket: crate::meta::bucket(cluster, "leases"),
            history: 1,
            max_age: ttl,
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let store = match context.get_key_value(config.bucket.clone()).await {
            Ok(store) => store,
            Err(_) => context.create_key_value(config).await.map_err(|error| nats("making the lease bucket", error))?,
        };
        Ok(Leases { store })
    }

    /// Takes partition `partition`'s lease if nobody holds it; its revision (the epoch).
    pub async fn take(&self, partition: u32, holder: &Holder) -> Result<Option<u64>, ClusterError> {
        let bytes = serde_json::to_vec(holder).expect("a holder serializes");
        match self.store.create(key(partition), bytes.into()).await {
            Ok(revision) => Ok(Some(revision)),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(error) => Err(nats(&format!("taking the lease of partition {partition}"), error)),
        }
    }

    /// Renews a lease held at `revision`; the new revision, or `None` if it was lost.
    pub async fn renew(&self, partition: u32, holder: &Holder, revision: u64) -> Result<Option<u64>, ClusterError> {
        let bytes = serde_json::to_vec(holder).expect("a holder serializes");
        match self.store.update(key(partition), bytes.into(), revision).await {
            Ok(revision) => Ok(Some(revision)),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(error) => Err(nats(&format!("renewing the lease of partition {partition}"), error)),
        }
    }

    /// Gives a lease up (at its revision, so a lease taken over meanwhile is left alone).
    pub async fn release(&self, partition: u32, revision: u64) -> Result<(), ClusterError> {
        self.store
            .delete_expect_revision(key(partition), Some(revision))
            .await
            .map_err(|error| nats(&format!("releasing the lease of partition {partition}"), error))
    }

    /// Asks the owner of `partition` to let go of it, for node `to` to take it.
    pub async fn request_move(&self, partition: u32, to: &str) -> Result<(), ClusterError> {
        let bytes = serde_json::to_vec(&Move { to: to.to_owned() }).expect("a move serializes");
        self.store
            .put(move_key(partition), bytes.into())
            .await
            .map(drop)
            .map_err(|error| nats(&format!("asking to move partition {partition}"), error))
    }

    /// The node a pending move of `partition` is for, if one is pending.
    pub async fn move_to(&self, partition: u32) -> Result<Option<String>, ClusterError> {
        let found: Option<(Move, kv::Entry)> =
            self.read(move_key(partition), &format!("the move of partition {partition}")).await?;
        Ok(found.map(|(request, _)| request.to))
    }

    /// The value under `key` (`what` it is, for errors), with its entry; `None` if absent.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
        what: &str,
    ) -> Result<Option<(T, kv::Entry)>, ClusterError> {
        let entry = self.store.entry(key).await.map_err(|error| nats(&format!("reading {what}"), error))?;
        let Some(entry) = entry.filter(|entry| entry.operation == kv::Operation::Put) else { return Ok(None) };
        let value = serde_json::from_slice(&entry.value)
            .map_err(|error| ClusterError::Nats(format!("{what} is not readable: {error}")))?;
        Ok(Some((value, entry)))
    }

    /// Forgets a move once done.
    pub async fn clear_move(&self, partition: u32) -> Result<(), ClusterError> {
        self.store
            .delete(move_key(partition))
            .await
            .map_err(|error| nats(&format!("clearing the move of partition {partition}"), error))
    }

    /// Who holds partition `partition`'s lease, if anyone.
    pub async fn holder(&self, partition: u32) -> Result<Option<Held>, ClusterError> {
        let found: Option<(Holder, kv::Entry)> =
            self.read(key(partition), &format!("the lease of partition {partition}")).await?;
        Ok(found.map(|(holder, entry)| {
            let age = (time::OffsetDateTime::now_utc() - entry.created).try_into().unwrap_or_default();
            Held { holder, revision: entry.revision, age }
        }))
    }
}
