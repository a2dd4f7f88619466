//! Snapshots over a small ledger of every kind of projection (lots that expire, holds with an
//! expiry, a transfer, cards, brands, rules): a round trip, the tail after one, and every way a
//! snapshot can be wrong, each of which must make opening skip it (with a warning) and fold the
//! log instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use purse_core::{Action, Amount, Command, RuleSet, Timestamp};

use super::*;
use crate::ledger::LedgerConfig;

/// Snapshots in memory, to look at and damage.
#[derive(Debug, Default, Clone)]
struct MemorySnapshots {
    files: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
}

struct MemoryWriter {
    sequence: u64,
    bytes: Vec<u8>,
    files: Arc<Mutex<BTreeMap<u64, Vec<u8>>>>,
}

impl SnapshotWriter for MemoryWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<(), Error> {
        self.files.lock().unwrap().insert(self.sequence, self.bytes);
        Ok(())
    }
}

impl SnapshotStore for MemorySnapshots {
    fn list(&self) -> Result<Vec<u64>, Error> {
        Ok(self.files.lock().unwrap().keys().copied().collect())
    }

    fn open(&self, sequence: u64) -> Result<Box<dyn Read + Send>, Error> {
        let bytes = self.files.lock().unwrap().get(&sequence).cloned().ok_or(Error::NotFound("no snapshot".into()))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }

    fn create(&self, sequence: u64) -> Result<Box<dyn SnapshotWriter>, Error> {
        Ok(Box::new(MemoryWriter { sequence, bytes: Vec::new(), files: Arc::clone(&self.files) }))
    }

    fn remove(&self, sequence: u64) -> Result<(), Error> {
        self.files.lock().unwrap().remove(&sequence);
        Ok(())
    }

    fn name(&self, sequence: u64) -> String {
        format!("memory-{sequence}")
    }
}

impl MemorySnapshots {
    fn bytes(&self, sequence: u64) -> Vec<u8> {
        self.files.lock().unwrap()[&sequence].clone()
    }

    fn put(&self, sequence: u64, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(sequence, bytes);
    }

    fn snapshotter(&self) -> Snapshotter {
        let store: Arc<dyn SnapshotStore> = Arc::new(self.clone());
        Snapshotter::over(Some(store), 0, SNAPSHOT_EVERY_DEFAULT)
    }

    /// Takes a snapshot of `projections` as the writer does; returns the sequence it covers.
    fn take(&self, projections: &Projections) -> u64 {
        // Without a cold store taking one changes nothing in memory.
        self.snapshotter().take_now(&mut projections.clone()).unwrap().sequence
    }
}

const LATER: Timestamp = Timestamp(2_000_000_000);

fn command(id: &str, account: &str, action: Action) -> Command {
    Command::new(id, id, account, action)
}

fn amount(minor: i64) -> Amount {
    Amount::from_minor(minor)
}

/// Writes the first or the second half of the workload to the sled ledger in `dir`.
async fn write(dir: &std::path::Path, half: u8) {
    let mut config = LedgerConfig::new(dir);
    config.snapshot_every_entries = 0;
    let ledger = Ledger::open(config).await.unwrap();
    let p = |id: &str| format!("{half}-{id}");
    if half == 0 {
        ledger.set_rules(None, RuleSet { gift_valid_days: Some(30), ..RuleSet::default() }).await.unwrap();
        ledger.set_rules(Some("B".into()), RuleSet::default()).await.unwrap();
    }
    let mut charge = command(
        &p("c1"),
        "a",
        Action::Charge { real: amount(10_000), gift: Some(amount(500)), pre: amount(300), trigger_gift: false },
    );
    charge.gift_expire_time = Some(LATER);
    charge.card_id = Some("card-1".into());
    charge.brand_id = Some("B".into());
    ledger.submit(charge).await.unwrap();
    let mut second =
        command(&p("c2"), "b", Action::Charge { real: amount(4_000), gift: None, pre: amount(0), trigger_gift: false });
    second.card_id = Some("card-1".into());
    ledger.submit(second).await.unwrap();
    ledger.submit(command(&p("d1"), "a", Action::Deduct { value: amount(1_200) })).await.unwrap();
    let undeduct = Action::Undeduct { original_outer_order_id: p("d1"), value: Some(amount(100)) };
    ledger.submit(command(&p("u1"), "a", undeduct)).await.unwrap();
    ledger.submit(command(&p("h1"), "a", Action::Hold { value: amount(700), expire_time: Some(LATER) })).await.unwrap();
    ledger.submit(command(&p("h2"), "b", Action::Hold { value: amount(300), expire_time: None })).await.unwrap();
    let capture = Action::Capture { src_outer_order_id: p("h2"), value: Some(amount(100)) };
    ledger.submit(command(&p("k2"), "b", capture)).await.unwrap();
    let transfer = Action::Transfer { to_account_id: "c".into(), value: Some(amount(250)) };
    ledger.transfer(command(&p("t1"), "a", transfer)).await.unwrap();
    let mut adjust = command(&p("j1"), "c", Action::Adjust { real: amount(0), gift: amount(40), pre: amount(0) });
    adjust.remark = Some("fix".into());
    ledger.submit(adjust).await.unwrap();
    if half == 1 {
        let mut freeze = command(&p("f1"), "b", Action::Freeze);
        freeze.remark = Some("lost".into());
        ledger.submit(freeze).await.unwrap();
    }
    ledger.close().await.unwrap();
}

