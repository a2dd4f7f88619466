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
//! The chunks are shared between a table and its copies (`Arc`), and a change copies only the
//! chunk it lands in, the first time it lands there while a copy holds it (copy on write). The
//! ledger writes a snapshot from such a copy beside the writer ([`StrTable::unindexed_copy`],
//! docs/ARCHITECTURE.md, "Snapshots"); chunks are small so that the writer, which goes on
//! changing random old orders meanwhile, copies little at a time.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

/// Entries per chunk of the entry vector. Every chunk but the last is exactly full, so
/// position `i` is entry `i % ENTRY_CHUNK` of chunk `i / ENTRY_CHUNK`. An order's chunk is
/// 92 KiB: what a refund of an old order copies while a snapshot is being written.
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
    len: usize,
}

impl<V> Default for StrTable<V> {
    fn default() -> Self {
        StrTable { hasher: Default::default(), slots: Vec::new(), keys: Vec::new(), entries: Vec::new(), len: 0 }
    }
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

    /// A copy to iterate, and nothing else: it shares every chunk with this table (copy on
    /// write) and has no index, so it answers no lookup. What a snapshot's thread encodes; the
    /// index, 8 bytes an entry, would otherwise be copied on the writer.
    pub fn unindexed_copy(&self) -> StrTable<V> {
        StrTable {
            hasher: self.hasher.clone(),
            slots: Vec::new(),
            keys: self.keys.clone(),
            entries: self.entries.clone(),
            len: self.len,
        }
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
        &self.entries[position / ENTRY_CHUNK][position % ENTRY_CHUNK].1
    }

    /// Every entry, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> + '_ {
        self.entries
            .iter()
            .flat_map(|chunk| chunk.iter())
            .map(|(key, value)| (&self.keys[key.chunk as usize][key.start as usize..key.end as usize], value))
    }

    /// Every value, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.entries.iter().flat_map(|chunk| chunk.iter()).map(|(_, value)| value)
    }
}

/// Changes: each copies the chunk it changes if a copy still shares it.
impl<V: Clone> StrTable<V> {
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.position(key).map(|position| self.value_at_mut(position))
    }

    /// The value at `position`, to change. Panics if there is none: positions come from this table.
    pub fn value_at_mut(&mut self, position: usize) -> &mut V {
        &mut Arc::make_mut(&mut self.entries[position / ENTRY_CHUNK])[position % ENTRY_CHUNK].1
    }

    /// Inserts `key` with `value` and returns its position, unless `key` is already in the
    /// table: then nothing changes and the existing entry's position is the error.
    pub fn insert_new(&mut self, key: &str, value: V) -> Result<usize, usize> {
        let hash32 = self.hash32(key);
        if let Some(existing) = self.find(key, hash32) {
            return Err(existing);
        }
        let position = self.len;
        let position32 = u32::try_from(position).expect("a StrTable holds at most 2^32 entries");
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
}
