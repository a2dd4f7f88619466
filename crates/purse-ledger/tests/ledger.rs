//! The ledger end to end: writes, replays, queries, restart, verify.

mod common;

use common::{charge, deduct, dump, money, open};
use purse_core::{Action, Command, ErrorCode, FlowType, RuleSet, RuleSetText, Scale};
use purse_ledger::{FlowKey, FlowQuery};

#[tokio::test]
async fn session_replay_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let rules = RuleSet::from_text(
        &RuleSetText {
            gift_type: Some("CUSTOMIZED".into()),
            tiers: vec![("100".into(), "20".into())],
            ..RuleSetText::default()
        },
        Scale::CNY,
    )
    .unwrap();
    ledger.set_rules(None, rules.clone()).await.unwrap();
    let mut gifted = charge("r1", "o1", "alice", "100");
    gifted.action = Action::Charge { real: money("100"), gift: None, pre: money("0"), trigger_gift: true };
    let first = ledger.submit(gifted.clone()).await.unwrap();
    assert_eq!(first.flow_id, 2);
    assert_eq!(ledger.detail(&first).unwrap().current_value, "120.00", "the spec §5 view");
    // the same request again: the same answer, nothing written
    assert_eq!(ledger.submit(gifted.clone()).await.unwrap(), first);
    // the same request_id for something else: a conflict
    let conflict = ledger.submit(deduct("r1", "o9", "alice", "1")).await.unwrap_err();
    assert_eq!(conflict.code(), ErrorCode::IdempotencyConflict);
    // spec §13: arguments and amounts come before the idempotency record, so another request
    // under r1 that is itself malformed is refused for that.
    let malformed = ledger.submit(deduct("r1", "o9", "alice", "0")).await.unwrap_err();
    assert_eq!(malformed.code(), ErrorCode::InvalidAmount, "{malformed}");
    let mut unnamed = deduct("r1", "o9", "alice", "1");
    unnamed.account_id = String::new();
    assert_eq!(ledger.submit(unnamed).await.unwrap_err().code(), ErrorCode::InvalidArgument);
    // A hold whose expiry is measured from `now` still replays later, when `now` is past it.
    ledger.submit(charge("r-hera", "c-hera", "hera", "5")).await.unwrap();
    let mut hold = charge("r-hold", "h-1", "hera", "1");
    hold.action = Action::Hold {
        value: money("1"),
        expire_time: Some(purse_core::Timestamp(
            i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs())
                .unwrap()
                + 1,
        )),
    };
    let held = ledger.submit(hold.clone()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(ledger.submit(hold).await.unwrap(), held, "a replay after the expiry is the first answer");
    // another request reusing the order id
    let duplicate = ledger.submit(charge("r2", "o1", "alice", "1")).await.unwrap_err();
    assert_eq!(duplicate.code(), ErrorCode::DuplicateOrder);
    let overdraft = ledger.submit(deduct("r3", "o3", "alice", "120.01")).await.unwrap_err();
    assert_eq!(overdraft.code(), ErrorCode::InsufficientBalance);
    // after the cause is gone, the same request_id succeeds
    ledger.submit(charge("r4", "o4", "alice", "0.01")).await.unwrap();
    let spent = ledger.submit(deduct("r3", "o3", "alice", "120.01")).await.unwrap();
    assert_eq!(spent.after(), Some(purse_core::Buckets::ZERO));
    let by_order = ledger.flow(FlowKey::OuterOrderId("o3".into())).await.unwrap();
    assert_eq!(by_order, spent);
    assert_eq!(ledger.flow(FlowKey::Id(99)).await.unwrap_err().code(), ErrorCode::OrderNotFound);
    assert_eq!(ledger.flow(FlowKey::Id(1)).await.unwrap_err().code(), ErrorCode::OrderNotFound, "1 is the rules");
    let page = ledger.flows(FlowQuery { flow_types: vec![FlowType::Charge], ..FlowQuery::new("alice") }).await.unwrap();
    assert_eq!(page.total_count, 2);
    assert_eq!(page.flows[0], first);

    let before = dump(&ledger, &["alice", "bob"]).await;
    ledger.close().await.unwrap();
    let reopened = open(dir.path()).await;
    assert_eq!(dump(&reopened, &["alice", "bob"]).await, before, "everything reads back after a clean close");
    assert_eq!(reopened.submit(gifted).await.unwrap(), first, "replays survive a restart");
    assert_eq!(reopened.rules(Some("any".into())).await.unwrap(), rules);
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn paging_and_time_windows() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let zone = ledger.zone();
    for day in 1..=9u32 {
        let mut command = charge(&format!("r{day}"), &format!("o{day}"), "acct", "1");
        command.biz_date = zone.parse_local(&format!("2026-01-0{day} 00:00:00"));
        ledger.submit(command).await.unwrap();
    }
    let window = FlowQuery {
        start_time: zone.parse_local("2026-01-03 00:00:00"),
        end_time: zone.parse_local("2026-01-07 00:00:00"),
        page_no: 2,
        page_size: 3,
        ..FlowQuery::new("acct")
    };
    let page = ledger.flows(window.clone()).await.unwrap();
    assert_eq!(page.total_count, 4, "[start, end) holds days 3, 4, 5, 6");
    assert_eq!(page.flows.len(), 1);
    assert_eq!(ledger.detail(&page.flows[0]).unwrap().order_time, "2026-01-06 00:00:00");
    let codes = [
        FlowQuery { page_size: 5001, ..window.clone() },
        FlowQuery { page_no: 0, ..window.clone() },
        FlowQuery { start_time: window.end_time, end_time: window.start_time, ..window.clone() },
    ];
    for query in codes {
        assert_eq!(ledger.flows(query).await.unwrap_err().code(), ErrorCode::InvalidArgument);
    }
    let unknown = ledger.flows(FlowQuery::new("nobody")).await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::AccountNotFound);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn config_is_fixed_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.close().await.unwrap();
    let mut config = purse_ledger::LedgerConfig::new(dir.path());
    config.scale = Scale::new(3);
    let error = purse_ledger::Ledger::open(config).await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn a_rejected_command_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge("r1", "o1", "alice", "10")).await.unwrap();
    ledger.submit(deduct("r2", "o2", "alice", "4")).await.unwrap();
    let before = dump(&ledger, &["alice"]).await;
    let bad: Vec<Command> = vec![
        deduct("r3", "o3", "alice", "6.01"),
        deduct("r3", "o1", "alice", "1"),
        deduct("r1", "o3", "alice", "1"),
        deduct("r3", "o3", "nobody", "1"),
        Command::new("r3", "o3", "alice", Action::Uncharge { src_outer_order_id: "o2".into() }),
        Command::new(
            "r3",
            "o3",
            "alice",
            Action::Undeduct { original_outer_order_id: "o2".into(), value: Some(money("5")) },
        ),
    ];
    for command in bad {
        assert!(ledger.submit(command.clone()).await.is_err(), "{command:?}");
        assert_eq!(dump(&ledger, &["alice"]).await, before, "{command:?} changed something");
    }
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn groups_are_all_or_nothing_partial_or_dry() {
    use purse_ledger::{GroupItem, GroupMode};
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge("r0", "o0", "alice", "10")).await.unwrap();
    let before = dump(&ledger, &["alice", "bob"]).await;
    let group = || {
        vec![
            charge("g1", "g1", "bob", "5"),
            deduct("g2", "g2", "bob", "2"),
            deduct("g3", "g3", "bob", "9"), // overdraft: rejected
            charge("g1", "g1", "bob", "5"), // the first command again: a replay within the group
        ]
    };
    let kinds = |items: &[GroupItem]| -> Vec<&'static str> {
        items
            .iter()
            .map(|item| match item {
                GroupItem::Written(_) => "written",
                GroupItem::Replayed(_) => "replayed",
                GroupItem::Skipped(_) => "skipped",
                GroupItem::Rejected(error) => error.code().as_str(),
            })
            .collect()
    };
    for mode in [GroupMode::AllOrNothing, GroupMode::DryRun] {
        let outcome = ledger.submit_group(group(), mode).await.unwrap();
        assert!(!outcome.committed, "{mode:?}");
        assert_eq!(kinds(&outcome.items), ["written", "written", "INSUFFICIENT_BALANCE", "replayed"], "{mode:?}");
        assert_eq!(dump(&ledger, &["alice", "bob"]).await, before, "{mode:?} wrote something");
    }
    let clean: Vec<_> = group().into_iter().filter(|command| command.request_id != "g3").collect();
    let dry = ledger.submit_group(clean.clone(), GroupMode::DryRun).await.unwrap();
    let committed = ledger.submit_group(clean.clone(), GroupMode::AllOrNothing).await.unwrap();
    assert!(committed.committed);
    assert_eq!(committed.items, dry.items, "a dry run predicts the real run exactly");
    let again = ledger.submit_group(clean, GroupMode::AllOrNothing).await.unwrap();
    assert_eq!(kinds(&again.items), ["replayed", "replayed", "replayed"]);
    let partial = ledger.submit_group(group(), GroupMode::Partial).await.unwrap();
    assert!(partial.committed);
    assert_eq!(kinds(&partial.items), ["replayed", "replayed", "INSUFFICIENT_BALANCE", "replayed"]);
    assert_eq!(ledger.account("bob").await.unwrap().balance.total(), Some(money("3")));
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_is_undone_keeps_the_writes_around_it() {
    use purse_ledger::GroupMode;
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let mut tasks = Vec::new();
    for index in 0..40 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            if index % 4 == 0 {
                let group = vec![charge(&format!("g{index}"), &format!("g{index}"), "grouped", "1")];
                let outcome = ledger.submit_group(group, GroupMode::DryRun).await.unwrap();
                assert!(!outcome.committed);
            } else {
                ledger.submit(charge(&format!("s{index}"), &format!("s{index}"), "single", "1")).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = ledger.verify().await.expect("projections equal the fold of the log");
    assert_eq!(report.flows, 30, "every single charge is kept, no dry-run charge is");
    assert_eq!(ledger.account("single").await.unwrap().balance.total(), Some(money("30")));
    assert_eq!(ledger.account("grouped").await.unwrap_err().code(), ErrorCode::AccountNotFound);
    ledger.close().await.unwrap();
}

/// A group large enough to go to sled in several parts before it is decided whole: undone
/// (a rejection at its end, all or nothing) it leaves the log's raw key-value pairs as they were,
/// and the ledger goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_rejected_group_leaves_the_raw_log_as_it_was() {
    use purse_ledger::GroupMode;
    let raw_log = |path: &std::path::Path| -> Vec<(Vec<u8>, Vec<u8>)> {
        // sled's I/O threads may hold its file lock a moment after the ledger closed.
        let mut attempts = 0;
        let db = loop {
            match sled::open(path) {
                Ok(db) => break db,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    eprintln!("sled not yet released ({error}); retrying");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(error) => panic!("opening sled directly: {error}"),
            }
        };
        let log = db.open_tree("log").unwrap();
        log.iter().map(|pair| pair.map(|(key, value)| (key.to_vec(), value.to_vec())).unwrap()).collect()
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge("r1", "o1", "alice", "10")).await.unwrap();
    ledger.close().await.unwrap();
    let before = raw_log(dir.path());

    let ledger = open(dir.path()).await;
    let mut group: Vec<Command> = (0..6_000)
        .map(|index| {
            let mut command = charge(&format!("g{index}"), &format!("g{index}"), "bob", "1");
            command.ext_info = Some(format!("{{\"padding\":\"{}\"}}", "x".repeat(600)));
            command
        })
        .collect();
    group.push(deduct("g-last", "g-last", "bob", "6000.01"));
    let outcome = ledger.submit_group(group, GroupMode::AllOrNothing).await.unwrap();
    assert!(!outcome.committed);
    assert_eq!(outcome.items.iter().filter(|item| matches!(item, purse_ledger::GroupItem::Written(_))).count(), 6_000);
    assert_eq!(ledger.verify().await.unwrap().flows, 1);
    ledger.close().await.unwrap();
    assert_eq!(raw_log(dir.path()), before, "the undone group left blocks behind");

    let ledger = open(dir.path()).await;
    assert_eq!(ledger.stats().await.unwrap().unfinished_entries_dropped, 0, "removed when undone, not at open");
    assert_eq!(ledger.submit(charge("r2", "o2", "alice", "1")).await.unwrap().flow_id, 2);
    ledger.close().await.unwrap();
}

