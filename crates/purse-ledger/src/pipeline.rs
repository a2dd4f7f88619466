//! The pipelined commit: while one batch is made durable on the syncer's thread, the writer
//! decides the next against the projections.
//!
//! The writer puts a batch's blocks into sled (unsynced) and hands the batch's answers to the
//! syncer as a [`Job`], already resolved: what each caller gets once the batch is durable. The
//! syncer takes every job waiting, makes them durable with one flush and fdatasync, answers
//! their callers, and reports back to the writer, which then records the head. So:
//!
//! - an answer still goes out only after its own batch is durable: the syncer answers a job only
//!   after a sync that began after the job's blocks were written;
//! - jobs are synced and answered in the order they were handed over, and a failed sync fails
//!   its jobs and every job after it (each was decided on top of the failed one), and the writer
//!   is poisoned as soon as it hears of it;
//! - the projections run ahead of the disk by at most the jobs in flight. Anything that reads
//!   them (queries, a group, close) first waits until no job is in flight
//!   ([`Pipeline::drain`]), so it sees only durable state, as before.
//!
//! TigerBeetle pipelines its prepares the same way: the primary prepares op N+1 while op N is
//! being replicated and written, and replies only once N is committed.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use purse_core::{Decision as CoreDecision, RuleSet};

use crate::error::Error;
use crate::head::Head;
use crate::store::StoreSyncer;
use crate::writer::{Answered, Reply};

/// Jobs that may wait for the syncer; a writer further ahead waits to hand over the next one.
/// Two: one being synced, one waiting, while the writer decides a third.
const JOBS_QUEUED_MAX: usize = 2;

/// What one caller gets once its batch is durable; if the batch's commit fails, the commit's
/// error instead.
pub(crate) enum Answer {
    Flow(Reply<Answered>, Result<Answered, Error>),
    Batch(Reply<Vec<Result<Answered<CoreDecision>, Error>>>, Vec<Result<Answered<CoreDecision>, Error>>),
    Rules(Reply<RuleSet>, RuleSet),
}

impl Answer {
    /// Sends the answer, or `commit`'s error if the commit failed.
    pub fn send(self, commit: &Result<(), Error>) {
        match (self, commit) {
            (Answer::Flow(reply, answer), Ok(())) => drop(reply.send(answer)),
            (Answer::Flow(reply, _), Err(error)) => drop(reply.send(Err(error.clone()))),
            (Answer::Batch(reply, items), Ok(())) => drop(reply.send(Ok(items))),
            (Answer::Batch(reply, items), Err(error)) => {
                drop(reply.send(Ok(items.into_iter().map(|_| Err(error.clone())).collect())))
            }
            (Answer::Rules(reply, rules), Ok(())) => drop(reply.send(Ok(rules))),
            (Answer::Rules(reply, _), Err(error)) => drop(reply.send(Err(error.clone()))),
        }
    }
}

/// One batch handed to the syncer: its blocks are in sled, unsynced.
pub(crate) struct Job {
    /// The log's head once this batch is durable.
    pub head: Head,
    /// Whether the batch wrote blocks. One that did not (only refusals and replays, resting on
    /// batches still in flight) needs no sync of its own once those are synced.
    pub wrote: bool,
    pub answers: Vec<Answer>,
}

/// What the syncer reports of the jobs it took, in order.
enum Done {
    /// Durable and answered; the head to record.
    Durable { jobs: usize, head: Head },
    /// Not durable: every job was answered with the error, and so will every later one be.
    Failed { jobs: usize, reason: String },
}

/// The writer's side of the syncer thread.
pub(crate) struct Pipeline {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Jobs handed over and not yet reported done.
    in_flight: usize,
}

/// What became of the jobs reported done since the last look.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    /// The furthest head made durable.
    pub head: Option<Head>,
    /// Why a sync failed, if one did.
    pub failed: Option<String>,
}

impl Pipeline {
    /// Starts the syncer thread over `syncer`.
    pub fn start(syncer: StoreSyncer) -> Result<Pipeline, Error> {
        let (jobs, receiver) = mpsc::sync_channel(JOBS_QUEUED_MAX);
        let (report, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("purse-syncer".into())
            .spawn(move || run(syncer, &receiver, &report))
            .map_err(|error| Error::Storage(format!("starting the syncer thread: {error}")))?;
        Ok(Pipeline { jobs: Some(jobs), done, thread: Some(thread), in_flight: 0 })
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands a job over; waits while [`JOBS_QUEUED_MAX`] jobs already wait. `Err` if the
    /// syncer thread is gone (it panicked): the job's callers were told, and the writer must stop.
    pub fn hand_over(&mut self, job: Job) -> Result<(), Error> {
        let Some(jobs) = &self.jobs else { unreachable!("the pipeline is open until dropped") };
        match jobs.send(job) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(mpsc::SendError(job)) => {
                let gone = Error::Storage("the syncer thread stopped".into());
                job.answers.into_iter().for_each(|answer| answer.send(&Err(gone.clone())));
                Err(gone)
            }
        }
    }

    /// What the syncer finished since the last call, without waiting.
    pub fn settled(&mut self) -> Settled {
        let mut settled = Settled::default();
        while let Ok(done) = self.done.try_recv() {
            self.note(done, &mut settled);
        }
        settled
    }

    /// Waits until every job handed over is durable (or failed).
    pub fn drain(&mut self) -> Settled {
        let mut settled = self.settled();
        while self.in_flight > 0 {
            match self.done.recv() {
                Ok(done) => self.note(done, &mut settled),
                Err(_) => {
                    self.in_flight = 0;
                    settled.failed.get_or_insert_with(|| "the syncer thread stopped".into());
                }
            }
        }
        settled
    }

    fn note(&mut self, done: Done, settled: &mut Settled) {
        match done {
            Done::Durable { jobs, head } => {
                self.in_flight -= jobs;
                settled.head = Some(head);
            }
            Done::Failed { jobs, reason } => {
                self.in_flight -= jobs;
                settled.failed.get_or_insert(reason);
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Closing the channel ends the syncer once it has answered what it holds.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The syncer thread: takes every job waiting, syncs once for all of them, answers them in
/// order, reports. After a failed sync it syncs nothing more and fails every job.
fn run(mut syncer: StoreSyncer, jobs: &Receiver<Job>, report: &mpsc::Sender<Done>) {
    let mut failed: Option<Error> = None;
    while let Ok(first) = jobs.recv() {
        let mut taken = vec![first];
        taken.extend(jobs.try_iter());
        // Every job before these was synced already: a sync is owed only for blocks written since.
        let commit = match &failed {
            Some(error) => Err(error.clone()),
            None if taken.iter().any(|job| job.wrote) => syncer.sync(),
            None => Ok(()),
        };
        if let Err(error) = &commit {
            failed.get_or_insert_with(|| error.clone());
        }
        let count = taken.len();
        let head = taken.last().map(|job| job.head);
        for job in taken {
            job.answers.into_iter().for_each(|answer| answer.send(&commit));
        }
        let done = match (&commit, head) {
            (Ok(()), Some(head)) => Done::Durable { jobs: count, head },
            (Err(error), _) => Done::Failed { jobs: count, reason: error.to_string() },
            (Ok(()), None) => unreachable!("at least one job was taken"),
        };
        if report.send(done).is_err() {
            return;
        }
    }
}
