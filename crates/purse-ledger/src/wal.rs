//! The local journal: the embedded default's write-ahead log, in files of the ledger directory
//! (`purse-wal/`), beneath [`crate::replicated::ReplicatedStorage`] with the ledger's own sled
//! as the journal's image (docs/storage-format.md, "The write-ahead log").
//!
//! Why: a commit over sled alone was sled's `flush()` (its I/O threads write the buffer and wait
//! in `sync_file_range`) and then purse's `fdatasync` of sled's file: two waits on the device and
//! several thread hand-offs per commit, about 170 µs above the disk's fsync floor for a lone
//! caller. Here a commit is one `pwrite` and one `fdatasync` of a preallocated file on the
//! committing thread; sled is written without a flush and made durable in the background
//! (a *checkpoint*), after which the segments it covers are recycled.
//!
//! The files:
//! - segments `<first position, 20 digits>.wal`, each [`SEGMENT_BYTES`] (a frame larger than
//!   a segment gets a segment of its own, larger): a [`HEADER_BYTES`] header
//!   (`PURSEWAL`, version, first position, CRC-32), then frames
//!   `[length u32][CRC-32 u32][position u64][generation u64][entry]` (big-endian; the CRC covers
//!   length, position, generation and entry). A segment's frames run from its first position
//!   without gaps; the segments, named by first position, continue each other without gaps.
//! - `spare.wal`: a segment's worth of written (zeroed or recycled) space, renamed into the next
//!   segment. An `fdatasync` over space already written need not commit the file system's
//!   journal: on this project's disk 90–156 µs, against 159–224 µs for an append.
//!
//! Reading stops at the first frame that is not the next one: its checksum fails, its position
//! is not the one after, or its generation is older than the frame before it. The generation is
//! the position at which this writer took the journal over (one per open, growing), so the
//! bytes an unsynced write of an earlier session left behind the end are never read as part of a
//! later session's chain, even where a new frame ends exactly where an old one began.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Error;
use crate::journal::{Journal, JournalEntry, Visit};
use crate::sled_storage::io_error;
use crate::storage::Syncer;

/// The folder of the write-ahead log in a ledger directory.
pub(crate) const DIR_NAME: &str = "purse-wal";
/// The journal's name, recorded in the image's meta tree.
pub(crate) const NAME: &str = "local";
/// The bytes of a segment, not tuned by measurement (a ledger at rest keeps one and a spare). A
/// segment is checkpointed and recycled once it is full.
pub(crate) const SEGMENT_BYTES: u64 = 8 << 20;
/// A segment's header: one page, so that frames never share the header's page.
pub(crate) const HEADER_LEN: usize = 4096;
pub(crate) const HEADER_BYTES: u64 = 4096;
const MAGIC: [u8; 8] = *b"PURSEWAL";
/// The version of the segment and frame layout (the header's byte 8).
pub(crate) const VERSION: u8 = 1;
pub(crate) const FRAME_HEADER_BYTES: usize = 24;
const SEGMENT_SUFFIX: &str = ".wal";
const SPARE_NAME: &str = "spare.wal";
const SPARE_TEMPORARY_NAME: &str = "spare.wal.zeroing";
/// The free space below which no spare is prepared: a nearly full disk keeps its room for the
/// log itself.
const SPARE_ROOM_MIN: u64 = 4 * SEGMENT_BYTES;
/// Zeroes written at a time while preparing a spare.
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// The header of a segment whose first frame is at `first`.
pub(crate) fn encode_header(first: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8] = VERSION;
    header[16..24].copy_from_slice(&first.to_be_bytes());
    let checksum = crc32fast::hash(&header[..24]);
    header[24..28].copy_from_slice(&checksum.to_be_bytes());
    header
}

