//! The ledger handle over media that fail, and its checks at the boundary.
use super::*;
use crate::sled_storage::SledStorage;
use crate::test_storage::FailingSync;
use purse_core::{Action, Amount, Command, ErrorCode};
use std::sync::atomic::{AtomicBool, Ordering};

fn charge(id: &str, real: i64) -> Command {
    Command::new(
        id,
        id,
        "alice",
        Action::Charge { real: Amount::from_minor(real), gift: None, pre: Amount::ZERO, trigger_gift: false },
    )
}

/// A ledger over sled whose syncs fail (EIO) once the switch returned is set; `pipelined`: its
/// commits are synced on the writer's syncer thread.
fn failing_ledger(dir: &std::path::Path, pipelined: bool) -> (Ledger, Arc<AtomicBool>) {
    let failing = Arc::new(AtomicBool::new(false));
    let (inner, _) = SledStorage::open(dir, true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
    let storage = FailingSync { inner, failing: Arc::clone(&failing), pipelined, cold_gate: None };
    let config = LedgerConfig::new(dir);
    let writer =
        open_writer_over(Store::over(Box::new(storage)), &config, crate::snapshot::Snapshotter::disabled()).unwrap();
    (Ledger::start(writer, &config, None).unwrap(), failing)
}

#[tokio::test]
async fn after_a_failed_commit_every_query_refuses_with_storage() {
    for pipelined in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, failing) = failing_ledger(dir.path(), pipelined);
        ledger.submit(charge("c-1", 100)).await.unwrap();
        failing.store(true, Ordering::SeqCst);
        let error = ledger.submit(charge("c-2", 250)).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::Storage, "{error}");
        assert!(error.to_string().contains("Input/output error"), "the cause is kept: {error}");
        // The projections now hold c-2, which never reached the disk: nothing may answer from them.
        let refusals: Vec<(&str, Result<String, Error>)> = vec![
            ("account", ledger.account("alice").await.map(|view| format!("{view:?}"))),
            ("flow", ledger.flow(FlowKey::Id(1)).await.map(|flow| format!("{flow:?}"))),
            ("flows", ledger.flows(FlowQuery::new("alice")).await.map(|page| format!("{page:?}"))),
            ("rules", ledger.rules(None).await.map(|rules| format!("{rules:?}"))),
            ("stats", ledger.stats().await.map(|stats| format!("{stats:?}"))),
            ("verify", ledger.verify().await.map(|report| format!("{report:?}"))),
            ("a retry", ledger.submit(charge("c-1", 100)).await.map(|flow| format!("{flow:?}"))),
            (
                "a batch",
                ledger
                    .submit_batch(vec![charge("c-3", 1)])
                    .await
                    .and_then(|mut items| items.remove(0))
                    .map(|decided| format!("{decided:?}")),
            ),
        ];
        for (what, result) in refusals {
            let error = result.expect_err(what);
            assert_eq!(error.code(), ErrorCode::Storage, "pipelined {pipelined}, {what}: {error}");
        }
        assert_eq!(ledger.close().await.unwrap_err().code(), ErrorCode::Storage);
    }
}

