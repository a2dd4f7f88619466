//! A medium for tests: sled, with a switch that makes `sync` fail, and one that holds the cold
//! store's flushes (a fill of it then stays in flight).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Error;
use crate::sled_storage::SledStorage;
use crate::snapshot_format::cold::{ColdStore, Pairs};
use crate::storage::{Bytes, Storage, Syncer, HEAD_SLOT_BYTES};

/// sled, except that `sync` fails (EIO) once `failing` is set; with `pipelined`, also from the
/// writer's syncer thread. With `cold_gate`, its cold store's flush waits while the gate is set.
#[derive(Debug)]
pub(crate) struct FailingSync {
    pub inner: SledStorage,
    pub failing: Arc<AtomicBool>,
    pub pipelined: bool,
    pub cold_gate: Option<Arc<AtomicBool>>,
}

/// A cold store whose flush (the end of every fill) waits while `gate` is set.
#[derive(Debug)]
struct GatedCold {
    inner: Arc<dyn ColdStore>,
    gate: Arc<AtomicBool>,
}

impl ColdStore for GatedCold {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Pairs, Error> {
        self.inner.scan(prefix)
    }
    fn put(&self, pairs: Pairs) -> Result<(), Error> {
        self.inner.put(pairs)
    }
    fn flush(&self) -> Result<(), Error> {
        while self.gate.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.inner.flush()
    }
    fn is_empty(&self) -> Result<bool, Error> {
        self.inner.is_empty()
    }
    fn clear(&self) -> Result<(), Error> {
        self.inner.clear()
    }
}

fn eio_if(failing: &AtomicBool) -> Result<(), Error> {
    if failing.load(Ordering::SeqCst) {
        return Err(crate::sled_storage::io_error("fdatasync", &std::io::Error::from_raw_os_error(5)));
    }
    Ok(())
}

struct FailingSyncer {
    inner: Box<dyn Syncer>,
    failing: Arc<AtomicBool>,
}

impl Syncer for FailingSyncer {
    fn sync(&mut self) -> Result<(), Error> {
        eio_if(&self.failing)?;
        self.inner.sync()
    }
}

impl Storage for FailingSync {
    fn meta_get(&self, key: &[u8]) -> Result<Option<Bytes>, Error> {
        self.inner.meta_get(key)
    }
    fn meta_put(&mut self, entries: &[(&[u8], &[u8])]) -> Result<(), Error> {
        self.inner.meta_put(entries)
    }
    fn log_put(&mut self, blocks: Vec<(u64, Vec<u8>)>) -> Result<(), Error> {
        self.inner.log_put(blocks)
    }
    fn log_remove(&mut self, firsts: &[u64]) -> Result<(), Error> {
        self.inner.log_remove(firsts)
    }
    fn log_at_or_before(&self, sequence: u64) -> Result<Option<(u64, Bytes)>, Error> {
        self.inner.log_at_or_before(sequence)
    }
    fn log_from<'a>(&'a self, first: u64) -> Box<dyn Iterator<Item = Result<(u64, Bytes), Error>> + 'a> {
        self.inner.log_from(first)
    }
    fn sync(&mut self) -> Result<(), Error> {
        eio_if(&self.failing)?;
        self.inner.sync()
    }
    fn syncer(&self) -> Result<Option<Box<dyn Syncer>>, Error> {
        if !self.pipelined {
            return Ok(None);
        }
        let inner = self.inner.syncer()?.expect("sled has a syncer");
        Ok(Some(Box::new(FailingSyncer { inner, failing: Arc::clone(&self.failing) })))
    }
    fn head_exists(&self) -> Result<bool, Error> {
        self.inner.head_exists()
    }
    fn head_create(&mut self) -> Result<(), Error> {
        self.inner.head_create()
    }
    fn head_read(&self, slot: usize) -> Result<Option<[u8; HEAD_SLOT_BYTES]>, Error> {
        self.inner.head_read(slot)
    }
    fn head_write(&mut self, slot: usize, bytes: &[u8; HEAD_SLOT_BYTES]) -> Result<(), Error> {
        self.inner.head_write(slot, bytes)
    }
    fn head_sync(&mut self) -> Result<(), Error> {
        self.inner.head_sync()
    }
    fn repairs_append(&mut self, line: &str) -> Result<(), Error> {
        self.inner.repairs_append(line)
    }
    fn repairs_read(&self) -> Result<Vec<String>, Error> {
        self.inner.repairs_read()
    }
    fn check_medium(&self) -> Result<(), Error> {
        self.inner.check_medium()
    }
    fn size_on_disk(&self) -> Result<u64, Error> {
        self.inner.size_on_disk()
    }
    fn cold(&self) -> Result<Option<Arc<dyn ColdStore>>, Error> {
        let Some(gate) = &self.cold_gate else { return Ok(None) };
        let inner = self.inner.cold()?.expect("sled has a cold store");
        Ok(Some(Arc::new(GatedCold { inner, gate: Arc::clone(gate) })))
    }
}