/// The first position a header names, `None` if the bytes are not a whole, valid header of this
/// version (a segment whose header a crash cut short, or a recycled file not yet renamed).
fn decode_header(bytes: &[u8]) -> Result<Option<u64>, String> {
    if bytes.len() < 28 || bytes[..8] != MAGIC {
        return Ok(None);
    }
    if crc32fast::hash(&bytes[..24]).to_be_bytes() != bytes[24..28] {
        return Ok(None);
    }
    if bytes[8] != VERSION {
        return Err(format!("segment version {} is not one this build reads ({VERSION})", bytes[8]));
    }
    Ok(Some(u64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"))))
}

/// Appends the frame of `entry` at `position` to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, position: u64, generation: u64, entry: &[u8]) {
    let length = u32::try_from(entry.len()).expect("a journal entry under 4 GiB");
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&length.to_be_bytes());
    hasher.update(&position.to_be_bytes());
    hasher.update(&generation.to_be_bytes());
    hasher.update(entry);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&hasher.finalize().to_be_bytes());
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(entry);
}

/// A frame read back: its position, and where its entry is in the segment.
struct Frame {
    position: u64,
    entry: std::ops::Range<usize>,
}

/// The chain of frames of a segment's bytes, from its header on: stops at the first frame that
/// does not continue it (see the module documentation).
fn frames(bytes: &[u8], first: u64) -> impl Iterator<Item = Frame> + '_ {
    let mut at = HEADER_LEN;
    let mut expected = first;
    let mut generation = 0;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at.checked_add(FRAME_HEADER_BYTES)?)?;
        let length = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let stored = &header[4..8];
        let position = u64::from_be_bytes(header[8..16].try_into().expect("8 bytes"));
        let frame_generation = u64::from_be_bytes(header[16..24].try_into().expect("8 bytes"));
        let start = at + FRAME_HEADER_BYTES;
        let entry = bytes.get(start..start.checked_add(length)?)?;
        if length == 0 || position != expected || frame_generation < generation {
            return None;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header[..4]);
        hasher.update(&header[8..24]);
        hasher.update(entry);
        if hasher.finalize().to_be_bytes() != stored {
            return None;
        }
        at = start + length;
        expected += 1;
        generation = frame_generation;
        Some(Frame { position, entry: start..start + length })
    })
}

/// A segment on disk: its first position, its last (`first - 1` while empty), and where its
/// chain of frames ends (the next frame goes there, in the active segment).
#[derive(Debug, Clone)]
struct Segment {
    first: u64,
    last: u64,
    end: u64,
    path: PathBuf,
}

/// The segment appended to.
#[derive(Debug)]
struct Active {
    segment: Segment,
    file: File,
    /// The segment's space was not written before (a new, sparse file): the next commit that
    /// finds a spare moves to it.
    sparse: bool,
}

/// The files, under the lock that orders writes and syncs.
#[derive(Debug)]
struct Files {
    active: Active,
    /// Full segments, oldest first, kept until a checkpoint covers them.
    sealed: Vec<Segment>,
    /// The last position made durable.
    durable: u64,
}

/// Appends not yet written, under a lock of their own so that appending never waits for a sync.
#[derive(Debug, Default)]
struct Appends {
    entries: Vec<(u64, Vec<u8>)>,
    /// The position the next append lands at; 0 until the journal is taken over.
    next: u64,
    /// The generation of this writer's frames (its take-over position).
    generation: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    appends: Mutex<Appends>,
    files: Mutex<Files>,
    /// Set by the first failed write, sync or checkpoint: every later call fails (the writer is
    /// poisoned and the ledger must be reopened).
    failed: Mutex<Option<String>>,
    /// Asks the checkpoint thread to stop what it does (zeroing a spare) and end.
    stopping: AtomicBool,
}

/// The checkpoint thread: each position sent asks it to make the image durable, then drop the
/// sealed segments up to that position.
#[derive(Debug)]
struct Checkpoints {
    jobs: SyncSender<u64>,
    thread: std::thread::JoinHandle<()>,
}

/// The local journal. See the module documentation.
#[derive(Debug)]
pub(crate) struct FileJournal {
    inner: Arc<Inner>,
    checkpoints: Mutex<Option<Checkpoints>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    crate::sled_storage::sync_dir_named(dir, "the write-ahead log's folder")
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SEGMENT_SUFFIX}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|error| io_error(&format!("reading write-ahead log segment {}", path.display()), &error))
}

