//! [`StrTable`]: a string-keyed map built to hold millions of entries in little memory.
//!
//! The fold keeps one entry per order id and the idempotency index one per request id, so a
//! ledger of a million flows holds two million string keys. In a `HashMap<String, V>` every key
//! is its own heap allocation, and the bucket array holds key and value side by side at a load
//! of 7/16 to 7/8: for a million 128-byte entries that array is 256 MiB, and each time it
//! doubles every entry is moved and every key re-hashed while the writer waits (0.3–1.2 s
//! stalls near a million orders, docs/performance.md).
//!
//! Here the keys are laid back to back in an arena of large chunks, the entries sit in a chunked
//! vector (a full chunk is never moved again), and the hash table holds 8 bytes per entry: the
//! entry's position and 32 bits of its key's hash. Growing the table rehashes those integers
//! and touches neither keys nor entries.
//!
//! Entries are never removed: nothing in a ledger forgets an order or a request id.
//!
//! The chunks are shared between a table and its copies (`Arc`). The ledger writes a snapshot
//! from such a copy beside the writer ([`StrTable::unindexed_copy`], docs/ARCHITECTURE.md,
//! "Snapshots"), and the writer goes on changing accounts and random old orders meanwhile. A
//! change to an entry whose chunk a copy still holds does not copy the chunk: the entry alone
//! is copied into an overlay, which is what the table holds for it from then on, until
//! [`StrTable::settle`] moves it back into its chunk once the copy is gone. Copying chunks
//! instead, the writer copied nearly the whole order table and every account within the first
//! batches after a snapshot began (6-24 ms batches, docs/performance.md).

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

/// Entries per chunk of the entry vector. Every chunk but the last is exactly full, so
/// position `i` is entry `i % ENTRY_CHUNK` of chunk `i / ENTRY_CHUNK`.
const ENTRY_CHUNK: usize = 1 << 10;

/// Bytes per chunk of the key arena (a longer key gets a chunk of its own).
const KEY_CHUNK_BYTES: usize = 256 * 1024;

/// The index is this many hash tables, by the top bits of the keys' hashes. Each grows on its
/// own, so growing rehashes a 64th of the index at a time, spread over many batches, instead
/// of a million slots at once (tens of milliseconds of the writer's, a tail the callers saw).
const SLOT_SHARDS: usize = 64;
const SLOT_SHARD_SHIFT: u32 = 32 - SLOT_SHARDS.trailing_zeros();

fn shard_of(hash32: u32) -> usize {
    (hash32 >> SLOT_SHARD_SHIFT) as usize
}

/// Where a key's text sits in the arena.
#[derive(Debug, Clone, Copy)]
struct KeyRef {
    chunk: u32,
    start: u32,
    end: u32,
}

/// A map from strings to `V`, in insertion order, without removal. Keys are hashed with a
/// per-table random seed (they are caller-chosen, so collisions must not be plannable).
#[derive(Clone)]
pub struct StrTable<V> {
    hasher: foldhash::quality::RandomState,
    /// Per entry: the upper 32 bits of its key's hash in the high half, its position in the
    /// low; in [`SLOT_SHARDS`] shards (none until the first insert). Not shared: a copy either
    /// has its own or none ([`StrTable::unindexed_copy`]).
    slots: Vec<HashTable<u64>>,
    keys: Vec<Arc<String>>,
    entries: Vec<Arc<Vec<(KeyRef, V)>>>,
    /// By position: the values of entries changed while a copy shared their chunk. Where an
    /// entry has one, it is the entry's value, and its chunk holds an older one.
    overlay: Overlay<V>,
    len: usize,
}

type Overlay<V> = hashbrown::HashMap<u32, V, foldhash::fast::FixedState>;

impl<V> Default for StrTable<V> {
    fn default() -> Self {
        StrTable {
            hasher: Default::default(),
            slots: Vec::new(),
            keys: Vec::new(),
            entries: Vec::new(),
            overlay: Overlay::default(),
            len: 0,
        }
    }
}

