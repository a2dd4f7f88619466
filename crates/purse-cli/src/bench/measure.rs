//! What the bench measures besides its own clock: CPU time by thread and of the whole machine,
//! peak memory, the files' size. All read from `/proc` and the file system, in integers.

use std::path::Path;

/// CPU time in milliseconds by kind of thread, read from `/proc/self/task/*/stat`.
#[derive(Debug, Default)]
pub struct ThreadCpu {
    pub writer: u64,
    /// The writer's syncer thread: sled's flush and the fdatasync.
    pub syncer: u64,
    pub callers: u64,
    pub sled: u64,
}

impl ThreadCpu {
    pub fn now() -> ThreadCpu {
        let mut cpu = ThreadCpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return cpu };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
            // "tid (comm) state ppid …": utime and stime are the 12th and 13th fields after the comm.
            let Some((head, rest)) = stat.rsplit_once(") ") else { continue };
            let comm = head.split_once(" (").map_or("", |(_, comm)| comm);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok()).unwrap_or(0);
            // USER_HZ is 100 on Linux: a tick is 10 ms.
            let millis = (ticks(11) + ticks(12)) * 10;
            if comm == "purse-writer" {
                cpu.writer += millis;
            } else if comm == "purse-syncer" {
                cpu.syncer += millis;
            } else if comm.starts_with("sled") || comm.starts_with("log flush") {
                cpu.sled += millis;
            } else {
                cpu.callers += millis;
            }
        }
        cpu
    }

    pub fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            writer: self.writer.saturating_sub(before.writer),
            syncer: self.syncer.saturating_sub(before.syncer),
            callers: self.callers.saturating_sub(before.callers),
            sled: self.sled.saturating_sub(before.sled),
        }
    }
}

/// The machine's busy CPU time and this process's, in milliseconds (10 ms ticks).
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    busy: u64,
    own: u64,
}

impl MachineCpu {
    pub fn now() -> MachineCpu {
        let ticks = |text: &str, skip: usize, fields: &[usize]| -> u64 {
            let values: Vec<u64> = text.split_whitespace().skip(skip).filter_map(|field| field.parse().ok()).collect();
            fields.iter().filter_map(|&index| values.get(index)).sum::<u64>() * 10
        };
        // "cpu  user nice system idle iowait irq softirq steal …": everything but idle and iowait.
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let busy = stat.lines().next().map_or(0, |line| ticks(line, 1, &[0, 1, 2, 5, 6, 7]));
        // After "(comm) ": state, then utime and stime are the 12th and 13th fields.
        let own_stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let own = own_stat.rsplit_once(") ").map_or(0, |(_, rest)| {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |index: usize| fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
            (field(11) + field(12)) * 10
        });
        MachineCpu { busy, own }
    }

    /// CPU time this process used since `before`.
    pub fn own_since(&self, before: &MachineCpu) -> u64 {
        self.own.saturating_sub(before.own)
    }

    /// CPU time other processes used since `before`.
    pub fn foreign_since(&self, before: &MachineCpu) -> u64 {
        self.busy.saturating_sub(before.busy).saturating_sub(self.own.saturating_sub(before.own))
    }
}

/// The process's peak resident set (`VmHWM` in /proc/self/status), in bytes; 0 if unknown.
pub fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[derive(Debug, Default)]
pub struct DiskUse {
    /// Blocks allocated, in bytes.
    pub allocated: u64,
    /// File lengths.
    pub apparent: u64,
}

/// What the files under `path` take, walked recursively.
pub fn directory_bytes(path: &Path) -> DiskUse {
    use std::os::unix::fs::MetadataExt;
    let mut total = DiskUse::default();
    let mut pending = vec![path.to_owned()];
    while let Some(directory) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&directory) else { continue };
        for entry in entries.flatten() {
            let Ok(metadata) = entry.metadata() else { continue };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total.allocated += metadata.blocks() * 512;
                total.apparent += metadata.len();
            }
        }
    }
    total
}

/// Probes of [`fdatasync_floor`].
pub const FSYNC_PROBES: usize = 200;
/// Bytes written before each probe's fdatasync: about what one small commit adds to sled's file.
const FSYNC_PROBE_BYTES: usize = 4096;
/// The probe file grows to this, then the probes write it again from the start: a small file,
/// removed after, on a disk that may be nearly full.
const FSYNC_PROBE_FILE_BYTES: u64 = 64 * 1024;

/// The disk's floor under every durable commit, measured in the same run: [`FSYNC_PROBES`]
/// times, write 4 KiB to a file beside the ledger (same file system; appended until the file
/// holds 64 KiB, then over it again) and fdatasync it. Returns the median and p99 in
/// microseconds. A commit can never be durable faster than this.
pub fn fdatasync_floor(beside: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let directory = beside.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = tempfile::NamedTempFile::new_in(directory)?;
    let block = [0x5au8; FSYNC_PROBE_BYTES];
    let mut micros = Vec::with_capacity(FSYNC_PROBES);
    for probe in 0..FSYNC_PROBES as u64 {
        let offset = probe * FSYNC_PROBE_BYTES as u64 % FSYNC_PROBE_FILE_BYTES;
        file.as_file().write_all_at(&block, offset)?;
        let started = std::time::Instant::now();
        file.as_file().sync_data()?;
        micros.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    micros.sort_unstable();
    Ok((micros[FSYNC_PROBES / 2], micros[FSYNC_PROBES * 99 / 100]))
}