/// The store of the sled ledger in `dir` and the full fold of its log.
fn fold(dir: &std::path::Path) -> (Store, Projections) {
    let mut store = Store::open(dir, false).unwrap();
    store.open_head().unwrap();
    let (scale, zone) = store.config().unwrap().unwrap();
    let projections = Projections::load(&store, Config { scale, zone }, 0).unwrap();
    (store, projections)
}

fn assert_same(got: &Projections, expected: &Projections, what: &str) {
    assert!(got.state == expected.state, "{what}: the state");
    assert_eq!(got.requests, expected.requests, "{what}");
    assert_eq!(got.account_flows, expected.account_flows, "{what}");
    assert_eq!(got.cards, expected.cards, "{what}");
    assert_eq!((got.last_block_checksum, got.blocks), (expected.last_block_checksum, expected.blocks), "{what}");
}

/// Opens over `snapshots`: the projections, where they started, and the warnings.
fn open(store: &Store, snapshots: &MemorySnapshots) -> (Projections, Option<u64>, Vec<String>) {
    let snapshotter = snapshots.snapshotter();
    let projections = snapshotter.load(store, store_config(store), 0).unwrap();
    (projections, snapshotter.stats().loaded_from, snapshotter.warnings())
}

fn store_config(store: &Store) -> Config {
    let (scale, zone) = store.config().unwrap().unwrap();
    Config { scale, zone }
}

/// A ledger of both halves, a snapshot after the first half (its sequence) and the full fold.
async fn two_halves(dir: &std::path::Path, snapshots: &MemorySnapshots) -> (Store, Projections, u64) {
    write(dir, 0).await;
    let (store, first) = fold(dir);
    let covered = snapshots.take(&first);
    drop(store);
    write(dir, 1).await;
    let (store, full) = fold(dir);
    assert!(full.state.last_sequence() > covered + 5);
    (store, full, covered)
}

#[tokio::test]
async fn a_snapshot_and_the_tail_after_it_open_as_the_full_fold() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = MemorySnapshots::default();
    let (store, full, covered) = two_halves(dir.path(), &snapshots).await;
    let (opened, from, warnings) = open(&store, &snapshots);
    assert_eq!((from, warnings), (Some(covered), vec![]));
    assert_same(&opened, &full, "snapshot + tail");
    // A snapshot at the end: nothing to fold after it.
    let end = snapshots.take(&full);
    let (opened, from, _) = open(&store, &snapshots);
    assert_eq!(from, Some(end));
    assert_same(&opened, &full, "snapshot at the end");
    assert!(full.state.accounts().any(|account| !account.lots.is_empty()) && !full.cards.accounts("card-1").is_empty());
}

