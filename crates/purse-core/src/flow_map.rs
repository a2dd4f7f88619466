//! [`FlowMap`]: a map keyed by flow id whose clone is cheap (copy on write by range of ids).
//!
//! The state keeps what each order took from which lot, and each hold's expiry, by flow id: a
//! million-flow ledger holds hundreds of thousands of them. The ledger copies its state to
//! write a snapshot beside the writer, so the map is split into shards of [`FLOW_IDS_PER_SHARD`]
//! consecutive flow ids behind `Arc`s: a clone shares them. A change to a shard a clone still
//! shares goes to an overlay of single entries instead (as in `StrTable`), moved back into the
//! shards by [`FlowMap::settle`] once the clone is gone: a refund of an old order then copies
//! one take list, not its shard's thousand.

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
    /// Flow ids changed while a clone shared their shard: the value, or `None` if removed.
    /// Where a flow id has one, it is what the map holds for it, whatever its shard says.
    overlay: Shard<Option<V>>,
}

impl<V> Default for FlowMap<V> {
    fn default() -> Self {
        FlowMap { shards: HashMap::default(), overlay: HashMap::default() }
    }
}

fn shard_of(flow_id: u64) -> u64 {
    flow_id / FLOW_IDS_PER_SHARD
}

impl<V> FlowMap<V> {
    pub fn get(&self, flow_id: &u64) -> Option<&V> {
        if let Some(overlaid) = self.overlay.get(flow_id) {
            return overlaid.as_ref();
        }
        self.in_shard(flow_id)
    }

    fn in_shard(&self, flow_id: &u64) -> Option<&V> {
        self.shards.get(&shard_of(*flow_id))?.get(flow_id)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &V)> + '_ {
        let in_shards = self.shards.values().flat_map(|shard| shard.iter());
        let overlay = &self.overlay;
        in_shards
            .filter(move |(flow_id, _)| !overlay.contains_key(flow_id))
            .chain(overlay.iter().filter_map(|(flow_id, value)| Some((flow_id, value.as_ref()?))))
    }

    pub fn keys(&self) -> impl Iterator<Item = &u64> + '_ {
        self.iter().map(|(flow_id, _)| flow_id)
    }

    pub fn len(&self) -> usize {
        let in_shards: usize = self.shards.values().map(|shard| shard.len()).sum();
        let (mut added, mut removed) = (0, 0);
        for (flow_id, value) in &self.overlay {
            match (self.in_shard(flow_id).is_some(), value.is_some()) {
                (false, true) => added += 1,
                (true, false) => removed += 1,
                _ => {}
            }
        }
        in_shards + added - removed
    }

    /// Entries held in the overlay (changed while a clone shared their shard, not yet settled).
    pub fn overlaid(&self) -> usize {
        self.overlay.len()
    }
}

impl<V: Clone> FlowMap<V> {
    pub fn insert(&mut self, flow_id: u64, value: V) -> Option<V> {
        if let Some(overlaid) = self.overlay.get_mut(&flow_id) {
            return overlaid.replace(value);
        }
        let shard = self.shards.entry(shard_of(flow_id)).or_default();
        match Arc::get_mut(shard) {
            Some(shard) => shard.insert(flow_id, value),
            None => {
                let before = shard.get(&flow_id).cloned();
                self.overlay.insert(flow_id, Some(value));
                before
            }
        }
    }

    pub fn remove(&mut self, flow_id: &u64) -> Option<V> {
        if let Some(overlaid) = self.overlay.get_mut(flow_id) {
            return overlaid.take();
        }
        let key = shard_of(*flow_id);
        let shard = self.shards.get_mut(&key)?;
        if !shard.contains_key(flow_id) {
            return None;
        }
        let Some(owned) = Arc::get_mut(shard) else {
            let before = shard.get(flow_id).cloned();
            self.overlay.insert(*flow_id, None);
            return before;
        };
        let removed = owned.remove(flow_id);
        if owned.is_empty() {
            self.shards.remove(&key);
        }
        removed
    }

