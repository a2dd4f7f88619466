//! The simulated disk: an in-memory medium that keeps the [`Storage`] contract exactly, and
//! breaks in every way the contract allows (and, behind [`Breakage`], in one it does not).
//!
//! The medium lives behind `Arc<Mutex<..>>` so it outlives a ledger that "crashes": the
//! simulator drops the ledger without closing it, calls [`SimDisk::crash`], and opens a new
//! ledger over the same disk. What survives a crash:
//! - the log and meta: everything before the last successful `sync`, plus a random prefix of
//!   the writes after it (sled buffers writes and recovers its log up to the first message it
//!   cannot read). After a `sync` that failed with EIO the same holds: which prefix landed is
//!   unknown until the crash decides it. At a power loss a torn last write is dropped whole.
//! - the head file: after a process crash every write (the page cache survives); after a power
//!   loss each slot independently keeps its synced bytes or any of its unsynced writes.
//! - the repairs log: every line (each append is durable).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use purse_ledger::storage::{Bytes, Storage, HEAD_SLOT_BYTES};
use purse_ledger::Error;

use crate::fault::{Coverage, Fault, Faults};
use crate::rng::Rng;

/// How the process stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashKind {
    /// The process died; the kernel (its page cache) lives on.
    Process,
    /// The machine lost power: only what was synced is certain.
    PowerLoss,
}

/// A deliberately wrong medium, to prove the checker fails when durability is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// At a crash the newest synced log block is lost: an acknowledged write vanishes.
    LoseSyncedWrite,
}

/// Where a bit was flipped at rest, so that it can be flipped back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlipTarget {
    Log(u64),
    Meta(Vec<u8>),
    Head,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    pub target: FlipTarget,
    pub byte: usize,
    pub bit: u8,
}

/// One write to the log or meta since the last `sync`; each is atomic.
#[derive(Debug, Clone)]
enum Op {
    Meta(Vec<(Vec<u8>, Bytes)>),
    LogPut(Vec<(u64, Bytes)>),
    LogRemove(Vec<u64>),
}

#[derive(Debug, Clone, Default)]
struct Trees {
    meta: BTreeMap<Vec<u8>, Bytes>,
    log: BTreeMap<u64, Bytes>,
}

impl Trees {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Meta(entries) => self.meta.extend(entries.iter().cloned()),
            Op::LogPut(blocks) => self.log.extend(blocks.iter().cloned()),
            Op::LogRemove(firsts) => {
                for first in firsts {
                    self.log.remove(first);
                }
            }
        }
    }
}

#[derive(Debug)]
struct Medium {
    /// What a crash cannot take away.
    durable: Trees,
    /// What reads see: `durable` with `pending` applied.
    live: Trees,
    pending: Vec<Op>,
    /// The head file's synced bytes (`None`: no head file).
    head: Option<Vec<u8>>,
    live_head: Option<Vec<u8>>,
    /// Slot writes since the last `head_sync`, oldest first.
    head_unsynced: Vec<(usize, [u8; HEAD_SLOT_BYTES])>,
    repairs: Vec<String>,
    rng: Rng,
    faults: Faults,
    /// Whether faults are injected at all (the simulator turns them off to finish cleanly).
    injecting: bool,
    coverage: Coverage,
    clock: Arc<AtomicI64>,
    breakage: Option<Breakage>,
}

/// The shared medium. Clones are the same disk.
#[derive(Debug, Clone)]
pub struct SimDisk(Arc<Mutex<Medium>>);

