//! One simulated run: a seed's workload against a real `SyncLedger` on a [`SimDisk`], with
//! crashes, faults and the checks of [`crate::check`] after every batch and every reopen.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use purse_core::{Config, ErrorCode, Timestamp};
use purse_ledger::sim_support::{SimAnswer, SimRequest, SyncLedger};
use purse_ledger::{Error, GroupItem};

use crate::check::{Mirror, Tally};
use crate::disk::{Breakage, CrashKind, Flip, SimDisk};
use crate::fault::{Coverage, Fault, Faults};
use crate::rng::Rng;
use crate::workload::{Workload, START};

/// Opens tried with faults on before a reopen goes on without them.
const OPEN_ATTEMPTS_FAULTY: usize = 20;
const OPEN_ATTEMPTS_MAX: usize = 40;
/// Per step, per mille: a clean close (then a crash, which must lose nothing).
const CLOSE_PER_MILLE: u64 = 10;
/// Batches of retries at the end, with faults off, to give every request a definitive answer.
const FINAL_RETRIES_MAX: usize = 8;

#[derive(Debug, Clone)]
pub struct Options {
    pub steps: u64,
    /// A deliberately broken disk, to prove the checker catches what it must.
    pub breakage: Option<Breakage>,
}

impl Default for Options {
    fn default() -> Options {
        Options { steps: 200, breakage: None }
    }
}

/// What a run that passed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub seed: u64,
    pub coverage: Coverage,
    pub tally: Tally,
    pub acknowledged: u64,
    /// One line per step and per crash: the run's whole story, for determinism checks.
    pub events: Vec<String>,
}

impl Run {
    /// FNV-1a over the event log: equal runs have equal hashes.
    pub fn hash(&self) -> u64 {
        hash_events(&self.events)
    }

    pub fn summary(&self) -> String {
        let tally = &self.tally;
        format!(
            "seed {} passed: {} entries acknowledged, {} written, {} replayed, {} conflicts, {} rejected, \
             {} indeterminate, {} groups committed, {} not, {} adopted after a crash, {} reopens, events {:016x}",
            self.seed,
            self.acknowledged,
            tally.written,
            tally.replayed,
            tally.conflicts,
            tally.rejected,
            tally.indeterminate,
            tally.groups_committed,
            tally.groups_dropped,
            tally.adopted,
            tally.reopens,
            self.hash()
        )
    }
}

/// A violation: the seed, the step and what differed, with the story up to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub what: String,
    pub coverage: Coverage,
    pub events: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "seed {} failed at step {}: {}", self.seed, self.step, self.what)
    }
}

