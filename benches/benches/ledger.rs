//! The durable ledger through its async handle: flow lookup by id and by outer_order_id, a
//! 100-flow page of one account's history, and log replay (opening the ledger folds the whole
//! log). One ledger of `ACCOUNTS` accounts and `FLOWS` mixed flows, plus one account with
//! `HISTORY_FLOWS` flows, is written once before the benches (not timed).
//!
//! Queries run on the writer thread between batches, so each one includes a round trip from
//! the caller's task to the writer; lookups read the flow's block back from sled (its page
//! cache: the data set fits), check its CRC and decode the entry.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use purse_benches::{generate, rules};
use purse_core::{Action, Amount, Command};
use purse_ledger::{FlowKey, FlowQuery, GroupItem, GroupMode, Ledger, LedgerConfig};
use tokio::runtime::Runtime;

const ACCOUNTS: usize = 1_000;
const FLOWS: usize = 50_000;
/// The flows of the account the page bench reads, alternating CHARGE and DEDUCT.
const HISTORY_FLOWS: usize = 2_000;
const HISTORY_ACCOUNT: &str = "history";
/// Commands per group commit while loading.
const LOAD_GROUP: usize = 1_000;

/// Writes the data set; returns `(flow_id, outer_order_id)` of every flow written, and the
/// number of log entries.
fn load(runtime: &Runtime, path: &Path) -> (Vec<(u64, String)>, u64) {
    let history = generate(ACCOUNTS, FLOWS, "");
    let mut commands = history.commands;
    for index in 0..HISTORY_FLOWS {
        let id = format!("h.{index}");
        let action = if index % 2 == 0 {
            Action::Charge { real: Amount::from_minor(10_000), gift: None, pre: Amount::ZERO, trigger_gift: false }
        } else {
            Action::Deduct { value: Amount::from_minor(1_000) }
        };
        commands.push(Command::new(&id, &id, HISTORY_ACCOUNT, action));
    }
    runtime.block_on(async {
        let ledger = Ledger::open(LedgerConfig::new(path)).await.expect("open");
        ledger.set_rules(None, rules()).await.expect("rules");
        let mut written = Vec::with_capacity(commands.len());
        for chunk in commands.chunks(LOAD_GROUP) {
            let outcome = ledger.submit_group(chunk.to_vec(), GroupMode::Partial).await.expect("group");
            for (item, command) in outcome.items.into_iter().zip(chunk) {
                match item {
                    GroupItem::Written(summary) => written.push((summary.flow_id, command.outer_order_id.clone())),
                    other => panic!("the bench data set must be accepted whole: {other:?}"),
                }
            }
        }
        let entries = ledger.verify().await.expect("verify").entries;
        ledger.close().await.expect("close");
        (written, entries)
    })
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (written, entries) = load(&runtime, dir.path());
    // Every 97th flow: spread over the whole log, so lookups touch many blocks.
    let sample: Vec<&(u64, String)> = written.iter().step_by(97).collect();

    let mut group = c.benchmark_group("ledger");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(entries));
    group.bench_function("replay_open_53k_entries", |b| {
        b.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let ledger = runtime.block_on(Ledger::open(LedgerConfig::new(dir.path()))).expect("open");
                elapsed += started.elapsed();
                runtime.block_on(ledger.close()).expect("close");
            }
            elapsed
        });
    });
    group.finish();

    let ledger = runtime.block_on(Ledger::open(LedgerConfig::new(dir.path()))).expect("open");
    let mut group = c.benchmark_group("query");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("flow_by_id", |b| {
        b.iter(|| {
            next = (next + 1) % sample.len();
            black_box(runtime.block_on(ledger.flow(FlowKey::Id(sample[next].0))).expect("found"))
        });
    });
    group.bench_function("flow_by_outer_order_id", |b| {
        b.iter(|| {
            next = (next + 1) % sample.len();
            let key = FlowKey::OuterOrderId(sample[next].1.clone());
            black_box(runtime.block_on(ledger.flow(key)).expect("found"))
        });
    });
    let pages = u32::try_from(HISTORY_FLOWS / 100).expect("small");
    let mut page_no = 0u32;
    group.bench_function("account_page_of_100", |b| {
        b.iter(|| {
            page_no = page_no % pages + 1;
            let query = FlowQuery { page_no, page_size: 100, ..FlowQuery::new(HISTORY_ACCOUNT) };
            let page = runtime.block_on(ledger.flows(query)).expect("page");
            assert_eq!(page.flows.len(), 100);
            black_box(page)
        });
    });
    group.finish();
    runtime.block_on(ledger.close()).expect("close");
}

criterion_group! {
    name = ledger;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(ledger);