impl SimDisk {
    pub fn new(rng: Rng, faults: Faults, clock: Arc<AtomicI64>, breakage: Option<Breakage>) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(Medium {
            durable: Trees::default(),
            live: Trees::default(),
            pending: Vec::new(),
            head: None,
            live_head: None,
            head_unsynced: Vec::new(),
            repairs: Vec::new(),
            rng,
            faults,
            injecting: true,
            coverage: Coverage::default(),
            clock,
            breakage,
        })))
    }

    fn medium(&self) -> MutexGuard<'_, Medium> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A `Storage` over this disk, for one ledger's lifetime.
    pub fn storage(&self) -> Box<dyn Storage> {
        Box::new(SimStorage { disk: self.clone() })
    }

    pub fn set_injecting(&self, injecting: bool) {
        self.medium().injecting = injecting;
    }

    pub fn coverage(&self) -> Coverage {
        self.medium().coverage.clone()
    }

    /// Counts a fault the simulator itself injected (a crash).
    pub fn count(&self, fault: Fault) {
        self.medium().coverage.add(fault);
    }

    /// Decides what of the unsynced writes survives a crash of `kind`; reads then see only that.
    pub fn crash(&self, kind: CrashKind) {
        let mut medium = self.medium();
        let medium = &mut *medium;
        let pending = std::mem::take(&mut medium.pending);
        let mut kept = medium.rng.index(pending.len() + 1);
        if kind == CrashKind::PowerLoss && kept > 0 && medium.injecting && medium.rng.chance(medium.faults.torn) {
            // The last write that reached the platter is torn; sled's checksum drops it.
            kept -= 1;
            medium.coverage.add(Fault::TornWrite);
        }
        for op in &pending[..kept] {
            medium.durable.apply(op);
        }
        match kind {
            CrashKind::Process => {
                medium.coverage.add(Fault::ProcessCrash);
                medium.head.clone_from(&medium.live_head);
            }
            CrashKind::PowerLoss => {
                medium.coverage.add(Fault::PowerLoss);
                medium.lose_head_writes();
            }
        }
        medium.head_unsynced.clear();
        if medium.breakage == Some(Breakage::LoseSyncedWrite) && medium.rng.coin() {
            medium.durable.log.pop_last();
        }
        medium.live = medium.durable.clone();
        medium.live_head.clone_from(&medium.head);
    }

    /// Flips one bit at rest (a durable log block, meta value or head byte), between a crash
    /// and the next open. `None` if the disk holds nothing yet.
    pub fn flip_bit(&self) -> Option<Flip> {
        let mut medium = self.medium();
        let medium = &mut *medium;
        let mut targets = Vec::new();
        if !medium.durable.log.is_empty() {
            targets.push(0);
        }
        if !medium.durable.meta.is_empty() {
            targets.push(1);
        }
        if medium.head.as_ref().is_some_and(|head| !head.is_empty()) {
            targets.push(2);
        }
        let category = *medium.rng.pick(&targets)?;
        let (target, len, fault) = match category {
            0 => {
                let keys: Vec<u64> = medium.durable.log.keys().copied().collect();
                let key = keys[medium.rng.index(keys.len())];
                (FlipTarget::Log(key), medium.durable.log[&key].len(), Fault::FlipLog)
            }
            1 => {
                let keys: Vec<Vec<u8>> = medium.durable.meta.keys().cloned().collect();
                let key = keys[medium.rng.index(keys.len())].clone();
                let len = medium.durable.meta[&key].len();
                (FlipTarget::Meta(key), len, Fault::FlipMeta)
            }
            _ => (FlipTarget::Head, medium.head.as_ref().map_or(0, Vec::len), Fault::FlipHead),
        };
        let flip = Flip { target, byte: medium.rng.index(len), bit: u8::try_from(medium.rng.below(8)).expect("< 8") };
        medium.coverage.add(fault);
        medium.toggle(&flip);
        Some(flip)
    }

    /// Flips the bit back, if the place it was in is still there. Returns whether it was.
    pub fn heal(&self, flip: &Flip) -> bool {
        self.medium().toggle(flip)
    }

    /// Flips one chosen bit at rest (for regression tests of one exact damage).
    pub fn flip_at(&self, flip: &Flip) -> bool {
        self.medium().toggle(flip)
    }
}

impl Medium {
    /// A power loss: each head slot keeps its synced bytes or one of its unsynced writes.
    fn lose_head_writes(&mut self) {
        let Some(mut head) = self.head.clone() else { return };
        for slot in 0..2 {
            let writes: Vec<[u8; HEAD_SLOT_BYTES]> =
                self.head_unsynced.iter().filter(|(written, _)| *written == slot).map(|(_, bytes)| *bytes).collect();
            if writes.is_empty() {
                continue;
            }
            let survivor = self.rng.index(writes.len() + 1);
            if survivor < writes.len() {
                self.coverage.add(Fault::HeadWriteLost);
            }
            if survivor > 0 {
                write_slot(&mut head, slot, &writes[survivor - 1]);
            }
        }
        self.head = Some(head);
    }

    /// XORs the flip's bit in the durable and the live copy.
    fn toggle(&mut self, flip: &Flip) -> bool {
        let mask = 1u8 << flip.bit;
        let toggle_bytes = |bytes: &Bytes| -> Option<Bytes> {
            let mut copy = bytes.to_vec();
            *copy.get_mut(flip.byte)? ^= mask;
            Some(Bytes::from(copy))
        };
        let healed = match &flip.target {
            FlipTarget::Log(key) => match self.durable.log.get(key).and_then(toggle_bytes) {
                Some(bytes) => self.durable.log.insert(*key, bytes).is_some(),
                None => false,
            },
            FlipTarget::Meta(key) => match self.durable.meta.get(key).and_then(toggle_bytes) {
                Some(bytes) => self.durable.meta.insert(key.clone(), bytes).is_some(),
                None => false,
            },
            FlipTarget::Head => match self.head.as_mut().and_then(|head| head.get_mut(flip.byte)) {
                Some(byte) => {
                    *byte ^= mask;
                    true
                }
                None => false,
            },
        };
        // A flip happens at rest, when nothing is pending: the live view is the durable one.
        self.live = self.durable.clone();
        self.live_head.clone_from(&self.head);
        healed
    }

    /// An injected ENOSPC for a write (which then does not happen), and maybe slow I/O.
    fn write_fault(&mut self, what: &str) -> Result<(), Error> {
        self.slow_io();
        if self.injecting && self.rng.chance(self.faults.enospc) {
            self.coverage.add(Fault::Enospc);
            return Err(Error::Storage(format!("{what}: No space left on device (simulated ENOSPC)")));
        }
        Ok(())
    }

