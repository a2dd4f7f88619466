//! The faults the simulator injects, how often a run injects each, and how many times it did.

use crate::rng::Rng;

/// Every kind of fault, for the coverage count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A write refused with ENOSPC (it does not happen).
    Enospc,
    /// `sync` failed with EIO: an unknown prefix of the pending writes is durable.
    SyncEio,
    ProcessCrash,
    PowerLoss,
    /// At a power loss the last surviving write was torn, and dropped.
    TornWrite,
    /// At a power loss a head slot lost its latest unsynced write.
    HeadWriteLost,
    /// A bit flipped at rest in a log block, a meta value or the head file.
    FlipLog,
    FlipMeta,
    FlipHead,
    /// A slow write or sync: the simulated clock moved on meanwhile.
    SlowIo,
}

impl Fault {
    pub const ALL: [Fault; 10] = [
        Fault::Enospc,
        Fault::SyncEio,
        Fault::ProcessCrash,
        Fault::PowerLoss,
        Fault::TornWrite,
        Fault::HeadWriteLost,
        Fault::FlipLog,
        Fault::FlipMeta,
        Fault::FlipHead,
        Fault::SlowIo,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Fault::Enospc => "enospc",
            Fault::SyncEio => "sync_eio",
            Fault::ProcessCrash => "process_crash",
            Fault::PowerLoss => "power_loss",
            Fault::TornWrite => "torn_write",
            Fault::HeadWriteLost => "head_write_lost",
            Fault::FlipLog => "flip_log",
            Fault::FlipMeta => "flip_meta",
            Fault::FlipHead => "flip_head",
            Fault::SlowIo => "slow_io",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|fault| *fault == self).expect("every fault is in ALL")
    }
}

/// How many times each fault was injected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage([u64; Fault::ALL.len()]);

impl Coverage {
    pub fn add(&mut self, fault: Fault) {
        self.0[fault.index()] += 1;
    }

    pub fn get(&self, fault: Fault) -> u64 {
        self.0[fault.index()]
    }

    pub fn merge(&mut self, other: &Coverage) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }

    /// The faults never injected.
    pub fn missing(&self) -> Vec<Fault> {
        Fault::ALL.into_iter().filter(|fault| self.get(*fault) == 0).collect()
    }

    /// `coverage: enospc=12 sync_eio=3 …`, one count per fault kind.
    pub fn line(&self) -> String {
        let counts: Vec<String> =
            Fault::ALL.iter().map(|fault| format!("{}={}", fault.name(), self.get(*fault))).collect();
        format!("coverage: {}", counts.join(" "))
    }
}

/// One run's fault rates, in per mille: each seed draws its own mix (some calm, some stormy),
/// so that rare interleavings get explored without every run drowning in faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Per write call.
    pub enospc: u64,
    /// Per `sync`.
    pub sync_eio: u64,
    /// Per power loss that kept at least one write.
    pub torn: u64,
    /// Per write or sync call.
    pub slow_io: u64,
    /// Per step: a crash although nothing failed.
    pub crash: u64,
    /// Per crash: that it is a power loss rather than a process crash.
    pub power_loss: u64,
    /// Per crash: that a bit flips at rest before the next open.
    pub flip: u64,
}

impl Faults {
    /// A random mix: each fault is on for about half the seeds.
    pub fn draw(rng: &mut Rng) -> Faults {
        let mut rate = |low: i64, high: i64| -> u64 {
            if rng.coin() {
                u64::try_from(rng.between(low, high)).expect("positive rates")
            } else {
                0
            }
        };
        Faults {
            enospc: rate(2, 30),
            sync_eio: rate(5, 60),
            torn: rate(200, 800),
            slow_io: rate(5, 50),
            crash: rate(10, 80),
            power_loss: rate(300, 900),
            flip: rate(100, 500),
        }
    }
}
