//! A ledger replicated through a journal (docs/cluster.md §1), over the in-memory journal with
//! the real one's fencing: a node's directory is an image of the journal, any fresh directory
//! rebuilds the same ledger from it, and a writer taken over is fenced.

mod common;

use std::sync::Arc;

use common::{charge, deduct, dump};
use purse_core::ErrorCode;
use purse_ledger::journal::{JournalEntry, MemoryJournal};
use purse_ledger::{Ledger, LedgerConfig};

const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

async fn open(path: &std::path::Path, journal: &MemoryJournal, owner: &str) -> Result<Ledger, purse_ledger::Error> {
    Ledger::open_replicated(LedgerConfig::new(path), Arc::new(journal.clone()), owner).await
}

async fn write_some(ledger: &Ledger, tag: &str) {
    for (n, account) in ACCOUNTS.iter().enumerate() {
        ledger.submit(charge(&format!("{tag}c{n}"), &format!("{tag}oc{n}"), account, "100")).await.unwrap();
        ledger.submit(deduct(&format!("{tag}d{n}"), &format!("{tag}od{n}"), account, "7.5")).await.unwrap();
    }
}

#[tokio::test]
async fn a_fresh_directory_rebuilds_the_same_ledger_from_the_journal() {
    let journal = MemoryJournal::new("p0");
    let first = tempfile::tempdir().unwrap();
    let ledger = open(first.path(), &journal, "n1").await.unwrap();
    write_some(&ledger, "a").await;
    let before = dump(&ledger, &ACCOUNTS).await;
    ledger.close().await.unwrap();

    let second = tempfile::tempdir().unwrap();
    let replica = open(second.path(), &journal.writer(), "n2").await.unwrap();
    assert_eq!(dump(&replica, &ACCOUNTS).await, before);
    replica.verify().await.unwrap();
    // A replay on the new node is the first answer; a conflicting reuse is refused.
    assert_eq!(replica.submit(deduct("ad1", "aod1", "bob", "7.5")).await.unwrap().flow_id, 4);
    let conflict = replica.submit(deduct("ad1", "aod1", "bob", "8")).await.unwrap_err();
    assert_eq!(conflict.code(), ErrorCode::IdempotencyConflict);
    write_some(&replica, "b").await;
    let after = dump(&replica, &ACCOUNTS).await;
    replica.close().await.unwrap();

    // The first node's directory catches up on what the second wrote.
    let ledger = open(first.path(), &journal.writer(), "n1").await.unwrap();
    assert_eq!(dump(&ledger, &ACCOUNTS).await, after);
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();

    // Each open wrote one epoch marker; every other entry is a write of the ledger.
    let entries = journal.decoded().unwrap();
    let owners: Vec<&str> = entries
        .iter()
        .filter_map(|entry| match entry {
            JournalEntry::Epoch(owner) => Some(owner.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(owners, ["n1", "n2", "n1"]);
    assert!(matches!(entries[1], JournalEntry::Meta(_)), "the ledger's meta comes right after the first marker");
}

#[tokio::test]
async fn a_writer_taken_over_is_fenced_and_what_it_tried_never_exists() {
    let journal = MemoryJournal::new("p0");
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let old = open(one.path(), &journal, "old").await.unwrap();
    write_some(&old, "a").await;
    let acknowledged = dump(&old, &ACCOUNTS).await;

    // A second node takes over while the first still runs (a paused owner).
    let new = open(two.path(), &journal.writer(), "new").await.unwrap();
    assert_eq!(dump(&new, &ACCOUNTS).await, acknowledged);
    let fenced = old.submit(charge("late", "olate", "alice", "1")).await.unwrap_err();
    assert_eq!(fenced.code(), ErrorCode::Storage);
    assert!(fenced.to_string().contains("fenced"), "{fenced}");
    // Poisoned: it answers nothing more until reopened.
    assert_eq!(old.submit(charge("later", "olater", "bob", "1")).await.unwrap_err().code(), ErrorCode::Storage);
    drop(old.close().await);

    new.submit(charge("n1", "on1", "alice", "5")).await.unwrap();
    let expected = dump(&new, &ACCOUNTS).await;
    assert!(!expected.contains("late"));
    new.close().await.unwrap();
    // After the marker only the new writer's entries: the fenced one's write is not there.
    let entries = journal.decoded().unwrap();
    let marker = entries.iter().rposition(|entry| entry == &JournalEntry::Epoch("new".into())).unwrap();
    let written: usize = entries[marker..].iter().filter(|entry| matches!(entry, JournalEntry::Put(_))).count();
    assert_eq!(written, 1, "{entries:?}");

    // The fenced node reopens: it takes over in turn and sees the new writer's flow.
    let old = open(one.path(), &journal.writer(), "old").await.unwrap();
    assert_eq!(dump(&old, &ACCOUNTS).await, expected);
    old.verify().await.unwrap();
    old.close().await.unwrap();
}

#[tokio::test]
async fn large_commits_are_split_into_bounded_entries_and_rebuild_whole() {
    let journal = MemoryJournal::new("p0");
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), &journal, "n1").await.unwrap();
    let commands: Vec<_> =
        (0..20_000).map(|n| charge(&format!("r{n}"), &format!("o{n}"), ACCOUNTS[n % 3], "1.01")).collect();
    for chunk in commands.chunks(purse_ledger::SUBMIT_BATCH_MAX) {
        for item in ledger.submit_batch(chunk.to_vec()).await.unwrap() {
            item.unwrap();
        }
    }
    let before = dump(&ledger, &ACCOUNTS).await;
    ledger.close().await.unwrap();
    let entries = journal.decoded().unwrap();
    let puts: Vec<usize> = entries
        .iter()
        .filter_map(|entry| match entry {
            JournalEntry::Put(blocks) => Some(blocks.iter().map(|(_, bytes)| bytes.len()).sum()),
            _ => None,
        })
        .collect();
    assert!(puts.len() > 1, "{puts:?}");
    assert!(puts.iter().all(|bytes| *bytes <= 512 * 1024), "{puts:?}");

    let fresh = tempfile::tempdir().unwrap();
    let replica = open(fresh.path(), &journal.writer(), "n2").await.unwrap();
    assert_eq!(dump(&replica, &ACCOUNTS).await, before);
    replica.verify().await.unwrap();
    replica.close().await.unwrap();
}

#[tokio::test]
async fn a_directory_of_another_journal_or_of_a_plain_ledger_is_refused() {
    let journal = MemoryJournal::new("p0");
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), &journal, "n1").await.unwrap();
    write_some(&ledger, "a").await;
    ledger.close().await.unwrap();
    let other = MemoryJournal::new("p1");
    let refused = open(dir.path(), &other, "n1").await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidArgument);
    assert!(refused.to_string().contains("\"p0\""), "{refused}");
    assert_eq!(other.end(), 0, "refused before taking the other journal over");

    let plain = tempfile::tempdir().unwrap();
    let ledger = common::open(plain.path()).await;
    write_some(&ledger, "a").await;
    ledger.close().await.unwrap();
    let refused = open(plain.path(), &journal.writer(), "n1").await.unwrap_err();
    assert!(refused.to_string().contains("a ledger of its own"), "{refused}");
}

#[tokio::test]
async fn a_journal_shorter_than_the_directory_is_corruption() {
    let journal = MemoryJournal::new("p0");
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path(), &journal, "n1").await.unwrap();
    write_some(&ledger, "a").await;
    ledger.close().await.unwrap();
    // The same name, but a journal that lost its entries.
    let lost = MemoryJournal::new("p0");
    let error = open(dir.path(), &lost, "n1").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::Corruption);
    assert!(error.to_string().contains("lost acknowledged entries"), "{error}");
}