/// A position as the overlay keys it; positions are below 2^32 (`insert_new`).
fn position32(position: usize) -> u32 {
    u32::try_from(position).expect("a StrTable holds at most 2^32 entries")
}

/// The table's hash of a slot, from the 32 hash bits it keeps. The multiply spreads them over
/// all 64 bits: hashbrown takes the bucket from the low bits and a 7-bit tag from the top.
fn spread(hash32: u32) -> u64 {
    u64::from(hash32).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn slot_hash(slot: &u64) -> u64 {
    spread((slot >> 32) as u32)
}

fn slot_position(slot: u64) -> usize {
    (slot & 0xFFFF_FFFF) as usize
}

impl<V> StrTable<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table whose index has room for `capacity` entries without growing.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut table = Self::default();
        if capacity > 0 {
            let shard = capacity.div_ceil(SLOT_SHARDS);
            table.slots = (0..SLOT_SHARDS).map(|_| HashTable::with_capacity(shard)).collect();
        }
        table
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn hash32(&self, key: &str) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    fn key_at(&self, position: usize) -> &str {
        let (key, _) = &self.entries[position / ENTRY_CHUNK][position % ENTRY_CHUNK];
        &self.keys[key.chunk as usize][key.start as usize..key.end as usize]
    }

    /// The position of `key`'s entry (0 for the first inserted, and so on), if it has one.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.find(key, self.hash32(key))
    }

    fn find(&self, key: &str, hash32: u32) -> Option<usize> {
        // A lookup in an unindexed copy would answer "absent" for a key it holds.
        assert!(self.len == 0 || !self.slots.is_empty(), "a lookup in a StrTable's unindexed copy");
        let tag = u64::from(hash32) << 32;
        self.slots
            .get(shard_of(hash32))?
            .find(spread(hash32), |&slot| slot & !0xFFFF_FFFF == tag && self.key_at(slot_position(slot)) == key)
            .map(|&slot| slot_position(slot))
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key).map(|position| self.value_at(position))
    }

    /// The value at `position`. Panics if there is none: positions come from this table.
    pub fn value_at(&self, position: usize) -> &V {
        let stored = &self.entries[position / ENTRY_CHUNK][position % ENTRY_CHUNK].1;
        self.current(position, stored)
    }

    /// The value of the entry at `position` whose chunk holds `stored`: its overlay's, if any.
    fn current<'a>(&'a self, position: usize, stored: &'a V) -> &'a V {
        if self.overlay.is_empty() {
            return stored;
        }
        self.overlay.get(&position32(position)).unwrap_or(stored)
    }

    /// Every entry, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> + '_ {
        self.entries.iter().flat_map(|chunk| chunk.iter()).enumerate().map(|(position, (key, stored))| {
            (&self.keys[key.chunk as usize][key.start as usize..key.end as usize], self.current(position, stored))
        })
    }

    /// Every value, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, value)| value)
    }
}

/// Changes: a change to an entry whose chunk a copy shares goes to the overlay; an insert
/// copies the last chunk if a copy shares it (once: that copy is then this table's own).
impl<V: Clone> StrTable<V> {
    /// A copy to iterate, and nothing else: it shares every chunk with this table (copy on
    /// write) and has no index, so it answers no lookup. What a snapshot's thread encodes; the
    /// index, 8 bytes an entry, would otherwise be copied on the writer.
    pub fn unindexed_copy(&self) -> StrTable<V> {
        StrTable {
            hasher: self.hasher.clone(),
            slots: Vec::new(),
            keys: self.keys.clone(),
            entries: self.entries.clone(),
            overlay: self.overlay.clone(),
            len: self.len,
        }
    }

    /// Entries held in the overlay (changed while a copy shared their chunk, not yet settled).
    pub fn overlaid(&self) -> usize {
        self.overlay.len()
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.position(key).map(|position| self.value_at_mut(position))
    }