    fn slow_io(&mut self) {
        if self.injecting && self.rng.chance(self.faults.slow_io) {
            self.coverage.add(Fault::SlowIo);
            let seconds = self.rng.between(1, 3);
            self.clock.fetch_add(seconds, Ordering::SeqCst);
        }
    }

    fn push(&mut self, op: Op) {
        self.live.apply(&op);
        self.pending.push(op);
    }
}

fn write_slot(head: &mut Vec<u8>, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) {
    let end = (slot + 1) * HEAD_SLOT_BYTES;
    if head.len() < end {
        head.resize(end, 0);
    }
    head[slot * HEAD_SLOT_BYTES..end].copy_from_slice(bytes);
}

/// One ledger's view of a [`SimDisk`].
#[derive(Debug)]
pub struct SimStorage {
    disk: SimDisk,
}

impl Storage for SimStorage {
    fn meta_get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        Ok(self.disk.medium().live.meta.get(key).cloned())
    }

    fn meta_put(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.write_fault("writing the meta")?;
        let entries = entries.iter().map(|(key, value)| (key.to_vec(), Bytes::from(*value))).collect();
        medium.push(Op::Meta(entries));
        Ok(())
    }

    fn log_put(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.write_fault("writing log blocks")?;
        medium.push(Op::LogPut(blocks.into_iter().map(|(key, bytes)| (key, Bytes::from(bytes))).collect()));
        Ok(())
    }

    fn log_remove(&mut self, firsts: &[u64]) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.write_fault("removing log blocks")?;
        medium.push(Op::LogRemove(firsts.to_vec()));
        Ok(())
    }

    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        Ok(self.disk.medium().live.log.range(..=sequence).next_back().map(|(key, bytes)| (*key, bytes.clone())))
    }

    fn log_from<'a>(&'a self, first: u64) -> Box<dyn Iterator<Item = Result<(u64, Bytes), Error>> + 'a> {
        // A snapshot: the fold reads it on another thread while nothing writes.
        let blocks: Vec<(u64, Bytes)> =
            self.disk.medium().live.log.range(first..).map(|(key, bytes)| (*key, bytes.clone())).collect();
        Box::new(blocks.into_iter().map(Ok))
    }

    fn sync(&mut self) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.slow_io();
        let eio = medium.faults.sync_eio;
        if medium.injecting && medium.rng.chance(eio) {
            // Which of the pending writes landed is unknown: the next crash decides.
            medium.coverage.add(Fault::SyncEio);
            return Err(Error::Storage("fdatasync of the simulated disk: Input/output error (simulated EIO)".into()));
        }
        let medium = &mut *medium;
        for op in medium.pending.drain(..) {
            medium.durable.apply(&op);
        }
        Ok(())
    }

    fn head_exists(&self) -> Result<bool, Error> {
        Ok(self.disk.medium().live_head.is_some())
    }

    fn head_create(&mut self) -> Result<(), Error> {
        // Created, truncated and its directory synced, as the sled medium does.
        let mut medium = self.disk.medium();
        medium.head = Some(Vec::new());
        medium.live_head = Some(Vec::new());
        medium.head_unsynced.clear();
        Ok(())
    }

    fn head_read(&self, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error> {
        let medium = self.disk.medium();
        let head = medium.live_head.as_ref().ok_or_else(|| {
            Error::Corruption("the simulated head file is missing: the ledger's files are incomplete".into())
        })?;
        let bytes = head.get(slot * HEAD_SLOT_BYTES..(slot + 1) * HEAD_SLOT_BYTES);
        Ok(bytes.map(|bytes| bytes.try_into().expect("a slot's length")))
    }

    fn head_write(&mut self, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        if medium.live_head.is_none() {
            return Err(Error::Storage("opening the simulated head file: it does not exist".into()));
        }
        medium.write_fault("writing the head file")?;
        let medium = &mut *medium;
        write_slot(medium.live_head.as_mut().expect("checked above"), slot, bytes);
        medium.head_unsynced.push((slot, *bytes));
        Ok(())
    }

    fn head_sync(&mut self) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.slow_io();
        let medium = &mut *medium;
        medium.head.clone_from(&medium.live_head);
        medium.head_unsynced.clear();
        Ok(())
    }

    fn repairs_append(&mut self, line: &str) -> Result<(), Error> {
        let mut medium = self.disk.medium();
        medium.write_fault("writing the repairs log")?;
        medium.repairs.push(line.replace('\n', " "));
        Ok(())
    }

    fn repairs_read(&self) -> Result<Vec<String>, Error> {
        Ok(self.disk.medium().repairs.clone())
    }

    fn check_medium(&self) -> Result<(), Error> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, Error> {
        let medium = self.disk.medium();
        let log: usize = medium.live.log.values().map(|bytes| bytes.len() + 8).sum();
        let meta: usize = medium.live.meta.iter().map(|(key, value)| key.len() + value.len()).sum();
        Ok(u64::try_from(log + meta).unwrap_or(u64::MAX))
    }
}
