//! A synchronous driver of the writer, for the deterministic simulator (the `purse-sim`
//! crate): no threads, no tokio runtime, the simulator's medium and clock. The writer, the
//! store and the projections are exactly the ones [`crate::Ledger`] runs; only the channel
//! and the thread around them are left out. Not a stable API.

use purse_core::{Account, Buckets, Command, Decision, Flow, RuleSet, Scale, Timestamp, Zone};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::ledger::{open_writer_over, LedgerConfig, VerifyReport};
use crate::snapshot::Snapshotter;
use crate::storage::Storage;
use crate::store::Store;
use crate::writer::{Answered, GroupMode, GroupOutcome, GroupPart, Request, Writer};

/// One request of a batch.
#[derive(Debug, Clone)]
pub enum SimRequest {
    Submit(Box<Command>),
    Group(Vec<Command>, GroupMode),
    SetRules(Option<String>, RuleSet),
}

/// The answer to one [`SimRequest`], in the same position. A submit's answer is the writer's
/// whole decision: the command's flow, and a transfer's TRANSFER_IN with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimAnswer {
    Submit(Result<Box<Decision>, Error>),
    Group(Result<GroupOutcome, Error>),
    Rules(Result<RuleSet, Error>),
}

/// A ledger whose writer runs on the caller's thread.
pub struct SyncLedger {
    writer: Writer,
}

impl std::fmt::Debug for SyncLedger {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SyncLedger").field("last_sequence", &self.last_sequence()).finish()
    }
}

/// Commands per group part, as [`crate::GroupSender`] sends them.
const PART_COMMANDS: usize = 64;

impl SyncLedger {
    /// Opens (or creates) a ledger on `storage`, exactly as [`crate::Ledger::open`] does on
    /// sled; every batch reads the time from `clock`.
    pub fn open(
        storage: Box<dyn Storage>,
        scale: Option<Scale>,
        zone: Option<Zone>,
        clock: Box<dyn Fn() -> Timestamp + Send>,
    ) -> Result<SyncLedger, Error> {
        let mut config = LedgerConfig::new("simulated");
        config.scale = scale;
        config.zone = zone;
        // The simulator's medium keeps no snapshots: every open folds the whole log.
        let mut writer = open_writer_over(Store::over(storage), &config, Snapshotter::disabled())?;
        writer.set_clock(clock);
        Ok(SyncLedger { writer })
    }

    /// Runs `requests` as the writer's batches (a group alone in its own, as the writer's loop
    /// does) and returns their answers in order.
    pub fn batch(&mut self, requests: Vec<SimRequest>) -> Vec<SimAnswer> {
        let mut answers = Vec::with_capacity(requests.len());
        let mut waiting: Vec<Waiting> = Vec::new();
        let mut batch: Vec<Request> = Vec::new();
        for request in requests {
            if let SimRequest::Group(commands, mode) = request {
                self.flush(&mut batch, &mut waiting, &mut answers);
                let (request, answer) = group_request(commands, mode);
                batch.push(request);
                waiting.push(answer);
                self.flush(&mut batch, &mut waiting, &mut answers);
                continue;
            }
            let (request, answer) = match request {
                SimRequest::Submit(command) => {
                    let (reply, answer) = oneshot::channel();
                    let fingerprint = purse_idempotency::fingerprint(&command);
                    (Request::Submit { command, fingerprint, reply }, Waiting::Submit(answer))
                }
                SimRequest::SetRules(brand_id, rules) => {
                    let (reply, answer) = oneshot::channel();
                    (Request::SetRules { brand_id, rules, reply }, Waiting::Rules(answer))
                }
                SimRequest::Group(..) => unreachable!("handled above"),
            };
            batch.push(request);
            waiting.push(answer);
        }
        self.flush(&mut batch, &mut waiting, &mut answers);
        answers
    }

    fn flush(&mut self, batch: &mut Vec<Request>, waiting: &mut Vec<Waiting>, answers: &mut Vec<SimAnswer>) {
        if batch.is_empty() {
            return;
        }
        let closed = self.writer.process(batch);
        debug_assert!(!closed, "the simulator never closes inside a batch");
        answers.extend(waiting.drain(..).map(Waiting::take));
    }

