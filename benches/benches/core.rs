//! The pure parts, with no disk: the fold, decide+apply per flow type, the record format, the
//! request fingerprint and the flow-detail rendering the writer does for every answer.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use purse_benches::{account_id, context, decide_apply, generate, History};
use purse_core::{apply, decide, Action, Amount, Command, Config, Entry, Flow, State};
use purse_ledger::bench_support::{decode_flow, encode_flow};

/// Flows in the history the fold and the record benches run over.
const HISTORY_FLOWS: usize = 100_000;
const HISTORY_ACCOUNTS: usize = 10_000;

fn fold(c: &mut Criterion, history: &History) {
    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(history.entries.len() as u64));
    group.bench_function("apply_100k_entries", |b| {
        b.iter_batched(
            || State::new(Config::default()),
            |mut state| {
                for entry in &history.entries {
                    state.apply_entry(entry).expect("the history folds");
                }
                state
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// Builds the command of one iteration from `(state, request and order id, account id)`; may
/// decide and fold what the command needs first (UNCHARGE's CHARGE), outside the timed loop.
type MakeCommand = fn(&mut State, &str, &str) -> Command;

/// decide + apply of one command of each type, against a state of `HISTORY_ACCOUNTS` accounts
/// that keeps growing as the bench runs (as a ledger's does). Commands are built before the
/// timed loop; UNCHARGE's CHARGEs are decided and folded before it too.
fn decide_apply_per_type(c: &mut Criterion, history: &History) {
    let mut state = history.state.clone();
    // A rich account whose DEDUCTs and refunds never run out, and one huge DEDUCT to refund.
    let rich = account_id(0);
    let import =
        Action::Import { real: Amount::from_minor(1 << 50), gift: Amount::from_minor(1 << 48), pre: Amount::ZERO };
    decide_apply(&mut state, &Command::new("rich", "rich", &rich, import));
    decide_apply(&mut state, &Command::new("big", "big", &rich, Action::Deduct { value: Amount::from_minor(1 << 46) }));
    let mut serial = 0u64;
    let mut group = c.benchmark_group("decide_apply");
    group.throughput(Throughput::Elements(1));
    let kinds: [(&str, MakeCommand); 6] = [
        ("CHARGE_gift_rule", |_, id, account| {
            let action =
                Action::Charge { real: Amount::from_minor(50_000), gift: None, pre: Amount::ZERO, trigger_gift: true };
            Command::new(id, id, account, action)
        }),
        ("DEDUCT", |_, id, _| Command::new(id, id, "acct-000000", Action::Deduct { value: Amount::from_minor(3_333) })),
        ("UNDEDUCT_partial", |_, id, _| {
            let action =
                Action::Undeduct { original_outer_order_id: "big".into(), value: Some(Amount::from_minor(1_001)) };
            Command::new(id, id, "acct-000000", action)
        }),
        ("UNCHARGE", |state, id, account| {
            let charged = format!("{id}.c");
            let action =
                Action::Charge { real: Amount::from_minor(20_000), gift: None, pre: Amount::ZERO, trigger_gift: true };
            decide_apply(state, &Command::new(&charged, &charged, account, action));
            Command::new(id, id, account, Action::Uncharge { src_outer_order_id: charged })
        }),
        ("IMPORT_new_account", |_, id, _| {
            let action = Action::Import {
                real: Amount::from_minor(8_800),
                gift: Amount::from_minor(1_200),
                pre: Amount::from_minor(500),
            };
            Command::new(id, id, &format!("import-{id}"), action)
        }),
        ("ADJUST", |_, id, account| {
            let action = Action::Adjust { real: Amount::from_minor(100), gift: Amount::ZERO, pre: Amount::ZERO };
            let mut command = Command::new(id, id, account, action);
            command.remark = Some("bench correction".into());
            command
        }),
    ];
    for (name, make) in kinds {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let commands: Vec<Command> = (0..iterations)
                    .map(|_| {
                        serial += 1;
                        let account = account_id(usize::try_from(serial % HISTORY_ACCOUNTS as u64).expect("small"));
                        make(&mut state, &format!("b.{serial}"), &account)
                    })
                    .collect();
                let started = Instant::now();
                for command in &commands {
                    let flow = decide(&state, command, &context(&state)).expect("bench commands are accepted").flow;
                    apply(&mut state, &flow).expect("a decided flow folds");
                    black_box(&flow);
                }
                started.elapsed()
            });
        });
    }
    group.finish();
}

fn records(c: &mut Criterion, history: &History) {
    let sample: Vec<(&Flow, _)> = history
        .entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Flow(flow) => Some(flow),
            Entry::Rules(_) => None,
        })
        .zip(&history.fingerprints)
        .take(1000)
        .collect();
    let encoded: Vec<Vec<u8>> = sample
        .iter()
        .map(|(flow, fingerprint)| {
            let mut bytes = Vec::new();
            encode_flow(flow, fingerprint, &mut bytes);
            bytes
        })
        .collect();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(sample.len() as u64));
    let mut out = Vec::with_capacity(256 * 1024);
    group.bench_function("encode_1000_flows", |b| {
        b.iter(|| {
            out.clear();
            for (flow, fingerprint) in &sample {
                encode_flow(flow, fingerprint, &mut out);
            }
            black_box(out.len())
        });
    });
    group.bench_function("decode_1000_flows", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(decode_flow(bytes).expect("decodes"));
            }
        });
    });
    group.bench_function("fingerprint_1000_commands", |b| {
        b.iter(|| {
            for command in history.commands.iter().take(1000) {
                black_box(purse_idempotency::fingerprint(command));
            }
        });
    });
    let config = Config::default();
    group.bench_function("render_1000_flow_details", |b| {
        b.iter(|| {
            for (flow, _) in &sample {
                black_box(flow.detail(config.scale, config.zone).expect("in range"));
            }
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let history = generate(HISTORY_ACCOUNTS, HISTORY_FLOWS, "");
    fold(c, &history);
    decide_apply_per_type(c, &history);
    records(c, &history);
}

criterion_group! {
    name = core;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(core);