/// A segment's header and chain of frames, not the written space after them (opening read the
/// whole file once already, to find where the chain ends).
fn read_chain(segment: &Segment) -> Result<Vec<u8>, Error> {
    let failed = |error: std::io::Error| {
        io_error(&format!("reading write-ahead log segment {}", segment.path.display()), &error)
    };
    let mut bytes = vec![0; usize::try_from(segment.end).expect("a segment fits memory")];
    File::open(&segment.path).and_then(|file| file.read_exact_at(&mut bytes, 0)).map_err(failed)?;
    Ok(bytes)
}

fn open_read_write(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|error| io_error(&format!("opening write-ahead log segment {}", path.display()), &error))
}

/// The segments in `dir`, by first position.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|error| io_error("listing the write-ahead log", &error))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| io_error("listing the write-ahead log", &error))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(digits) = name.strip_suffix(SEGMENT_SUFFIX) else { continue };
        if digits.len() == 20 && digits.bytes().all(|byte| byte.is_ascii_digit()) {
            let first =
                digits.parse().map_err(|_| Error::Corruption(format!("write-ahead log segment {name}: bad name")))?;
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

impl FileJournal {
    /// Opens (or creates) the write-ahead log in `ledger/purse-wal`. Reads every segment to
    /// find where the chain ends; a gap between segments, a segment that is not the last with no
    /// valid header, or a header of another version is `CORRUPTION`. Appending needs
    /// [`Journal::take_over`] first.
    pub fn open(ledger: &Path) -> Result<FileJournal, Error> {
        let dir = ledger.join(DIR_NAME);
        match std::fs::create_dir(&dir) {
            Ok(()) => sync_dir(ledger)?,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io_error("creating the write-ahead log's folder", &error)),
        }
        let listed = list_segments(&dir)?;
        let mut segments: Vec<Segment> = Vec::new();
        let mut header_valid = true;
        for (index, (first, path)) in listed.iter().enumerate() {
            let bytes = read_file(path)?;
            let damaged = |why: String| Error::Corruption(format!("write-ahead log segment {}: {why}", path.display()));
            let is_last = index + 1 == listed.len();
            let mut last = first - 1;
            let mut end = HEADER_BYTES;
            match decode_header(&bytes).map_err(damaged)? {
                Some(named) if named == *first => {
                    for frame in frames(&bytes, *first) {
                        last = frame.position;
                        end = frame.entry.end as u64;
                    }
                    if !is_last && last < *first {
                        return Err(damaged("it is empty, but segments follow it".into()));
                    }
                }
                // A crash while it was being made the next segment: the spare renamed, its
                // header not yet rewritten (or cut short). Empty.
                Some(_) | None if is_last => header_valid = false,
                Some(named) => return Err(damaged(format!("its header names position {named}"))),
                None => return Err(damaged("it has no valid header, but segments follow it".into())),
            }
            if let Some(before) = segments.last() {
                if before.last + 1 != *first {
                    return Err(Error::Corruption(format!(
                        "the write-ahead log is missing entries {} to {}: segment {} ends at {}, the next begins at {first}",
                        before.last + 1,
                        first - 1,
                        before.path.display(),
                        before.last
                    )));
                }
            }
            segments.push(Segment { first: *first, last, end, path: path.clone() });
        }
        let active = match segments.pop() {
            Some(segment) => {
                let file = open_read_write(&segment.path)?;
                if !header_valid {
                    write_header(&file, &segment)?;
                }
                let sparse = file_is_sparse(&file, &segment.path)?;
                Active { segment, file, sparse }
            }
            None => new_segment(&dir, 1)?,
        };
        let durable = active.segment.last;
        let files = Files { active, sealed: segments, durable };
        let inner = Inner {
            dir,
            appends: Mutex::new(Appends::default()),
            files: Mutex::new(files),
            failed: Mutex::new(None),
            stopping: AtomicBool::new(false),
        };
        Ok(FileJournal { inner: Arc::new(inner), checkpoints: Mutex::new(None) })
    }

    /// The segments' first positions and the spare's presence (tests).
    #[cfg(test)]
    fn layout(&self) -> (Vec<u64>, bool) {
        let files = locked(&self.inner.files);
        let mut firsts: Vec<u64> = files.sealed.iter().map(|segment| segment.first).collect();
        firsts.push(files.active.segment.first);
        (firsts, self.inner.dir.join(SPARE_NAME).exists())
    }
}