    /// The value at `position`, to change. Panics if there is none: positions come from this table.
    pub fn value_at_mut(&mut self, position: usize) -> &mut V {
        let overlaid = position32(position);
        if self.overlay.contains_key(&overlaid) {
            return self.overlay.get_mut(&overlaid).expect("just found");
        }
        let chunk = &mut self.entries[position / ENTRY_CHUNK];
        if Arc::get_mut(chunk).is_none() {
            let value = chunk[position % ENTRY_CHUNK].1.clone();
            return self.overlay.entry(overlaid).or_insert(value);
        }
        &mut Arc::get_mut(chunk).expect("not shared")[position % ENTRY_CHUNK].1
    }

    /// Moves what the overlay holds back into the chunks no copy shares any more; what a copy
    /// still shares stays. The ledger calls it once a snapshot's copy is dropped.
    pub fn settle(&mut self) {
        if self.overlay.is_empty() {
            return;
        }
        let entries = &mut self.entries;
        self.overlay.retain(|&position, value| {
            let position = position as usize;
            match Arc::get_mut(&mut entries[position / ENTRY_CHUNK]) {
                Some(chunk) => {
                    std::mem::swap(&mut chunk[position % ENTRY_CHUNK].1, value);
                    false
                }
                None => true,
            }
        });
    }

    /// Inserts `key` with `value` and returns its position, unless `key` is already in the
    /// table: then nothing changes and the existing entry's position is the error.
    pub fn insert_new(&mut self, key: &str, value: V) -> Result<usize, usize> {
        let hash32 = self.hash32(key);
        if let Some(existing) = self.find(key, hash32) {
            return Err(existing);
        }
        let position = self.len;
        let position32 = position32(position);
        let key = self.push_key(key);
        let later = self.entries.len() > 1;
        match self.entries.last_mut() {
            Some(chunk) if chunk.len() < ENTRY_CHUNK => {
                let chunk = Arc::make_mut(chunk);
                // The copy of a shared chunk is as long as it was: room for a whole one, once.
                if later && chunk.capacity() < ENTRY_CHUNK {
                    chunk.reserve_exact(ENTRY_CHUNK - chunk.len());
                }
                chunk.push((key, value));
            }
            // The first chunk grows as a small table needs; later ones are allocated whole.
            last => {
                let mut chunk = Vec::with_capacity(if last.is_some() { ENTRY_CHUNK } else { 0 });
                chunk.push((key, value));
                self.entries.push(Arc::new(chunk));
            }
        }
        if self.slots.is_empty() {
            self.slots = (0..SLOT_SHARDS).map(|_| HashTable::new()).collect();
        }
        let tag = u64::from(hash32) << 32;
        self.slots[shard_of(hash32)].insert_unique(slot_hash(&tag), tag | u64::from(position32), slot_hash);
        self.len += 1;
        Ok(position)
    }

    fn push_key(&mut self, key: &str) -> KeyRef {
        let fits = self.keys.last().is_some_and(|chunk| chunk.len() + key.len() <= KEY_CHUNK_BYTES);
        if !fits {
            let first = self.keys.is_empty();
            self.keys.push(Arc::new(String::with_capacity(if first {
                key.len()
            } else {
                KEY_CHUNK_BYTES.max(key.len())
            })));
        }
        let chunk_index = self.keys.len() - 1;
        let chunk = Arc::make_mut(&mut self.keys[chunk_index]);
        let start = chunk.len();
        chunk.push_str(key);
        let narrow = |value: usize| u32::try_from(value).expect("key arena offsets fit in 32 bits");
        KeyRef { chunk: narrow(chunk_index), start: narrow(start), end: narrow(chunk.len()) }
    }
}

/// Two tables are equal when they hold the same keys with equal values, whatever the order.
impl<V: PartialEq> PartialEq for StrTable<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().all(|(key, value)| other.get(key) == Some(value))
    }
}

