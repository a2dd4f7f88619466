//! The cluster's meta: its partition count and hash, fixed when it is made
//! (`purse cluster init`), in a KV bucket of its own.

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};

use crate::error::{nats, ClusterError};

/// The version of [`Meta`]'s layout.
pub const META_FORMAT: u32 = 1;
const META_KEY: &str = "ledger";

/// What every node of a cluster agrees on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    /// Partitions, fixed at creation.
    pub partitions: u32,
    /// The account → partition hash ([`crate::partition::HASH_NAME`]).
    pub hash: String,
    /// Replicas of each partition's stream.
    pub replicas: usize,
}

/// Cluster names become stream and bucket names: letters, digits, `-` and `_`.
pub fn check_name(cluster: &str) -> Result<(), ClusterError> {
    if cluster.is_empty()
        || cluster.len() > 64
        || !cluster.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ClusterError::InvalidArgument(format!(
            "cluster name {cluster:?}: use 1 to 64 letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

pub(crate) fn bucket(cluster: &str, what: &str) -> String {
    format!("purse_{cluster}_{what}")
}

/// Makes the cluster's meta; an existing one that says the same is fine, one that differs is
/// refused (the partition count never changes).
pub async fn init(
    context: &jetstream::Context,
    cluster: &str,
    partitions: u32,
    replicas: usize,
) -> Result<Meta, ClusterError> {
    // Servers just started may still time JetStream requests out: NATS errors are retried for
    // a while (making the bucket and the key again is harmless), the last one reported.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match init_once(context, cluster, partitions, replicas).await {
            Err(ClusterError::Nats(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            outcome => return outcome,
        }
    }
}

async fn init_once(
    context: &jetstream::Context,
    cluster: &str,
    partitions: u32,
    replicas: usize,
) -> Result<Meta, ClusterError> {
    check_name(cluster)?;
    if partitions == 0 || partitions > 4096 {
        return Err(ClusterError::InvalidArgument(format!("{partitions} partitions: give 1 to 4096")));
    }
    let store = context
        .create_key_value(kv::Config {
            bucket: bucket(cluster, "meta"),
            history: 1,
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|error| nats("making the meta bucket", error))?;
    let meta = Meta { format: META_FORMAT, partitions, hash: crate::partition::HASH_NAME.into(), replicas };
    let bytes = serde_json::to_vec(&meta).expect("meta serializes");
    match store.create(META_KEY, bytes.into()).await {
        Ok(_) => Ok(meta),
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
            let existing = read_from(&store, cluster).await?;
            if existing != meta {
                return Err(ClusterError::InvalidArgument(format!(
                    "cluster {cluster} exists with {} partitions and {} replicas; they never change",
                    existing.partitions, existing.replicas
                )));
            }
            Ok(existing)
        }
        Err(error) => Err(nats("writing the cluster meta", error)),
    }
}

/// The meta of an existing cluster.
pub async fn read(context: &jetstream::Context, cluster: &str) -> Result<Meta, ClusterError> {
    check_name(cluster)?;
    let store = context.get_key_value(bucket(cluster, "meta")).await.map_err(|error| {
        // A bucket that does not exist is a cluster never made; anything else (a timeout while
        // the servers elect a leader) is NATS's, and worth a retry.
        let text =
            format!("{error}: {}", std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default());
        if text.contains("not found") {
            ClusterError::InvalidArgument(format!(
                "no cluster {cluster} on these servers: make it with `purse cluster init`"
            ))
        } else {
            nats(&format!("opening cluster {cluster}'s meta"), text)
        }
    })?;
    read_from(&store, cluster).await
}

async fn read_from(store: &kv::Store, cluster: &str) -> Result<Meta, ClusterError> {
    let bytes =
        store.get(META_KEY).await.map_err(|error| nats("reading the cluster meta", error))?.ok_or_else(|| {
            ClusterError::InvalidArgument(format!("cluster {cluster} has no meta: make it with `purse cluster init`"))
        })?;
    let meta: Meta = serde_json::from_slice(&bytes)
        .map_err(|error| ClusterError::Nats(format!("cluster {cluster}'s meta is not readable: {error}")))?;
    if meta.format != META_FORMAT || meta.hash != crate::partition::HASH_NAME {
        return Err(ClusterError::InvalidArgument(format!(
            "cluster {cluster}'s meta has format {} and hash {:?}; this build reads format {META_FORMAT} with {:?}",
            meta.format,
            meta.hash,
            crate::partition::HASH_NAME
        )));
    }
    Ok(meta)
}