fn write_header(file: &File, segment: &Segment) -> Result<(), Error> {
    file.write_all_at(&encode_header(segment.first), 0)
        .and_then(|()| file.sync_data())
        .map_err(|error| io_error(&format!("writing the header of {}", segment.path.display()), &error))
}

/// Whether the segment's space was not written before it became one: shorter than a segment,
/// or fewer blocks than its length.
fn file_is_sparse(file: &File, path: &Path) -> Result<bool, Error> {
    use std::os::unix::fs::MetadataExt;
    let metadata =
        file.metadata().map_err(|error| io_error(&format!("reading the size of {}", path.display()), &error))?;
    Ok(metadata.len() < SEGMENT_BYTES || metadata.blocks().saturating_mul(512) < metadata.len())
}

/// The segment whose first frame will be at `first`: the spare renamed, or else a new file that
/// grows as frames are appended. Durable (header and name) before it returns.
fn new_segment(dir: &Path, first: u64) -> Result<Active, Error> {
    let path = segment_path(dir, first);
    let segment = Segment { first, last: first - 1, end: HEADER_BYTES, path: path.clone() };
    let spare = dir.join(SPARE_NAME);
    let (file, sparse) = match std::fs::rename(&spare, &path) {
        Ok(()) => (open_read_write(&path)?, false),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let file =
                OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(|error| {
                    io_error(&format!("creating write-ahead log segment {}", path.display()), &error)
                })?;
            (file, true)
        }
        Err(error) => return Err(io_error("taking the write-ahead log's spare segment", &error)),
    };
    write_header(&file, &segment)?;
    sync_dir(dir)?;
    Ok(Active { segment, file, sparse })
}

impl Inner {
    fn check(&self) -> Result<(), Error> {
        match locked(&self.failed).as_ref() {
            Some(reason) => Err(Error::Storage(reason.clone())),
            None => Ok(()),
        }
    }

    fn fail(&self, error: Error) -> Error {
        locked(&self.failed).get_or_insert_with(|| error.to_string());
        error
    }

    /// Writes and syncs every append made so far; the position of the last durable one.
    fn sync(&self) -> Result<u64, Error> {
        self.check()?;
        let mut files = locked(&self.files);
        let (entries, generation) = {
            let mut appends = locked(&self.appends);
            (std::mem::take(&mut appends.entries), appends.generation)
        };
        let Some(&(last, _)) = entries.last() else { return Ok(files.durable) };
        self.write(&mut files, &entries, generation).map_err(|error| self.fail(error))?;
        files.durable = last;
        Ok(last)
    }

    fn write(&self, files: &mut Files, entries: &[(u64, Vec<u8>)], generation: u64) -> Result<(), Error> {
        if files.active.sparse && self.dir.join(SPARE_NAME).exists() {
            self.rotate(files, entries[0].0)?;
        }
        let mut buffer = Vec::new();
        for (position, entry) in entries {
            let frame_bytes = (FRAME_HEADER_BYTES + entry.len()) as u64;
            let written = files.active.segment.end + buffer.len() as u64;
            if written + frame_bytes > SEGMENT_BYTES && written > HEADER_BYTES {
                self.write_out(&mut files.active, &mut buffer)?;
                self.sync_active(&files.active)?;
                self.rotate(files, *position)?;
            }
            encode_frame(&mut buffer, *position, generation, entry);
            files.active.segment.last = *position;
        }
        self.write_out(&mut files.active, &mut buffer)?;
        self.sync_active(&files.active)
    }

    fn write_out(&self, active: &mut Active, buffer: &mut Vec<u8>) -> Result<(), Error> {
        if buffer.is_empty() {
            return Ok(());
        }
        active
            .file
            .write_all_at(buffer, active.segment.end)
            .map_err(|error| io_error(&format!("writing to {}", active.segment.path.display()), &error))?;
        active.segment.end += buffer.len() as u64;
        buffer.clear();
        Ok(())
    }