impl<V: Eq> Eq for StrTable<V> {}

impl<V: fmt::Debug> fmt::Debug for StrTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_find_and_refuse_duplicates() {
        let mut table = StrTable::new();
        assert!(table.is_empty());
        assert_eq!(table.insert_new("a", 1), Ok(0));
        assert_eq!(table.insert_new("", 2), Ok(1));
        assert_eq!(table.insert_new("b", 3), Ok(2));
        assert_eq!(table.insert_new("a", 9), Err(0), "a second insert of a key changes nothing");
        assert_eq!(table.len(), 3);
        assert_eq!(table.get("a"), Some(&1));
        assert_eq!(table.get(""), Some(&2));
        assert_eq!(table.get("c"), None);
        assert_eq!(table.get("A"), None, "keys are exact");
        *table.get_mut("b").unwrap() += 10;
        assert_eq!(table.value_at(2), &13);
        assert_eq!(table.iter().collect::<Vec<_>>(), [("a", &1), ("", &2), ("b", &13)]);
    }

    #[test]
    fn many_entries_across_chunks_and_growth() {
        // Enough to fill several entry chunks and key chunks (with a few long keys) and to grow
        // the index many times from empty.
        let count = 3 * ENTRY_CHUNK + 17;
        let key = |i: usize| {
            if i % 300 == 7 {
                format!("{i}{}", "x".repeat(KEY_CHUNK_BYTES / 3))
            } else {
                format!("order-{i}")
            }
        };
        let mut table = StrTable::new();
        for i in 0..count {
            assert_eq!(table.insert_new(&key(i), i), Ok(i));
        }
        assert!(table.keys.len() > 2 && table.entries.len() == 4);
        for i in 0..count {
            assert_eq!(table.position(&key(i)), Some(i), "{i}");
            assert_eq!(table.insert_new(&key(i), 0), Err(i));
        }
        assert_eq!(table.get("order-"), None);
        assert!(table.iter().enumerate().all(|(i, (k, v))| k == key(i) && *v == i));
    }

    /// A copy keeps what the table held when it was taken, whatever the table does after:
    /// changes in a shared full chunk, in the shared last chunk and in the key arena.
    #[test]
    fn a_copy_is_a_snapshot_of_the_table() {
        let count = 2 * ENTRY_CHUNK + 100;
        let key = |i: usize| format!("order-{i}");
        let mut table = StrTable::with_capacity(count);
        for i in 0..count {
            table.insert_new(&key(i), i).unwrap();
        }
        let (snapshot, unindexed) = (table.clone(), table.unindexed_copy());
        *table.get_mut(&key(3)).unwrap() = 0;
        *table.value_at_mut(count - 1) = 0;
        for i in count..count + 2 * ENTRY_CHUNK {
            assert_eq!(table.insert_new(&key(i), i), Ok(i));
        }
        assert_eq!(snapshot.len(), count);
        assert!(snapshot.iter().enumerate().all(|(i, (k, v))| k == key(i) && *v == i));
        assert!(unindexed.iter().eq(snapshot.iter()) && unindexed.len() == count);
        assert_eq!(snapshot.get(&key(count)), None, "the clone's index does not see later keys");
        assert_eq!(table.get(&key(3)), Some(&0));
        assert_eq!(table.value_at(count - 1), &0);
        assert!((count..count + 2 * ENTRY_CHUNK).all(|i| table.get(&key(i)) == Some(&i)));
        assert_eq!(table.iter().count(), count + 2 * ENTRY_CHUNK);
    }

    #[test]
    fn equality_ignores_order_and_clones_are_independent() {
        let mut one = StrTable::with_capacity(4);
        let mut two = StrTable::new();
        for (key, value) in [("x", 1), ("y", 2)] {
            one.insert_new(key, value).unwrap();
        }
        for (key, value) in [("y", 2), ("x", 1)] {
            two.insert_new(key, value).unwrap();
        }
        assert_eq!(one, two);
        let mut three = one.clone();
        *three.get_mut("x").unwrap() = 5;
        assert_ne!(one, three);
        assert_eq!(one.get("x"), Some(&1));
        three.insert_new("z", 0).unwrap();
        assert_ne!(two, three);
        assert_eq!(format!("{one:?}"), r#"{"x": 1, "y": 2}"#);
    }

    /// A change to an entry a copy shares lands in the overlay, not in a copy of its chunk; the
    /// copy keeps the old value, the table answers the new one everywhere, and `settle` moves
    /// it back only once no copy shares the chunk.
    #[test]
    fn changes_while_a_copy_shares_go_to_the_overlay_until_settled() {
        let count = 2 * ENTRY_CHUNK + 5;
        let mut table = StrTable::with_capacity(count);
        for i in 0..count {
            table.insert_new(&format!("k{i}"), i).unwrap();
        }
        let copy = table.unindexed_copy();
        *table.value_at_mut(3) += 1;
        *table.value_at_mut(3) += 1;
        *table.value_at_mut(ENTRY_CHUNK + 1) = 0;
        table.insert_new("new", 7).unwrap();
        assert_eq!(table.overlaid(), 2, "one entry each, changed twice or once");
        assert!(Arc::ptr_eq(&table.entries[0], &copy.entries[0]), "no chunk copied for a change");
        assert_eq!((table.get("k3"), table.value_at(ENTRY_CHUNK + 1), table.get("new")), (Some(&5), &0, Some(&7)));
        // Entry 0 held 0 from the start; entry ENTRY_CHUNK + 1 holds it now.
        assert_eq!(table.values().filter(|&&v| v != 0).count(), count - 1, "iteration sees the overlay");
        assert!(copy.iter().enumerate().all(|(i, (k, v))| k == format!("k{i}") && *v == i));
        table.settle();
        assert_eq!(table.overlaid(), 2, "the copy still shares both chunks");
        let expected: Vec<(String, usize)> = table.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        drop(copy);
        table.settle();
        assert_eq!(table.overlaid(), 0);
        assert!(table.iter().map(|(k, v)| (k.to_string(), *v)).eq(expected), "settling changes no value");
    }

    /// Random inserts, changes, copies taken and dropped and settles, against a plain model:
    /// the table and every live copy always iterate as their model.
    #[test]
    fn copies_and_overlay_against_a_model() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % bound as u64).unwrap()
        };
        let mut table = StrTable::new();
        let mut model: Vec<(String, u64)> = Vec::new();
        type Model = Vec<(String, u64)>;
        let mut copies: Vec<(StrTable<u64>, Model)> = Vec::new();
        for step in 0..20_000u64 {
            match next(100) {
                0..=29 => {
                    let key = format!("k{}", model.len());
                    assert_eq!(table.insert_new(&key, step), Ok(model.len()));
                    model.push((key, step));
                }
                30..=89 if !model.is_empty() => {
                    let position = next(model.len());
                    *table.value_at_mut(position) = step;
                    model[position].1 = step;
                    assert_eq!(table.get(&model[position].0), Some(&step));
                }
                90..=93 if copies.len() < 3 => copies.push((table.unindexed_copy(), model.clone())),
                94..=96 if !copies.is_empty() => drop(copies.swap_remove(next(copies.len()))),
                _ => table.settle(),
            }
        }
        let as_model = |table: &StrTable<u64>| table.iter().map(|(k, v)| (k.to_string(), *v)).collect::<Vec<_>>();
        assert_eq!(as_model(&table), model);
        for (copy, expected) in &copies {
            assert_eq!(&as_model(copy), expected);
        }
        copies.clear();
        table.settle();
        assert_eq!((table.overlaid(), as_model(&table)), (0, model));
    }
}
