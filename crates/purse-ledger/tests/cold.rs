//! Memory bounded by what is live (issue 13): once a snapshot is durable, its orders, records
//! and flow references live in the cold store only, and everything still works on them.

mod common;

use common::{charge, deduct, dump, money};
use purse_core::{Action, Command, ErrorCode};
use purse_ledger::{FlowKey, FlowQuery, Ledger, LedgerConfig};

const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

/// A ledger whose every snapshot goes into the cold store.
async fn open(path: &std::path::Path) -> Ledger {
    Ledger::open(LedgerConfig { cold_after_entries: 0, ..LedgerConfig::new(path) }).await.unwrap()
}

fn hold(request: &str, order: &str, account: &str, value: &str) -> Command {
    Command::new(request, order, account, Action::Hold { value: money(value), expire_time: None })
}

#[tokio::test]
async fn settled_orders_leave_memory_and_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    for (n, account) in ACCOUNTS.iter().enumerate() {
        ledger.submit(charge(&format!("c{n}"), &format!("oc{n}"), account, "100")).await.unwrap();
        ledger.submit(deduct(&format!("d{n}"), &format!("od{n}"), account, "10")).await.unwrap();
    }
    ledger.submit(hold("h1", "oh1", "alice", "5")).await.unwrap();
    let before = dump(&ledger, &ACCOUNTS).await;
    ledger.snapshot().await.unwrap();
    let stats = ledger.stats().await.unwrap();
    // Only the open HOLD stays; no record and no reference is held.
    assert_eq!((stats.orders_in_memory, stats.requests_in_memory, stats.flow_refs_in_memory), (1, 0, 0));
    assert_eq!(dump(&ledger, &ACCOUNTS).await, before, "the same ledger, read through the cold store");

    // A replay of an old request is the first answer; a new request with its order id is refused.
    let replay = ledger.submit(deduct("d1", "od1", "bob", "10")).await.unwrap();
    assert_eq!(replay.flow_id, 4);
    let conflict = ledger.submit(deduct("d1", "od1", "bob", "11")).await.unwrap_err();
    assert_eq!(conflict.code(), ErrorCode::IdempotencyConflict);
    let duplicate = ledger.submit(deduct("d-new", "oc0", "alice", "1")).await.unwrap_err();
    assert_eq!(duplicate.code(), ErrorCode::DuplicateOrder);
    // An UNDEDUCT of an old DEDUCT, an UNCHARGE of an old CHARGE and a CAPTURE of the hold work.
    let undeduct = Action::Undeduct { original_outer_order_id: "od0".into(), value: Some(money("4")) };
    ledger.submit(Command::new("u0", "ou0", "alice", undeduct)).await.unwrap();
    let again = Action::Undeduct { original_outer_order_id: "od0".into(), value: Some(money("7")) };
    let exceeds = ledger.submit(Command::new("u1", "ou1", "alice", again)).await.unwrap_err();
    assert_eq!(exceeds.code(), ErrorCode::RefundExceedsOriginal);
    let capture = Action::Capture { src_outer_order_id: "oh1".into(), value: None };
    ledger.submit(Command::new("k1", "ok1", "alice", capture)).await.unwrap();
    assert_eq!(ledger.flow(FlowKey::OuterOrderId("od2".into())).await.unwrap().flow_id, 6);
    let page = ledger.flows(FlowQuery::new("alice")).await.unwrap();
    assert_eq!(page.flows.iter().map(|flow| flow.flow_id).collect::<Vec<_>>(), [1, 2, 7, 8, 9]);
    ledger.verify().await.unwrap();
    let after = dump(&ledger, &ACCOUNTS).await;
    ledger.close().await.unwrap();

    // Reopened from the snapshot written at close: the same answers, and verify holds.
    let ledger = open(dir.path()).await;
    assert_eq!(dump(&ledger, &ACCOUNTS).await, after);
    assert_eq!(ledger.submit(deduct("d0", "od0", "alice", "10")).await.unwrap().flow_id, 2);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn a_damaged_newest_snapshot_empties_the_cold_store_and_folds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    for n in 0..20 {
        ledger.submit(charge(&format!("c{n}"), &format!("oc{n}"), "alice", "1")).await.unwrap();
    }
    ledger.snapshot().await.unwrap();
    // The dump less its first line, `verify`'s report (which names the damaged snapshot).
    let entries = |dump: String| dump.lines().skip(1).collect::<Vec<_>>().join("\n");
    let before = entries(dump(&ledger, &ACCOUNTS[..1]).await);
    ledger.close().await.unwrap();
    let snapshots = dir.path().join("purse-snapshots");
    let newest = std::fs::read_dir(&snapshots).unwrap().map(|entry| entry.unwrap().path()).max().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&newest, bytes).unwrap();

    let ledger = open(dir.path()).await;
    let stats = ledger.snapshot_stats().await.unwrap();
    assert_eq!(stats.loaded_from, None, "the whole log was folded");
    assert_eq!(entries(dump(&ledger, &ACCOUNTS[..1]).await), before);
    // Everything is in memory again, and exactly once.
    let replay = ledger.submit(charge("c3", "oc3", "alice", "1")).await.unwrap();
    assert_eq!(replay.flow_id, 4);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
    let ledger = open(dir.path()).await;
    assert_eq!(entries(dump(&ledger, &ACCOUNTS[..1]).await), before);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}