/// The file a snapshot's thread encodes from the writer's copy while the writer goes on: the
/// same bytes as the projections gave when the copy was taken, however much they changed since
/// (every table the copy shares: new and refunded orders, lot takes, holds, requests, accounts'
/// flow references, rules).
#[tokio::test]
async fn a_copy_encodes_as_the_projections_were_when_it_was_taken() {
    let encoded = |projections: &Projections| {
        let mut bytes = Vec::new();
        let emit = |piece: &[u8]| {
            bytes.extend_from_slice(piece);
            Ok(())
        };
        snapshot_format::encode(projections, false, emit).unwrap();
        bytes
    };
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0).await;
    let (store, mut live) = fold(dir.path());
    let (before, copy) = (encoded(&live), live.snapshot_copy());
    drop(store);
    write(dir.path(), 1).await;
    let mut store = Store::open(dir.path(), false).unwrap();
    store.open_head().unwrap();
    live.fold_tail(&store).unwrap();
    assert!(live.state.last_sequence() > copy.state.last_sequence() + 5, "the live projections moved on");
    assert_ne!(encoded(&live), before);
    assert_eq!(encoded(&copy), before, "the copy is the projections as they were");
    // What the live projections changed while the copy shared it is in the tables' overlays;
    // settled once the copy is gone, they are still exactly the full fold of the log.
    let overlaid = live.state.overlaid();
    assert!(overlaid > 0, "the second workload changed accounts or orders the copy shared");
    live.settle();
    assert_eq!(live.state.overlaid(), overlaid, "nothing settles while the copy shares it");
    drop(copy);
    live.settle();
    assert_eq!(live.state.overlaid(), 0);
    drop(store);
    let (_store, full) = fold(dir.path());
    assert_same(&live, &full, "settled after the copy");
}

/// Every byte of the snapshot flipped, and the snapshot cut at every length: each copy is
/// skipped with a warning, and the open is the full fold.
#[tokio::test]
async fn every_damaged_byte_and_every_cut_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = MemorySnapshots::default();
    let (store, full, covered) = two_halves(dir.path(), &snapshots).await;
    let pristine = snapshots.bytes(covered);
    assert!(pristine.len() > 500, "{}", pristine.len());
    let check = |bytes: Vec<u8>, what: &str| {
        snapshots.put(covered, bytes);
        let (opened, from, warnings) = open(&store, &snapshots);
        assert_eq!(from, None, "{what}: used");
        assert!(warnings.len() == 1 && warnings[0].contains("was not used"), "{what}: {warnings:?}");
        assert_same(&opened, &full, what);
    };
    for position in 0..pristine.len() {
        let mut damaged = pristine.clone();
        damaged[position] ^= 0x41;
        check(damaged, &format!("byte {position} flipped"));
    }
    for length in (0..pristine.len()).step_by(7) {
        check(pristine[..length].to_vec(), &format!("cut at {length}"));
    }
    let mut longer = pristine.clone();
    longer.push(0);
    check(longer, "a byte more");
}

/// Rewrites a snapshot's header, then seals it again (header and file CRC), so that only the
/// check of what the header says can catch it.
fn rewrite_header(bytes: &mut [u8], change: impl FnOnce(&mut [u8])) {
    change(&mut bytes[..snapshot_format::HEADER_BYTES]);
    let header_crc = crc32fast::hash(&bytes[..29]);
    bytes[29..33].copy_from_slice(&header_crc.to_be_bytes());
    let end = bytes.len() - 4;
    let file_crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&file_crc.to_be_bytes());
}