/// The pipelined writer decides batches while earlier ones are being synced. When a sync fails,
/// that batch and every one decided on top of it fail, nothing is answered `Ok` that is not
/// durable, and the ledger reopens with every acknowledged flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_fails_every_batch_decided_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, failing) = failing_ledger(dir.path(), true);
    // Batches large enough for the syncer (PIPELINE_COMMANDS_MIN), from a few callers at once.
    let batch = usize::try_from(crate::writer::PIPELINE_COMMANDS_MIN).unwrap() + 1;
    let callers: Vec<_> = (0..4)
        .map(|caller| {
            let ledger = ledger.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for round in 0..12 {
                    let ids: Vec<String> = (0..batch).map(|index| format!("c-{caller}-{round}-{index}")).collect();
                    let commands = ids.iter().map(|id| charge(id, 1)).collect();
                    let items = match ledger.submit_batch(commands).await {
                        Ok(items) => items.into_iter().map(|item| item.map(|decided| decided.flow.flow_id)).collect(),
                        Err(error) => vec![Err(error); batch],
                    };
                    for (id, item) in ids.into_iter().zip(items) {
                        answers.push((id, item.map_err(|error| error.code())));
                    }
                }
                answers
            })
        })
        .collect();
    // Fail the disk while the callers are in full flow, once batches go through the syncer.
    let mut waited = 0;
    while ledger.stats().await.unwrap().batches_pipelined == 0 {
        assert!(waited < 5000, "no batch went through the syncer in 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += 5;
    }
    failing.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for caller in callers {
        let answers = caller.await.unwrap();
        // Once a caller saw the failure, it sees nothing but failures.
        let first_failure = answers.iter().position(|(_, answer)| answer.is_err()).unwrap_or(answers.len());
        for (id, answer) in &answers[first_failure..] {
            assert_eq!(*answer, Err(ErrorCode::Storage), "{id} after a failure");
        }
        failed += answers.len() - first_failure;
        acknowledged.extend(answers.into_iter().filter_map(|(id, answer)| Some((id, answer.ok()?))));
    }
    assert!(failed > 0, "the disk failed during the run");
    assert_eq!(ledger.close().await.unwrap_err().code(), ErrorCode::Storage);
    // The poisoned close answers before the writer thread lets go of sled.
    crate::sled_storage::wait_until_released(dir.path()).unwrap();
    let reopened = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
    for (id, flow_id) in &acknowledged {
        let flow = reopened.flow(FlowKey::OuterOrderId(id.clone())).await.unwrap();
        assert_eq!(flow.flow_id, *flow_id, "{id} was acknowledged as flow {flow_id}");
    }
    reopened.verify().await.unwrap();
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn a_hand_built_invalid_rule_set_is_refused_and_writes_nothing() {
    use purse_core::{DeductionOrder, GiftRule, RuleSet, Tier, TierGift};
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
    let negative = RuleSet {
        gift_valid_days: None,
        deduction_order: DeductionOrder::Percent,
        gift_rule: GiftRule::Customized {
            full_gift_switch: false,
            tiers: vec![Tier { real_value: Amount::from_minor(100), gift: TierGift::Amount(Amount::from_minor(-5)) }],
        },
    };
    let error = ledger.set_rules(Some("b1".into()), negative).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidAmount, "{error}");
    assert_eq!(ledger.verify().await.unwrap().entries, 0, "nothing was written");
    let mut gift_earning = charge("c-1", 10_000);
    gift_earning.brand_id = Some("b1".into());
    gift_earning.action =
        Action::Charge { real: Amount::from_minor(10_000), gift: None, pre: Amount::ZERO, trigger_gift: true };
    ledger.submit(gift_earning).await.expect("a later gift-earning charge of the brand still works");
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

/// An opening balance is decided by the writer: for an account that exists when the group
/// reaches it, opened by anything at all, it is skipped, and an all-or-nothing group still
/// commits. Submitting the charge before the group is the race a probe before it lost.
#[tokio::test]
async fn an_opening_balance_for_an_account_that_exists_is_skipped() {
    use crate::{GroupItem, GroupMode};
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
    let open = |id: &str, account: &str, real: i64| {
        let balance = Amount::from_minor(real);
        Command::new(id, id, account, Action::Open { real: balance, gift: Amount::ZERO, pre: Amount::ZERO })
    };
    // planned while alice was unknown; then a plain charge opens her before the group runs
    let group = vec![open("open-alice", "alice", 5_000), open("open-bob", "bob", 700), open("open-bob-2", "bob", 1)];
    ledger.submit(charge("c-1", 100)).await.unwrap();
    let outcome = ledger.submit_group(group.clone(), GroupMode::AllOrNothing).await.unwrap();
    assert!(outcome.committed, "a skip does not fail the group");
    let kinds: Vec<String> = outcome
        .items
        .iter()
        .map(|item| match item {
            GroupItem::Written(summary) => format!("written {}", summary.after.real.minor()),
            GroupItem::Replayed(_) => "replayed".into(),
            GroupItem::Skipped(error) => format!("skipped {}", error.code()),
            GroupItem::Rejected(error) => format!("rejected {}", error.code()),
        })
        .collect();
    assert_eq!(kinds, ["skipped INVALID_ARGUMENT", "written 700", "skipped INVALID_ARGUMENT"]);
    assert_eq!(ledger.account("alice").await.unwrap().balance.real, Amount::from_minor(100), "no second opening");
    assert_eq!(ledger.account("bob").await.unwrap().balance.real, Amount::from_minor(700));
    // Again: the written one replays, the skipped ones are skipped again; nothing changes.
    let again = ledger.submit_group(group, GroupMode::AllOrNothing).await.unwrap();
    assert!(matches!(again.items[..], [GroupItem::Skipped(_), GroupItem::Replayed(_), GroupItem::Skipped(_)]));
    assert_eq!(ledger.account("alice").await.unwrap().balance.real, Amount::from_minor(100));
    assert_eq!(ledger.account("bob").await.unwrap().balance.real, Amount::from_minor(700));
    // Alone, outside a group, it is refused and writes nothing.
    let alone = ledger.submit(open("open-alice-3", "alice", 1)).await.unwrap_err();
    assert_eq!(alone.code(), ErrorCode::InvalidArgument, "{alone}");
    assert!(alone.to_string().contains("already exists"), "{alone}");
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

/// A retry is answered with its first flow without a log read on the writer: the writer sends
/// the flow id and the handle reads the flow through its own reader. Over a medium without a
/// reader the writer reads it, as before, and counts it.
#[tokio::test]
async fn replays_are_read_off_the_writer() {
    let commands: Vec<Command> = (0..50).map(|index| charge(&format!("c-{index}"), 1)).collect();
    let flow_ids = |ledger: Ledger, commands: Vec<Command>| async move {
        let items = ledger.submit_batch(commands).await.unwrap();
        items.into_iter().map(|item| item.unwrap().flow.flow_id).collect::<Vec<u64>>()
    };
    // sled: the handle has a log reader, so the writer reads none; without one, it reads each.
    let sled = tempfile::tempdir().unwrap();
    let readerless = tempfile::tempdir().unwrap();
    let media = [
        (Ledger::open(LedgerConfig::new(sled.path())).await.unwrap(), 0),
        (failing_ledger(readerless.path(), true).0, 50),
    ];
    for (ledger, read_on_writer) in media {
        let first = flow_ids(ledger.clone(), commands.clone()).await;
        assert_eq!(flow_ids(ledger.clone(), commands.clone()).await, first, "every retry answers its first flow");
        if read_on_writer == 0 {
            assert_eq!(ledger.submit(commands[7].clone()).await.unwrap().flow_id, first[7]);
        }
        assert_eq!(ledger.stats().await.unwrap().replays_read_on_writer, read_on_writer);
        ledger.close().await.unwrap();
    }
}

/// Many fills of the cold store, with the Bloom filter past its capped segments (tests: 4,096
/// keys first, 16,384 at most): later fills write only the segments after the full ones, and
/// after a reopen every request and order id ever accepted is still found, however old.
#[tokio::test]
async fn a_cold_store_filled_many_times_keeps_every_id_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig { cold_after_entries: 0, snapshot_every_entries: 4_000, ..LedgerConfig::new(dir.path()) };
    let charges = 24_000;
    let ledger = Ledger::open(config.clone()).await.unwrap();
    let mut stored = Vec::new();
    for start in (0..charges).step_by(2_000) {
        let batch = (start..start + 2_000).map(|n| charge(&format!("c-{n}"), 1 + n % 7)).collect();
        for item in ledger.submit_batch(batch).await.unwrap() {
            item.unwrap();
        }
        stored.push(ledger.query(|writer| Ok(writer.projections.bloom_stored)).await.unwrap());
    }
    let segments = ledger.query(|writer| Ok(writer.projections.bloom.full_segments())).await.unwrap();
    assert!(segments >= 3, "48,000 ids fill the first segments: {segments}");
    assert!(stored.iter().any(|&held| held > 0), "later fills skip the full segments: {stored:?}");
    ledger.close().await.unwrap();

    let ledger = Ledger::open(config).await.unwrap();
    for n in [0, 1, 4_095, 12_000, charges - 1] {
        let id = format!("c-{n}");
        let replayed = ledger.submit(charge(&id, 1 + n % 7)).await.unwrap();
        assert_eq!(replayed.flow_id, u64::try_from(n).unwrap() + 1, "{id} is answered as the flow it made");
        let conflict = ledger.submit(charge(&id, 1_000)).await.unwrap_err();
        assert_eq!(conflict.code(), ErrorCode::IdempotencyConflict, "{id}: {conflict}");
        let mut other = charge(&format!("new-{n}"), 5);
        other.outer_order_id = id.clone();
        let duplicate = ledger.submit(other).await.unwrap_err();
        assert_eq!(duplicate.code(), ErrorCode::DuplicateOrder, "{id}: {duplicate}");
    }
    let report = ledger.verify().await.unwrap();
    assert_eq!(report.flows, u64::try_from(charges).unwrap());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    ledger.close().await.unwrap();
}

/// A group that is not committed (a dry run) replaces the writer's projections by a reload from
/// the newest snapshot, here while that snapshot's fill of the cold store is still running (its
/// flush held): the fill's result speaks of the filter it was taken from, whose segments hold
/// other ids than the reloaded one's, and must not be applied to it. Every id must still be
/// found after a reopen.
#[tokio::test]
async fn a_dry_run_while_the_cold_store_fills_loses_no_id() {
    use crate::GroupMode;
    let dir = tempfile::tempdir().unwrap();
    let config = LedgerConfig { cold_after_entries: 0, snapshot_every_entries: 5_000, ..LedgerConfig::new(dir.path()) };
    let gate = Arc::new(AtomicBool::new(true));
    let (inner, _) = SledStorage::open(dir.path(), true, crate::sled_storage::SLED_CACHE_BYTES).unwrap();
    let storage = FailingSync {
        inner,
        failing: Arc::new(AtomicBool::new(false)),
        pipelined: false,
        cold_gate: Some(gate.clone()),
    };
    let snapshots = crate::snapshot::Snapshotter::for_ledger(&config);
    let writer = open_writer_over(Store::over(Box::new(storage)), &config, snapshots).unwrap();
    let ledger = Ledger::start(writer, &config, None).unwrap();
    // 5,000 charges: 10,000 ids fill the first segment of the filter (4,096 in tests) and part of
    // the second; the snapshot at 5,000 entries starts a fill, which waits at its flush.
    let charges = 5_000;
    for start in (0..charges).step_by(1_000) {
        let batch = (start..start + 1_000).map(|n| charge(&format!("c-{n}"), 1 + n % 7)).collect();
        for item in ledger.submit_batch(batch).await.unwrap() {
            item.unwrap();
        }
    }
    // The writer takes the snapshot after answering the batch that reached 5,000 entries.
    let mut waited = 0;
    while ledger.snapshot_stats().await.unwrap().taken == 0 && waited < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    let stats = ledger.snapshot_stats().await.unwrap();
    assert!(stats.taken == 1 && stats.written == 0, "a snapshot is being written: {stats:?}");
    let opener = gate.clone();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        opener.store(false, Ordering::SeqCst);
    });
    let dry = (0..10).map(|n| charge(&format!("dry-{n}"), 3)).collect();
    ledger.submit_group(dry, GroupMode::DryRun).await.unwrap();
    release.join().unwrap();
    // The next fill writes the filter's segments after those the store holds.
    let batch = (charges..charges + 5_000).map(|n| charge(&format!("c-{n}"), 1)).collect();
    for item in ledger.submit_batch(batch).await.unwrap() {
        item.unwrap();
    }
    ledger.snapshot().await.unwrap();
    ledger.close().await.unwrap();

    let ledger = Ledger::open(config).await.unwrap();
    let mut lost = Vec::new();
    for n in (0..charges).step_by(7) {
        let id = format!("c-{n}");
        match ledger.submit(charge(&id, 1 + n % 7)).await {
            Ok(flow) if flow.flow_id == u64::try_from(n).unwrap() + 1 => {}
            other => lost.push(format!("{id}: {other:?}")),
        }
        if lost.len() > 2 {
            break;
        }
    }
    assert!(lost.is_empty(), "not answered as the flows they made: {lost:?}");
    ledger.close().await.unwrap();
}