    /// `verify`, as [`crate::Ledger::verify`] runs it.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        crate::ledger::verify_on(&self.writer)
    }

    /// Every account's balance, sorted by account id.
    pub fn balances(&self) -> Vec<(String, Buckets)> {
        let mut balances: Vec<(String, Buckets)> = self
            .writer
            .projections
            .state
            .accounts()
            .map(|account| (account.account_id.clone(), account.balance))
            .collect();
        balances.sort_by(|left, right| left.0.cmp(&right.0));
        balances
    }

    /// Every account as the projections hold it (balance, held value, status), sorted by id.
    pub fn accounts(&self) -> Vec<Account> {
        let mut accounts: Vec<Account> = self.writer.projections.state.accounts().cloned().collect();
        accounts.sort_by(|left, right| left.account_id.cmp(&right.account_id));
        accounts
    }

    /// The flow with `flow_id`, read back from the log.
    pub fn flow(&self, flow_id: u64) -> Result<Flow, Error> {
        self.writer.check_not_poisoned()?;
        self.writer.read_flow(flow_id)
    }

    /// The scale and zone the ledger opened with (read from its meta).
    pub fn config(&self) -> purse_core::Config {
        self.writer.projections.state.config()
    }

    pub fn last_sequence(&self) -> u64 {
        self.writer.projections.state.last_sequence()
    }

    /// Whether a failed write stopped the writer (every later request is refused).
    pub fn poisoned(&self) -> bool {
        self.writer.check_not_poisoned().is_err()
    }

    /// Closes cleanly: makes everything durable.
    pub fn close(mut self) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        let mut batch = vec![Request::Close { reply }];
        let closed = self.writer.process(&mut batch);
        debug_assert!(closed);
        let mut answer = answer;
        answer.try_recv().unwrap_or_else(|_| Err(Error::Storage("the writer did not answer the close".into())))
    }
}

enum Waiting {
    Submit(oneshot::Receiver<Result<Answered, Error>>),
    Group(oneshot::Receiver<Result<GroupOutcome, Error>>),
    Rules(oneshot::Receiver<Result<RuleSet, Error>>),
}

impl Waiting {
    fn take(self) -> SimAnswer {
        let unanswered = || Error::Storage("the writer did not answer".into());
        match self {
            Waiting::Submit(mut answer) => {
                SimAnswer::Submit(answer.try_recv().unwrap_or_else(|_| Err(unanswered())).and_then(Answered::decided))
            }
            Waiting::Group(mut answer) => SimAnswer::Group(answer.try_recv().unwrap_or_else(|_| Err(unanswered()))),
            Waiting::Rules(mut answer) => SimAnswer::Rules(answer.try_recv().unwrap_or_else(|_| Err(unanswered()))),
        }
    }
}

/// A group request with every part already queued, so the writer never waits for one.
fn group_request(commands: Vec<Command>, mode: GroupMode) -> (Request, Waiting) {
    let parts: Vec<GroupPart> = commands
        .chunks(PART_COMMANDS)
        .map(|chunk| {
            GroupPart::Commands(
                chunk.iter().map(|command| (command.clone(), purse_idempotency::fingerprint(command))).collect(),
            )
        })
        .chain(std::iter::once(GroupPart::End))
        .collect();
    let (sender, receiver) = mpsc::channel(parts.len());
    for part in parts {
        if sender.try_send(part).is_err() {
            unreachable!("the channel holds every part");
        }
    }
    let (reply, answer) = oneshot::channel();
    (Request::Group { parts: receiver, mode, reply }, Waiting::Group(answer))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::sled_storage::SledStorage;
    use crate::test_storage::FailingSync;
    use purse_core::{Action, Amount, ErrorCode};

    #[test]
    fn a_refusal_resting_on_a_flow_whose_commit_failed_is_answered_with_that_failure() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let (inner, _) = SledStorage::open(dir.path(), true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
        let storage = FailingSync { inner, failing: Arc::clone(&failing), pipelined: false, cold_gate: None };
        let mut ledger =
            SyncLedger::open(Box::new(storage), None, None, Box::new(|| Timestamp(1_800_000_000))).unwrap();
        let charge = |request: &str| {
            let action =
                Action::Charge { real: Amount::from_minor(100), gift: None, pre: Amount::ZERO, trigger_gift: false };
            SimRequest::Submit(Box::new(Command::new(request, "o-1", "alice", action)))
        };
        failing.store(true, Ordering::SeqCst);
        // The second charge reuses the first one's order id: DUPLICATE_ORDER against a flow of
        // the same batch. The commit fails, so that flow never existed: both get the failure.
        let answers = ledger.batch(vec![charge("r-1"), charge("r-2")]);
        for answer in answers {
            let SimAnswer::Submit(Err(error)) = answer else { panic!("expected a failure, got {answer:?}") };
            assert_eq!(error.code(), ErrorCode::Storage, "{error}");
        }
    }
}