    fn sync_active(&self, active: &Active) -> Result<(), Error> {
        active.file.sync_data().map_err(|error| io_error("fdatasync of the write-ahead log", &error))
    }

    /// Seals the active segment (already durable) and starts the next at `first`.
    fn rotate(&self, files: &mut Files, first: u64) -> Result<(), Error> {
        let next = new_segment(&self.dir, first)?;
        let sealed = std::mem::replace(&mut files.active, next);
        // An empty segment has the new one's name: the spare, renamed over it, replaced it.
        if sealed.segment.last >= sealed.segment.first {
            files.sealed.push(sealed.segment);
        }
        Ok(())
    }

    /// The newest position a checkpoint would let go of segments up to, if there is one.
    fn releasable(&self, applied: u64) -> Option<u64> {
        let files = locked(&self.files);
        files.sealed.first().filter(|oldest| oldest.last <= applied).map(|_| applied)
    }

    /// Drops the sealed segments whose entries are all at or below `through` (the image has
    /// them durably): the first becomes the spare if there is none, the others are removed.
    fn release(&self, through: u64) -> Result<(), Error> {
        let released: Vec<Segment> = {
            let mut files = locked(&self.files);
            let count = files.sealed.iter().take_while(|segment| segment.last <= through).count();
            files.sealed.drain(..count).collect()
        };
        for segment in &released {
            remove_or_recycle(&self.dir, &segment.path)?;
        }
        if !released.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Writes a spare segment's worth of zeroes, unless there is a spare or the disk has less
    /// than [`SPARE_ROOM_MIN`] free; stops early (leaving no spare) when the journal is closing.
    /// A spare only makes syncs cheaper: a failure here removes the partial file and is not an
    /// error of the ledger (segments are then files that grow).
    fn prepare_spare(&self) {
        let spare = self.dir.join(SPARE_NAME);
        if spare.exists() || fs2::available_space(&self.dir).map_or(true, |free| free < SPARE_ROOM_MIN) {
            return;
        }
        let temporary = self.dir.join(SPARE_TEMPORARY_NAME);
        if self.zero_spare(&temporary, &spare).is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
    }

    fn zero_spare(&self, temporary: &Path, spare: &Path) -> std::io::Result<()> {
        let file = File::create(temporary)?;
        let zeroes = vec![0u8; ZERO_CHUNK_BYTES];
        let mut written = 0u64;
        while written < SEGMENT_BYTES {
            if self.stopping.load(Ordering::Relaxed) {
                return Err(std::io::Error::other("the log is closing"));
            }
            file.write_all_at(&zeroes, written)?;
            written += ZERO_CHUNK_BYTES as u64;
        }
        file.sync_data()?;
        std::fs::rename(temporary, spare)?;
        File::open(&self.dir)?.sync_all()
    }
}

/// The file of a released segment becomes the spare (its space is written: an `fdatasync` over
/// it is cheap), or is removed when there is a spare already.
fn remove_or_recycle(dir: &Path, path: &Path) -> Result<(), Error> {
    let spare = dir.join(SPARE_NAME);
    let result = if spare.exists() || path.metadata().is_ok_and(|metadata| metadata.len() < SEGMENT_BYTES) {
        std::fs::remove_file(path)
    } else {
        std::fs::rename(path, &spare)
    };
    result.map_err(|error| io_error(&format!("releasing write-ahead log segment {}", path.display()), &error))
}

/// The checkpoint thread: makes the image durable with `image`, then releases what it covers;
/// between jobs, prepares the spare.
fn run_checkpoints(inner: Arc<Inner>, mut image: Box<dyn Syncer>, jobs: Receiver<u64>) {
    let mut work = || -> Result<bool, Error> {
        inner.prepare_spare();
        match jobs.recv() {
            Ok(through) => {
                image.sync()?;
                inner.release(through)?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    };
    loop {
        if inner.stopping.load(Ordering::Relaxed) {
            return;
        }
        match work() {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                inner.fail(Error::Storage(format!("checkpointing the write-ahead log: {error}")));
                return;
            }
        }
    }
}

impl FileJournal {
    fn stop_checkpoints(&self) {
        let taken = locked(&self.checkpoints).take();
        if let Some(Checkpoints { jobs, thread }) = taken {
            self.inner.stopping.store(true, Ordering::Relaxed);
            drop(jobs);
            let _ = thread.join();
        }
    }
}

impl Drop for FileJournal {
    fn drop(&mut self) {
        self.stop_checkpoints();
    }
}

impl Journal for FileJournal {
    fn name(&self) -> String {
        NAME.to_owned()
    }

    /// Appends the epoch marker after the chain's end and syncs it. Fencing needs nothing more:
    /// sled's lock on the directory admits one process.
    fn take_over(&self, owner: &str) -> Result<u64, Error> {
        let marker = {
            let files = locked(&self.inner.files);
            let marker = files.durable + 1;
            *locked(&self.inner.appends) = Appends { entries: Vec::new(), next: marker, generation: marker };
            marker
        };
        self.append(JournalEntry::Epoch(owner.to_owned()).encode())?;
        self.inner.sync()?;
        Ok(marker)
    }

    fn read(&self, after: u64, until: u64, visit: &mut Visit<'_>) -> Result<(), Error> {
        let segments: Vec<Segment> = {
            let files = locked(&self.inner.files);
            files.sealed.iter().cloned().chain(std::iter::once(files.active.segment.clone())).collect()
        };
        let mut next = after + 1;
        for segment in segments.iter().filter(|segment| segment.last > after && segment.first <= until) {
            if segment.first > next {
                break;
            }
            let bytes = read_chain(segment)?;
            for frame in frames(&bytes, segment.first) {
                if frame.position > until {
                    break;
                }
                if frame.position == next {
                    visit(frame.position, &bytes[frame.entry])?;
                    next += 1;
                }
            }
        }
        if next <= until {
            return Err(Error::Corruption(format!(
                "the write-ahead log is missing entry {next}: it holds entries up to {until} in {}",
                self.inner.dir.display()
            )));
        }
        Ok(())
    }

    fn append(&self, entry: Vec<u8>) -> Result<(), Error> {
        self.inner.check()?;
        let mut appends = locked(&self.inner.appends);
        if appends.next == 0 {
            return Err(Error::Storage("appending to a journal not taken over".into()));
        }
        let position = appends.next;
        appends.entries.push((position, entry));
        appends.next += 1;
        Ok(())
    }

    fn sync(&self) -> Result<u64, Error> {
        self.inner.sync()
    }

    fn image_syncer(&self, image: Box<dyn Syncer>) -> Result<(), Error> {
        let (jobs, received) = std::sync::mpsc::sync_channel(1);
        let inner = Arc::clone(&self.inner);
        let thread = std::thread::Builder::new()
            .name("purse-wal-checkpoint".into())
            .spawn(move || run_checkpoints(inner, image, received))
            .map_err(|error| io_error("starting the write-ahead log's checkpoint thread", &error))?;
        *locked(&self.checkpoints) = Some(Checkpoints { jobs, thread });
        Ok(())
    }

    fn applied(&self, position: u64) -> Result<(), Error> {
        self.inner.check()?;
        let Some(through) = self.inner.releasable(position) else { return Ok(()) };
        if let Some(checkpoints) = locked(&self.checkpoints).as_ref() {
            match checkpoints.jobs.try_send(through) {
                // Full: a checkpoint is waiting already; the next sync asks again.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => self.inner.check()?,
            }
        }
        Ok(())
    }

    /// The image is durable through `applied` (the caller synced it): stops the checkpoint
    /// thread, starts an empty segment after `applied` and drops every other one, so that a
    /// ledger at rest keeps one empty segment and the spare.
    fn close(&self, applied: u64) -> Result<(), Error> {
        self.stop_checkpoints();
        self.inner.check()?;
        {
            let mut files = locked(&self.inner.files);
            if files.durable != applied {
                return Err(Error::Storage(format!(
                    "closing the write-ahead log at entry {applied}, but it holds entries up to {}",
                    files.durable
                )));
            }
            if files.active.segment.last >= files.active.segment.first {
                self.inner.rotate(&mut files, applied + 1)?;
            }
        }
        self.inner.release(applied)
    }
}

/// Crash-test support: damages the write-ahead log of the closed (or killed) ledger at `ledger`
/// the way a power loss may. Its last segment loses every frame from a boundary `choose` picks
/// (given the count of candidates, returns one below it) among the boundaries after the last
/// frame that holds a block of an acknowledged entry (first sequence at most `acknowledged`):
/// what was never acknowledged may or may not have reached the disk. The lost frames are
/// zeroed. Returns how many frames were lost.
pub fn lose_unacknowledged_tail(
    ledger: &Path,
    acknowledged: u64,
    choose: impl FnOnce(u64) -> u64,
) -> Result<u64, Error> {
    let dir = ledger.join(DIR_NAME);
    let Some((first, path)) = list_segments(&dir)?.pop() else { return Ok(0) };
    let bytes = read_file(&path)?;
    let chain: Vec<Frame> = frames(&bytes, first).collect();
    let holds_acknowledged = |frame: &Frame| match JournalEntry::decode(frame.position, &bytes[frame.entry.clone()]) {
        Ok(JournalEntry::Put(blocks)) => blocks.iter().any(|(block_first, _)| *block_first <= acknowledged),
        _ => false,
    };
    let keep_at_least = chain.iter().rposition(holds_acknowledged).map_or(0, |index| index + 1);
    let candidates = (chain.len() - keep_at_least) as u64 + 1;
    let keep =
        keep_at_least + usize::try_from(choose(candidates).min(candidates - 1)).expect("below a count of frames");
    let Some(from) = chain.get(keep).map(|frame| frame.entry.start - FRAME_HEADER_BYTES) else { return Ok(0) };
    let to = chain.last().map_or(from, |frame| frame.entry.end);
    let file = open_read_write(&path)?;
    file.write_all_at(&vec![0; to - from], from as u64)
        .and_then(|()| file.sync_data())
        .map_err(|error| io_error("zeroing the write-ahead log's tail", &error))?;
    Ok((chain.len() - keep) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(journal: &FileJournal, after: u64, until: u64) -> Vec<(u64, Vec<u8>)> {
        let mut seen = Vec::new();
        journal
            .read(after, until, &mut |position, bytes| {
                seen.push((position, bytes.to_vec()));
                Ok(())
            })
            .unwrap();
        seen
    }

    /// Fixed bytes: the stored layout, not whatever today's encoder makes.
    #[test]
    fn frames_and_headers_encode_to_their_fixed_bytes() {
        let mut frame = Vec::new();
        encode_frame(&mut frame, 7, 3, b"ab");
        assert_eq!(
            frame,
            [0, 0, 0, 2, 0x28, 0xba, 0x46, 0x59, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b'],
            "{frame:02x?}"
        );
        let header = encode_header(513);
        assert_eq!(
            &header[..28],
            b"PURSEWAL\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\x02\x01\x90\xcd\xc2\xaa",
            "{:02x?}",
            &header[..28]
        );
        assert!(header[28..].iter().all(|byte| *byte == 0));
        assert_eq!(decode_header(&header), Ok(Some(513)));
    }

    #[test]
    fn what_was_synced_reads_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("a").unwrap(), 1);
        journal.append(b"one".to_vec()).unwrap();
        journal.append(b"two".to_vec()).unwrap();
        assert_eq!(journal.sync().unwrap(), 3);
        journal.append(b"never synced".to_vec()).unwrap();
        drop(journal);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("b").unwrap(), 4);
        let read = entries(&journal, 1, 4);
        assert_eq!(read[0], (2, b"one".to_vec()));
        assert_eq!(read[1], (3, b"two".to_vec()));
        assert_eq!(JournalEntry::decode(4, &read[2].1).unwrap(), JournalEntry::Epoch("b".into()));
    }

    /// An unsynced write of an earlier session left a whole frame behind the end, exactly where
    /// the next session's chain continues: the generation keeps it out.
    #[test]
    fn an_earlier_sessions_leftover_frame_is_not_read_as_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        journal.take_over("a").unwrap();
        drop(journal);
        let path = segment_path(&dir.path().join(DIR_NAME), 1);
        let bytes = std::fs::read(&path).unwrap();
        let end = frames(&bytes, 1).last().unwrap().entry.end;
        // Session 1 wrote entries 2 and 3 and died before its fsync; only entry 3's page
        // landed, right where session 2's entry 2 (its marker, of the same length) will end.
        let marker_frame = FRAME_HEADER_BYTES + JournalEntry::Epoch("b".into()).encode().len();
        let mut leftover = Vec::new();
        encode_frame(&mut leftover, 3, 1, b"old3");
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&leftover, (end + marker_frame) as u64).unwrap();
        drop(file);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("b").unwrap(), 2);
        drop(journal);
        let bytes = std::fs::read(&path).unwrap();
        let chain: Vec<u64> = frames(&bytes, 1).map(|frame| frame.position).collect();
        assert_eq!(chain, [1, 2], "generation 1's entry 3 follows generation 2's entry 2 and is not read");
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("c").unwrap(), 3);
    }

    #[test]
    fn full_segments_roll_over_and_are_released_after_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        journal.take_over("a").unwrap();
        assert!(journal.inner.files.lock().unwrap().active.sparse, "a new log's first segment grows");
        journal.inner.prepare_spare();
        assert_eq!(journal.layout(), (vec![1], true));
        let entry = vec![7u8; 1 << 20];
        for _ in 0..20 {
            journal.append(entry.clone()).unwrap();
            journal.sync().unwrap();
        }
        // The first sync moved from the growing segment to the spare; 7 frames of 1 MiB fill one.
        let (firsts, spare) = journal.layout();
        assert_eq!(firsts, [1, 2, 9, 16], "{firsts:?}");
        assert!(!spare);
        assert_eq!(entries(&journal, 0, 21).len(), 21);
        assert_eq!(journal.inner.releasable(0), None, "segment 1 holds entry 1");
        assert_eq!(journal.inner.releasable(8), Some(8));
        journal.inner.release(8).unwrap();
        let (after, spare) = journal.layout();
        assert_eq!(after, [9, 16]);
        assert!(spare, "the released segment made from the spare became the spare again");
        let error = journal.read(0, 21, &mut |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("missing entry 1"), "{error}");
        assert_eq!(entries(&journal, 8, 21).len(), 13);
        drop(journal);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("b").unwrap(), 22);
        // The active segment grew (it was not made from a spare) and a spare is there: the
        // marker's commit moved to the spare.
        assert_eq!(journal.layout(), (vec![9, 16, 22], false));
        assert_eq!(entries(&journal, 8, 22).len(), 14);
    }

    #[test]
    fn a_gap_between_segments_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        journal.take_over("a").unwrap();
        let entry = vec![7u8; 1 << 20];
        for _ in 0..20 {
            journal.append(entry.clone()).unwrap();
            journal.sync().unwrap();
        }
        let (firsts, _) = journal.layout();
        drop(journal);
        std::fs::remove_file(segment_path(&dir.path().join(DIR_NAME), firsts[1])).unwrap();
        let error = FileJournal::open(dir.path()).unwrap_err();
        assert!(error.to_string().contains("missing entries"), "{error}");
    }

    #[test]
    fn a_damaged_frame_ends_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::open(dir.path()).unwrap();
        journal.take_over("a").unwrap();
        for text in [&b"one"[..], b"two", b"three"] {
            journal.append(text.to_vec()).unwrap();
        }
        journal.sync().unwrap();
        drop(journal);
        let path = segment_path(&dir.path().join(DIR_NAME), 1);
        let bytes = std::fs::read(&path).unwrap();
        let third = frames(&bytes, 1).nth(2).unwrap();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[bytes[third.entry.start] ^ 1], third.entry.start as u64).unwrap();
        drop(file);
        let journal = FileJournal::open(dir.path()).unwrap();
        assert_eq!(journal.take_over("b").unwrap(), 3, "entries 3 and 4 are gone, the marker takes 3");
    }
}