#[tokio::test]
async fn a_snapshot_of_an_unknown_version_or_position_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = MemorySnapshots::default();
    let (store, full, covered) = two_halves(dir.path(), &snapshots).await;
    let pristine = snapshots.bytes(covered);
    let check = |change: &dyn Fn(&mut [u8]), key: u64, expect: &str| {
        snapshots.files.lock().unwrap().clear();
        let mut bytes = pristine.clone();
        rewrite_header(&mut bytes, change);
        snapshots.put(key, bytes);
        let (opened, from, warnings) = open(&store, &snapshots);
        assert_eq!(from, None, "{expect}");
        assert!(warnings.len() == 1 && warnings[0].contains(expect), "{expect}: {warnings:?}");
        assert_same(&opened, &full, expect);
    };
    check(&|header| header[8] = 2, covered, "format version 2 is not 1");
    check(&|header| header[17] ^= 1, covered, "is not the one it was taken after");
    let sequence = |to: u64| move |header: &mut [u8]| header[9..17].copy_from_slice(&to.to_be_bytes());
    // A TRANSFER_OUT shares its block with its TRANSFER_IN: no block ends there.
    let out = full.account_flows["a"].iter().find(|flow| flow.flow_type == purse_core::FlowType::TransferOut).unwrap();
    check(&sequence(out.sequence), out.sequence, "no finished commit of the log ends at");
    check(&sequence(covered - 1), covered - 1, "is not the one it was taken after");
    check(&sequence(999), 999, "before entry 999");
    check(&sequence(covered + 1), covered, "its name says entry");
    // A header moved to the position of another block: its records say otherwise.
    let (key, bytes) = store.block_containing(full.state.last_sequence()).unwrap().unwrap();
    let block = Block::parse(key, &bytes).unwrap();
    let moved = move |header: &mut [u8]| {
        header[9..17].copy_from_slice(&block.last_sequence().to_be_bytes());
        header[17..21].copy_from_slice(&block.checksum.to_be_bytes());
    };
    check(&moved, full.state.last_sequence(), "its header says");
}

#[tokio::test]
async fn a_damaged_newest_snapshot_falls_back_to_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = MemorySnapshots::default();
    let (store, full, covered) = two_halves(dir.path(), &snapshots).await;
    let newest = snapshots.take(&full);
    let mut damaged = snapshots.bytes(newest);
    let middle = damaged.len() / 2;
    damaged[middle] ^= 1;
    snapshots.put(newest, damaged);
    let (opened, from, warnings) = open(&store, &snapshots);
    assert_eq!(from, Some(covered));
    assert!(warnings.len() == 1 && warnings[0].contains("an older snapshot was folded instead"), "{warnings:?}");
    assert_same(&opened, &full, "the older snapshot");
}

#[tokio::test]
async fn verify_checks_the_newest_snapshot_against_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = MemorySnapshots::default();
    let (store, full, covered) = two_halves(dir.path(), &snapshots).await;
    let snapshotter = snapshots.snapshotter();
    let report = crate::verify::verify(&store, &full, &snapshotter).unwrap();
    assert_eq!(report.entries, full.state.last_sequence());
    assert!(snapshotter.warnings().is_empty());

    // Damaged: a warning (opening would skip it), and the log still verifies.
    let pristine = snapshots.bytes(covered);
    let mut damaged = pristine.clone();
    damaged[40] ^= 1;
    snapshots.put(covered, damaged);
    let snapshotter = snapshots.snapshotter();
    crate::verify::verify(&store, &full, &snapshotter).unwrap();
    assert!(snapshotter.warnings()[0].contains("fails its checks"), "{:?}", snapshotter.warnings());

    // Checksums that hold over contents that differ from the fold: CORRUPTION, naming what.
    type Tamper = fn(&mut Projections);
    let tampered: [(Tamper, &str); 2] = [
        (
            |wrong| {
                let flows = Arc::make_mut(wrong.account_flows.get_mut("a").unwrap());
                flows[0].order_time = Timestamp(flows[0].order_time.0 + 1);
            },
            "the flow index of \"a\"",
        ),
        (
            |wrong| {
                let mut requests = purse_idempotency::Index::new();
                for (id, record) in wrong.requests.iter() {
                    let flow_id = if id == "1-c1" { record.flow_id + 1 } else { record.flow_id };
                    requests.insert(id, purse_idempotency::Record { flow_id, ..*record }).unwrap();
                }
                wrong.requests = requests;
            },
            "the idempotency record of \"1-c1\"",
        ),
    ];
    for (tamper, expect) in tampered {
        let mut wrong = full.clone();
        tamper(&mut wrong);
        let fresh = MemorySnapshots::default();
        let end = fresh.take(&wrong);
        let error = crate::verify::verify(&store, &full, &fresh.snapshotter()).unwrap_err();
        assert_eq!(error.code(), purse_core::ErrorCode::Corruption, "{error}");
        assert!(error.to_string().contains(&format!("memory-{end}")) && error.to_string().contains(expect), "{error}");
    }
}