pub fn hash_events(events: &[String]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in events.iter().flat_map(|event| event.bytes().chain(std::iter::once(b'\n'))) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Result<Run, Box<Failure>> {
    let mut simulation = Simulation::new(seed, options);
    let result = simulation.run(options.steps);
    let coverage = simulation.disk.coverage();
    match result {
        Ok(()) => Ok(Run {
            seed,
            coverage,
            tally: simulation.mirror.tally.clone(),
            acknowledged: simulation.mirror.acknowledged(),
            events: simulation.events,
        }),
        Err(what) => Err(Box::new(Failure { seed, step: simulation.step, what, coverage, events: simulation.events })),
    }
}

struct Simulation {
    step: u64,
    rng: Rng,
    faults: Faults,
    clock: Arc<AtomicI64>,
    /// The times the writer read from the clock, one per writer batch, since the last step.
    reads: Arc<Mutex<Vec<i64>>>,
    disk: SimDisk,
    ledger: Option<SyncLedger>,
    workload: Workload,
    mirror: Mirror,
    events: Vec<String>,
    /// Faults off (the end of a run): every request must then get a definitive answer.
    calm: bool,
}

impl Simulation {
    fn new(seed: u64, options: &Options) -> Simulation {
        let mut rng = Rng::new(seed);
        let faults = Faults::draw(&mut rng);
        let clock = Arc::new(AtomicI64::new(START));
        let disk = SimDisk::new(rng.fork(), faults, Arc::clone(&clock), options.breakage);
        let workload = Workload::new(rng.fork());
        let events = vec![format!("seed {seed}: {} clients, faults {faults:?}", workload.clients())];
        Simulation {
            step: 0,
            rng,
            faults,
            clock,
            reads: Arc::new(Mutex::new(Vec::new())),
            disk,
            ledger: None,
            workload,
            mirror: Mirror::new(),
            events,
            calm: false,
        }
    }

    fn run(&mut self, steps: u64) -> Result<(), String> {
        self.open(None)?;
        while self.step < steps {
            self.step += 1;
            self.clock.fetch_add(self.rng.between(0, 5), Ordering::SeqCst);
            let requests = self.workload.batch(self.clock.load(Ordering::SeqCst));
            self.batch(requests)?;
        }
        self.finish()
    }

    /// Sends one batch, checks its answers, and crashes when the ledger stopped or the seed says so.
    fn batch(&mut self, requests: Vec<SimRequest>) -> Result<(), String> {
        let now = self.clock.load(Ordering::SeqCst);
        let ledger = self.ledger.as_mut().expect("open between steps");
        self.reads.lock().expect("not poisoned").clear();
        let answers = ledger.batch(requests.clone());
        let times = std::mem::take(&mut *self.reads.lock().expect("not poisoned"));
        self.events.push(format!("step {} t={now}: {}", self.step, answers_line(&answers)));
        let outcome = self.mirror.batch(&requests, &answers, &times)?;
        for index in outcome.indeterminate {
            self.workload.unanswered(requests[index].clone());
        }
        if outcome.failed || self.ledger.as_ref().is_some_and(SyncLedger::poisoned) {
            return self.crash();
        }
        self.mirror.check_balances(self.ledger.as_ref().expect("open"))?;
        if self.rng.chance(CLOSE_PER_MILLE) {
            let closed = self.ledger.take().expect("open").close();
            self.events.push(format!("closed: {closed:?}"));
            return self.crash();
        }
        if self.rng.chance(self.faults.crash) {
            return self.crash();
        }
        Ok(())
    }

    /// Drops the ledger without closing it, crashes the disk, maybe flips a bit, and reopens.
    fn crash(&mut self) -> Result<(), String> {
        drop(self.ledger.take());
        let kind = if self.rng.chance(self.faults.power_loss) { CrashKind::PowerLoss } else { CrashKind::Process };
        self.disk.crash(kind);
        let flip = if !self.calm && self.rng.chance(self.faults.flip) { self.disk.flip_bit() } else { None };
        self.events.push(format!("crash: {kind:?}, flipped {flip:?}"));
        self.open(flip)
    }

    /// Opens the ledger and checks it against the mirror. With a flipped bit the open may be
    /// refused, as CORRUPTION only; the bit is then healed and the open tried again. An open
    /// that fails on an injected fault is a crash of its own.
    fn open(&mut self, mut flip: Option<Flip>) -> Result<(), String> {
        for attempt in 0..OPEN_ATTEMPTS_MAX {
            self.disk.set_injecting(!self.calm && attempt < OPEN_ATTEMPTS_FAULTY);
            let (clock, reads) = (Arc::clone(&self.clock), Arc::clone(&self.reads));
            let reader = Box::new(move || {
                let now = clock.load(Ordering::SeqCst);
                reads.lock().expect("not poisoned").push(now);
                Timestamp(now)
            });
            match SyncLedger::open(self.disk.storage(), None, None, reader) {
                Ok(ledger) => {
                    self.disk.set_injecting(!self.calm);
                    self.events.push(format!("opened at {} (attempt {attempt})", ledger.last_sequence()));
                    if ledger.config() != Config::default() {
                        return Err(format!(
                            "the ledger opened with {:?} instead of {:?} (flipped {flip:?})",
                            ledger.config(),
                            Config::default()
                        ));
                    }
                    let checked = self.mirror.reopened(&ledger, &mut self.rng);
                    self.ledger = Some(ledger);
                    return checked.map_err(|why| format!("after reopening (flipped {flip:?}): {why}"));
                }
                Err(error) => self.refused(error, &mut flip)?,
            }
        }
        Err(format!("the ledger did not open in {OPEN_ATTEMPTS_MAX} attempts"))
    }

    /// Decides what a refused open means: a detected flip (healed), an injected fault (a crash
    /// of the opening process), or a violation.
    fn refused(&mut self, error: Error, flip: &mut Option<Flip>) -> Result<(), String> {
        self.events.push(format!("open refused: {} ({error})", error.code()));
        match (error.code(), flip.take()) {
            (ErrorCode::Corruption, Some(flipped)) => {
                if !self.disk.heal(&flipped) {
                    return Err(format!("the flipped bit {flipped:?} could not be healed"));
                }
                Ok(())
            }
            (ErrorCode::Storage, flipped) => {
                *flip = flipped;
                self.disk.count(Fault::ProcessCrash);
                self.disk.crash(CrashKind::Process);
                Ok(())
            }
            (_, flipped) => Err(format!("the open was refused with {error} (flipped {flipped:?})")),
        }
    }

    /// Faults off: retries until every request has a definitive answer, then one last crash
    /// and reopen.
    fn finish(&mut self) -> Result<(), String> {
        self.calm = true;
        self.disk.set_injecting(false);
        for _ in 0..FINAL_RETRIES_MAX {
            let retries = self.workload.retries();
            if retries.is_empty() {
                break;
            }
            self.step += 1;
            self.batch(retries)?;
        }
        if self.workload.has_outstanding() {
            return Err("requests still had no definitive answer with faults off".into());
        }
        self.crash()
    }
}

/// One short word per answer: a flow id, a replayed `=id`, a group, or an error code.
fn answers_line(answers: &[SimAnswer]) -> String {
    let error = |error: &Error| error.code().as_str().to_owned();
    let words: Vec<String> = answers
        .iter()
        .map(|answer| match answer {
            SimAnswer::Submit(Ok(answer)) => match &answer.transfer_in {
                Some(flow_in) => format!("{}+{}", answer.flow.flow_id, flow_in.flow_id),
                None => answer.flow.flow_id.to_string(),
            },
            SimAnswer::Submit(Err(failure)) | SimAnswer::Rules(Err(failure)) | SimAnswer::Group(Err(failure)) => {
                error(failure)
            }
            SimAnswer::Rules(Ok(_)) => "rules".into(),
            SimAnswer::Group(Ok(outcome)) => {
                let items: Vec<String> = outcome
                    .items
                    .iter()
                    .map(|item| match item {
                        GroupItem::Written(summary) => summary.flow_id.to_string(),
                        GroupItem::Replayed(summary) => format!("={}", summary.flow_id),
                        GroupItem::Rejected(failure) => error(failure),
                        GroupItem::Skipped(reason) => format!("skip:{}", reason.code().as_str()),
                    })
                    .collect();
                format!("group{}[{}]", if outcome.committed { "+" } else { "-" }, items.join(","))
            }
        })
        .collect();
    words.join(" ")
}