    /// Moves what the overlay holds back into the shards no clone shares any more; what a clone
    /// still shares stays. The ledger calls it once a snapshot's copy is dropped.
    pub fn settle(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let shards = &mut self.shards;
        self.overlay.retain(|&flow_id, value| {
            let key = shard_of(flow_id);
            let Some(shard) = shards.get_mut(&key) else {
                // Only a shard that held the flow id sends a change to the overlay, and a shared
                // one is never dropped; should it be gone, a value makes a new shard.
                if let Some(value) = value.take() {
                    shards.insert(key, Arc::new(Shard::from_iter([(flow_id, value)])));
                }
                return false;
            };
            let Some(owned) = Arc::get_mut(shard) else { return true };
            match value.take() {
                Some(value) => {
                    owned.insert(flow_id, value);
                }
                None => {
                    owned.remove(&flow_id);
                    if owned.is_empty() {
                        shards.remove(&key);
                    }
                }
            }
            false
        });
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
        // The first shard held 1..=1023 but 8; the others 1024..=3000 and 5000. (Its shard,
        // shared with `map`, stays until settled: the next test.)
        assert_eq!((map.shards.len(), emptied.len()), (4, 3000 - 1022));
        assert_eq!((map.get(&7), map.get(&8), map.get(&5000)), (Some(&0), None, Some(&1)));
        assert_ne!(map, snapshot);
        let mut back = map.clone();
        back.insert(7, 70);
        back.insert(8, 80);
        back.remove(&5000);
        assert_eq!(back, snapshot, "equal whatever the history");
    }

    /// Changes to shards a clone shares go to the overlay, one entry each; the clone keeps what
    /// the map held; `settle` moves them back once the clone is gone, emptied shards dropped.
    #[test]
    fn changes_while_a_clone_shares_go_to_the_overlay_until_settled() {
        let mut map = FlowMap::default();
        for flow_id in 1..=2000u64 {
            map.insert(flow_id, flow_id);
        }
        map.insert(5000, 5);
        let clone = map.clone();
        assert_eq!(map.insert(7, 0), Some(7));
        assert_eq!(map.insert(7, 1), Some(0));
        assert_eq!(map.remove(&8), Some(8));
        assert_eq!(map.remove(&8), None);
        assert_eq!(map.insert(8, 80), None, "re-inserted after its removal");
        assert_eq!(map.insert(1999_u64 + 1, 0), Some(2000));
        assert_eq!(map.remove(&5000), Some(5));
        assert_eq!(map.insert(3000, 3), None, "a new shard is the map's own");
        assert_eq!(map.overlaid(), 4);
        assert_eq!(map.len(), 2001);
        assert_eq!((map.get(&7), map.get(&8), map.get(&5000), map.get(&3000)), (Some(&1), Some(&80), None, Some(&3)));
        assert_eq!(map.iter().count(), 2001);
        assert!((1..=2000u64).all(|flow_id| clone.get(&flow_id) == Some(&flow_id)) && clone.get(&5000) == Some(&5));
        let before = map.clone();
        drop(clone);
        map.settle();
        assert_eq!(map.overlaid(), 4, "`before` still shares them");
        drop(before);
        map.settle();
        assert_eq!((map.overlaid(), map.len(), map.shards.len()), (0, 2001, 3), "5000's shard emptied and dropped");
        assert_eq!((map.get(&7), map.get(&8), map.get(&2000), map.get(&5000)), (Some(&1), Some(&80), Some(&0), None));
    }

    /// Random inserts, removals, clones taken and dropped and settles, against a `HashMap`.
    #[test]
    fn clones_and_overlay_against_a_model() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        let mut map = FlowMap::default();
        let mut model = HashMap::new();
        let mut clones: Vec<(FlowMap<u64>, HashMap<u64, u64>)> = Vec::new();
        let same = |map: &FlowMap<u64>, model: &HashMap<u64, u64>| {
            map.len() == model.len() && map.iter().all(|(flow_id, value)| model.get(flow_id) == Some(value))
        };
        for step in 0..20_000u64 {
            let flow_id = next(4 * FLOW_IDS_PER_SHARD);
            match next(100) {
                0..=49 => assert_eq!(map.insert(flow_id, step), model.insert(flow_id, step)),
                50..=89 => assert_eq!(map.remove(&flow_id), model.remove(&flow_id)),
                90..=93 if clones.len() < 3 => clones.push((map.clone(), model.clone())),
                94..=96 if !clones.is_empty() => {
                    drop(clones.swap_remove(usize::try_from(next(clones.len() as u64)).unwrap()))
                }
                _ => map.settle(),
            }
            assert_eq!(map.get(&flow_id), model.get(&flow_id));
        }
        assert!(same(&map, &model));
        assert!(clones.iter().all(|(clone, expected)| same(clone, expected)));
        clones.clear();
        map.settle();
        assert!(map.overlaid() == 0 && same(&map, &model));
    }
}