/// A group sent in parts: its outcome is the same as one sent whole, and a sender dropped
/// before `finish` abandons its group, leaving the ledger as it was (even once parts of it went
/// to sled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_sent_in_parts_and_abandoned_groups() {
    use purse_ledger::{GroupItem, GroupMode};
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge("r1", "o1", "alice", "10")).await.unwrap();
    let before = dump(&ledger, &["alice", "bob"]).await;
    let commands = |prefix: &str| -> Vec<Command> {
        (0..5_000)
            .map(|index| {
                let id = format!("{prefix}{index}");
                let mut command = charge(&id, &id, "bob", "1");
                command.ext_info = Some(format!("{{\"padding\":\"{}\"}}", "x".repeat(600)));
                command
            })
            .collect()
    };

    let mut abandoned = ledger.open_group(GroupMode::AllOrNothing).await.unwrap();
    abandoned.send(commands("a")).await.unwrap();
    drop(abandoned);
    assert_eq!(dump(&ledger, &["alice", "bob"]).await, before, "an abandoned group wrote something");

    let mut parts = ledger.open_group(GroupMode::AllOrNothing).await.unwrap();
    let all = commands("p");
    for part in all.chunks(1_234) {
        parts.send(part.to_vec()).await.unwrap();
    }
    let outcome = parts.finish().await.unwrap();
    assert!(outcome.committed);
    assert_eq!(outcome.items.len(), 5_000);
    assert!(outcome.items.iter().all(|item| matches!(item, GroupItem::Written(_))));
    let again = ledger.submit_group(all, GroupMode::AllOrNothing).await.unwrap();
    assert!(again.items.iter().all(|item| matches!(item, GroupItem::Replayed(_))));
    assert_eq!(ledger.account("bob").await.unwrap().balance.total(), Some(money("5000")));
    assert_eq!(ledger.verify().await.unwrap().flows, 5_001);
    ledger.close().await.unwrap();
    let reopened = open(dir.path()).await;
    assert_eq!(reopened.stats().await.unwrap().unfinished_entries_dropped, 0);
    assert_eq!(reopened.verify().await.unwrap().flows, 5_001);
    reopened.close().await.unwrap();
}
