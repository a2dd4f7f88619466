//! [`FlowMap`]: a map keyed by flow id whose clone is cheap (copy on write by range of ids).
//!
//! The state keeps what each order took from which lot, and each hold's expiry, by flow id: a
//! million-flow ledger holds hundreds of thousands of them. The ledger copies its state to
//! write a snapshot beside the writer, so the map is split into shards of [`FLOW_IDS_PER_SHARD`]
//! consecutive flow ids behind `Arc`s: a clone shares them, and a change copies only the shard
//! it lands in, the first time after a clone took it. New flows land in the newest shard; a
//! refund of an old order copies the few hundred entries of that order's shard.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

type Shard<V> = HashMap<u64, V, foldhash::quality::RandomState>;

const FLOW_IDS_PER_SHARD: u64 = 1 << 10;

#[derive(Clone)]
pub(crate) struct FlowMap<V> {
    /// By `flow_id / FLOW_IDS_PER_SHARD`; a shard is dropped once empty. A map, not a vector:
    /// flow ids come from disk too, before they are checked against the log.
    shards: Shard<Arc<Shard<V>>>,
}

impl<V> Default for FlowMap<V> {
    fn default() -> Self {
        FlowMap { shards: HashMap::default() }
    }
}

fn shard_of(flow_id: u64) -> u64 {
    flow_id / FLOW_IDS_PER_SHARD
}

impl<V> FlowMap<V> {
    pub fn get(&self, flow_id: &u64) -> Option<&V> {
        self.shards.get(&shard_of(*flow_id))?.get(flow_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &V)> + '_ {
        self.shards.values().flat_map(|shard| shard.iter())
    }

    pub fn keys(&self) -> impl Iterator<Item = &u64> + '_ {
        self.iter().map(|(flow_id, _)| flow_id)
    }

    pub fn len(&self) -> usize {
        self.shards.values().map(|shard| shard.len()).sum()
    }
}

impl<V: Clone> FlowMap<V> {
    pub fn insert(&mut self, flow_id: u64, value: V) -> Option<V> {
        Arc::make_mut(self.shards.entry(shard_of(flow_id)).or_default()).insert(flow_id, value)
    }

    pub fn remove(&mut self, flow_id: &u64) -> Option<V> {
        let key = shard_of(*flow_id);
        let shard = self.shards.get_mut(&key)?;
        // Only a shard that holds it is copied.
        if !shard.contains_key(flow_id) {
            return None;
        }
        let removed = Arc::make_mut(shard).remove(flow_id);
        if shard.is_empty() {
            self.shards.remove(&key);
        }
        removed
    }
}

impl<V: PartialEq> PartialEq for FlowMap<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(flow_id, value)| other.get(flow_id) == Some(value))
    }
}

impl<V: Eq> Eq for FlowMap<V> {}

impl<V: fmt::Debug> fmt::Debug for FlowMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_what_the_map_held() {
        let mut map = FlowMap::default();
        assert_eq!(map.remove(&1), None);
        assert_eq!((map.get(&1), map.len()), (None, 0));
        for flow_id in 1..=3000u64 {
            assert_eq!(map.insert(flow_id, flow_id * 10), None);
        }
        let snapshot = map.clone();
        assert_eq!(map.insert(7, 0), Some(70));
        assert_eq!(map.remove(&8), Some(80));
        assert_eq!(map.remove(&8), None);
        map.insert(5000, 1);
        assert_eq!((snapshot.len(), map.len()), (3000, 3000));
        assert!((1..=3000u64).all(|flow_id| snapshot.get(&flow_id) == Some(&(flow_id * 10))));
        let mut emptied = map.clone();
        for flow_id in 1..FLOW_IDS_PER_SHARD {
            emptied.remove(&flow_id);
        }
        // The first shard held 1..=1023 but 8; the others 1024..=3000 and 5000.
        assert_eq!((map.shards.len(), emptied.shards.len(), emptied.len()), (4, 3, 3000 - 1022), "an empty shard goes");
        assert_eq!((map.get(&7), map.get(&8), map.get(&5000)), (Some(&0), None, Some(&1)));
        assert_ne!(map, snapshot);
        let mut back = map.clone();
        back.insert(7, 70);
        back.insert(8, 80);
        back.remove(&5000);
        assert_eq!(back, snapshot, "equal whatever the history");
    }
}
