//! `Ledger::submit_batch`: independent commands in one call, each answered as `submit` would.

mod common;

use common::{charge, deduct, dump, money, open, reopen};
use purse_core::{Action, Command, ErrorCode};
use purse_ledger::{Ledger, SUBMIT_BATCH_MAX};

/// What one command of a batch came to: its flow id, or its error code.
type Outcome = Result<u64, ErrorCode>;

fn outcomes(items: &[purse_ledger::BatchItem]) -> Vec<Outcome> {
    items.iter().map(|item| item.as_ref().map(|decided| decided.flow.flow_id).map_err(|error| error.code())).collect()
}

/// Submits `commands` as one batch and checks each answer against `expected`; then checks that
/// the same commands one by one through `submit` on a fresh ledger give the same answers and
/// the same balances.
async fn check(mut commands: Vec<Command>, expected: &[Outcome]) {
    // One business time for all: the two ledgers below take "now" at their own commits, and a
    // second boundary between them made the dumps differ in every flow's order time.
    for command in &mut commands {
        command.biz_date.get_or_insert(purse_core::Timestamp(1_796_300_000));
    }
    let batched = tempfile::tempdir().unwrap();
    let ledger = open(batched.path()).await;
    let items = ledger.submit_batch(commands.clone()).await.unwrap();
    assert_eq!(outcomes(&items), expected, "the batch's answers");

    let single = tempfile::tempdir().unwrap();
    let one_by_one = open(single.path()).await;
    let mut answers = Vec::new();
    for command in commands {
        answers.push(one_by_one.submit(command).await.map(|flow| flow.flow_id).map_err(|error| error.code()));
    }
    assert_eq!(answers, expected, "submit, one command at a time");
    let accounts = ["alice", "bob", "carol"];
    // Every entry, account and rule alike; only the blocks differ (one commit, not one each).
    let entries = |dump: String| dump.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(entries(dump(&ledger, &accounts).await), entries(dump(&one_by_one, &accounts).await));
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
    one_by_one.close().await.unwrap();
}

#[tokio::test]
async fn each_command_is_answered_on_its_own() {
    let transfer =
        Command::new("t1", "t1", "alice", Action::Transfer { to_account_id: "carol".into(), value: Some(money("5")) });
    check(
        vec![
            charge("c1", "o1", "alice", "100"),
            deduct("d1", "o2", "alice", "500"), // more than alice has: refused, nothing written
            deduct("d2", "o3", "alice", "30"),  // decided on top of c1, in the same batch
            charge("c1", "o1", "alice", "100"), // a retry of c1 in the same batch: its first flow
            deduct("c1", "o9", "alice", "1"),   // c1 again for something else: a conflict
            deduct("d3", "o4", "nobody", "1"),  // no such account
            charge("c2", "o1", "bob", "1"),     // an order id already taken
            transfer,                           // two flows: 4 and 5
            charge("c3", "o5", "bob", "7"),
        ],
        &[
            Ok(1),
            Err(ErrorCode::InsufficientBalance),
            Ok(2),
            Ok(1),
            Err(ErrorCode::IdempotencyConflict),
            Err(ErrorCode::AccountNotFound),
            Err(ErrorCode::DuplicateOrder),
            Ok(3),
            Ok(5),
        ],
    )
    .await;
}

#[tokio::test]
async fn retries_of_a_batch_answer_the_first_flows_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let commands: Vec<Command> =
        (0..300).map(|index| charge(&format!("r{index}"), &format!("o{index}"), "alice", "1")).collect();
    let first = outcomes(&ledger.submit_batch(commands.clone()).await.unwrap());
    assert_eq!(first, (1..=300).map(Ok).collect::<Vec<_>>());
    ledger.close().await.unwrap();
    let ledger = reopen(dir.path()).await.unwrap();
    let again = outcomes(&ledger.submit_batch(commands).await.unwrap());
    assert_eq!(again, first, "after a restart every retry is answered with its first flow");
    assert_eq!(ledger.account("alice").await.unwrap().balance.total().unwrap(), money("300"));
    assert_eq!(ledger.verify().await.unwrap().flows, 300);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ledger: Ledger = open(dir.path()).await;
    assert!(ledger.submit_batch(Vec::new()).await.unwrap().is_empty());
    let commands: Vec<Command> =
        (0..=SUBMIT_BATCH_MAX).map(|index| charge(&format!("r{index}"), &format!("o{index}"), "alice", "1")).collect();
    let error = ledger.submit_batch(commands.clone()).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
    assert!(error.to_string().contains("8189"), "{error}");
    assert!(ledger.account("alice").await.is_err(), "nothing was written");
    // The largest batch allowed is one commit of many blocks, and every flow of it lands.
    let largest = ledger.submit_batch(commands[..SUBMIT_BATCH_MAX].to_vec()).await.unwrap();
    assert!(largest.iter().all(Result::is_ok));
    let stats = ledger.stats().await.unwrap();
    assert_eq!(stats.entries_written, SUBMIT_BATCH_MAX as u64);
    assert_eq!(ledger.verify().await.unwrap().flows, SUBMIT_BATCH_MAX as u64);
    ledger.close().await.unwrap();
}
