//! Opening from a snapshot and the log after it gives exactly the full fold, on random
//! workloads with snapshots at random points.
//!
//! Each seed runs a random workload (every command type, expiring lots and holds, transfers,
//! cards shared between accounts, brands, rules changes, sweeps, retries) against a ledger that
//! takes snapshots either explicitly at random points (`Ledger::snapshot`) or by itself every
//! few entries (`snapshot_every_entries` drawn small), and is closed and reopened at random
//! points. After every reopen:
//! - the open started from the newest snapshot on disk (never silently from none), with no
//!   warning;
//! - `verify` passes: it refolds the whole log and compares every projection of the live ledger
//!   (from the snapshot and the tail) with that fold, and the newest snapshot with the fold at
//!   its position;
//! - every account and every order answers as it did before the close.
//!
//! At the end the snapshots are removed and the ledger opened by a full fold: the same answers.
//!
//! `PURSE_SNAPSHOT_SEED` replays a run (the seed is printed); `PURSE_SNAPSHOT_SEEDS` (default
//! 16) sets how many seeds follow it.

mod common;

use std::path::Path;

use common::{money, seed};
use purse_core::{Action, Amount, ClearBuckets, Command, RuleSet, Timestamp};
use purse_ledger::bench_support::Rng;
use purse_ledger::{AccountView, FlowKey, Ledger, LedgerConfig, SweepScope};

const ACCOUNTS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const COMMANDS: usize = 240;
/// 2026-10-01 00:00:00 +08:00.
const BASE: i64 = 1_790_784_000;
const DAY: i64 = 86_400;

/// How a seed's ledger takes snapshots.
#[derive(Debug, Clone, Copy)]
enum Taking {
    /// Only `Ledger::snapshot`, with this chance in 100 after each command.
    Explicit(u64),
    /// By itself, every so many entries (and at a clean close).
    Every(u64),
}

fn config(dir: &Path, taking: Taking) -> LedgerConfig {
    // Every snapshot goes into the cold store: what opening from one gives is then memory's
    // part and the cold store's.
    let mut config = LedgerConfig { cold_after_entries: 0, ..LedgerConfig::new(dir) };
    config.snapshot_every_entries = match taking {
        Taking::Explicit(_) => 0,
        Taking::Every(entries) => entries,
    };
    config
}

fn command(rng: &mut Rng, step: usize, orders: &[(String, String, &'static str)]) -> Command {
    let account = ACCOUNTS[rng.index(ACCOUNTS.len())];
    let id = format!("o{step}");
    let amount = |rng: &mut Rng, most: u64| money(&format!("{}.{:02}", rng.below(most), rng.below(100)));
    let order_of = |rng: &mut Rng, kind: &str| {
        let matching: Vec<&(String, String, &str)> = orders.iter().filter(|order| order.2 == kind).collect();
        (!matching.is_empty()).then(|| matching[rng.index(matching.len())].clone())
    };
    let at = |rng: &mut Rng| Timestamp(BASE + i64::try_from(rng.below(40 * 24)).unwrap() * 3600);
    let expiry = |rng: &mut Rng| Timestamp(BASE + 41 * DAY + i64::try_from(rng.below(3)).unwrap() * DAY);
    let mut command = match rng.below(14) {
        0..=2 => {
            let action = Action::Charge {
                real: amount(rng, 100),
                gift: Some(amount(rng, 20)),
                pre: amount(rng, 10),
                trigger_gift: false,
            };
            let mut command = Command::new(&id, &id, account, action);
            if rng.below(2) == 0 {
                command.gift_expire_time = Some(expiry(rng));
            }
            // Cards shared by two accounts, and brands with rules of their own.
            command.card_id = Some(format!("card-{}", account.as_bytes()[0] % 3));
            command.brand_id = (rng.below(2) == 0).then(|| "B".to_owned());
            command
        }
        3 | 4 => Command::new(&id, &id, account, Action::Deduct { value: amount(rng, 60) }),
        5 => match order_of(rng, "deduct") {
            Some((account, order, _)) => {
                let value = (rng.below(2) == 0).then(|| amount(rng, 10));
                Command::new(&id, &id, &account, Action::Undeduct { original_outer_order_id: order, value })
            }
            None => Command::new(&id, &id, account, Action::Deduct { value: amount(rng, 5) }),
        },
        6 => {
            let expire_time = (rng.below(2) == 0).then(|| expiry(rng));
            Command::new(&id, &id, account, Action::Hold { value: amount(rng, 30), expire_time })
        }
        7 => match order_of(rng, "hold") {
            Some((account, order, _)) if rng.below(2) == 0 => {
                let value = (rng.below(2) == 0).then(|| amount(rng, 10));
                Command::new(&id, &id, &account, Action::Capture { src_outer_order_id: order, value })
            }
            Some((account, order, _)) => {
                Command::new(&id, &id, &account, Action::Release { src_outer_order_id: order })
            }
            None => Command::new(&id, &id, account, Action::Hold { value: amount(rng, 5), expire_time: None }),
        },
        8 => {
            let to = ACCOUNTS[rng.index(ACCOUNTS.len())];
            let value = (rng.below(3) != 0).then(|| amount(rng, 20));
            Command::new(&id, &id, account, Action::Transfer { to_account_id: to.to_owned(), value })
        }
        9 => {
            let action = Action::Adjust { real: Amount::ZERO, gift: amount(rng, 5), pre: Amount::ZERO };
            let mut command = Command::new(&id, &id, account, action);
            command.remark = Some("fix".into());
            command
        }
        10 => {
            let buckets = [ClearBuckets::Gift, ClearBuckets::Pre, ClearBuckets::All][rng.index(3)];
            let mut command = Command::new(&id, &id, account, Action::Clear { buckets });
            command.remark = Some("promo over".into());
            command
        }
        11 => {
            let action = if rng.below(2) == 0 { Action::Freeze } else { Action::Unfreeze };
            let mut command = Command::new(&id, &id, account, action);
            command.remark = Some("status".into());
            command
        }
        12 => {
            // A marker for a rules change, made by the caller.
            return Command::new("rules", "rules", account, Action::Freeze);
        }
        _ => {
            // A marker for a sweep, turned into `Ledger::expire` by the caller.
            let mut command = Command::new("sweep", "sweep", account, Action::Freeze);
            command.biz_date = Some(Timestamp(BASE + 41 * DAY + i64::try_from(rng.below(4)).unwrap() * DAY));
            return command;
        }
    };
    command.biz_date = Some(at(rng));
    command
}

/// Runs one command of the workload; returns whether it wrote.
async fn run_one(ledger: &Ledger, rng: &mut Rng, command: Command) -> bool {
    match command.request_id.as_str() {
        "sweep" => {
            let now = command.biz_date.unwrap();
            let scope =
                if rng.below(2) == 0 { SweepScope::All } else { SweepScope::Account(command.account_id.clone()) };
            ledger.expire(now, scope).await.is_ok_and(|flows| !flows.is_empty())
        }
        "rules" => {
            let brand = (rng.below(2) == 0).then(|| "B".to_owned());
            let days = u32::try_from(rng.below(40)).unwrap() + 1;
            let rules = RuleSet { gift_valid_days: Some(days), ..RuleSet::default() };
            ledger.set_rules(brand, rules).await.is_ok()
        }
        _ if matches!(command.action, Action::Transfer { .. }) => ledger.transfer(command).await.is_ok(),
        _ => ledger.submit(command).await.is_ok(),
    }
}

/// What the ledger answers, to compare across a reopen: every account, every order's flow, the
/// rules, and the flows' count.
async fn answers(ledger: &Ledger, orders: &[(String, String, &'static str)]) -> String {
    let mut out = String::new();
    for account in ACCOUNTS {
        let view: Result<AccountView, _> = ledger.account(account).await;
        out.push_str(&format!("{:?}\n", view.map_err(|error| error.code())));
    }
    for (_, order, _) in orders {
        let flow = ledger.flow(FlowKey::OuterOrderId(order.clone())).await;
        out.push_str(&format!("{:?}\n", flow.map(|flow| flow.flow_id).map_err(|error| error.code())));
    }
    for brand in [None, Some("B".to_owned())] {
        out.push_str(&format!("{:?}\n", ledger.rules(brand).await.unwrap()));
    }
    out
}

/// The newest snapshot in the ledger's folder, by the sequence it covers.
fn newest_snapshot(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir.join("purse-snapshots")).ok()?;
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_prefix("snapshot-")?.strip_suffix(".purse")?.parse().ok()
        })
        .max()
}

/// Closes and reopens, and checks the open against the newest snapshot and the full fold.
async fn reopen(
    ledger: Ledger,
    dir: &Path,
    taking: Taking,
    orders: &[(String, String, &'static str)],
    at: &str,
) -> Ledger {
    let before = answers(&ledger, orders).await;
    ledger.close().await.unwrap();
    let ledger = Ledger::open(config(dir, taking)).await.unwrap();
    let stats = ledger.snapshot_stats().await.unwrap();
    assert_eq!(stats.loaded_from, newest_snapshot(dir), "{at}: opened from the newest snapshot");
    let report = ledger.verify().await.unwrap_or_else(|error| panic!("{at}: verify: {error}"));
    assert!(report.warnings.is_empty(), "{at}: {:?}", report.warnings);
    assert_eq!(stats.entries_folded_on_open, report.entries - stats.loaded_from.unwrap_or(0), "{at}");
    assert_eq!(answers(&ledger, orders).await, before, "{at}: answers after the reopen");
    ledger
}

async fn run_seed(seed: u64) -> (u64, u64) {
    let mut rng = Rng::new(seed);
    let taking = if rng.below(2) == 0 { Taking::Explicit(rng.below(15) + 2) } else { Taking::Every(rng.below(30) + 1) };
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(config(dir.path(), taking)).await.unwrap();
    let mut orders: Vec<(String, String, &'static str)> = Vec::new();
    let (mut reopens, mut from_snapshot) = (0, 0);
    for step in 0..COMMANDS {
        let command = command(&mut rng, step, &orders);
        let kind = match &command.action {
            Action::Deduct { .. } => "deduct",
            Action::Hold { .. } => "hold",
            _ => "order",
        };
        let (account, order) = (command.account_id.clone(), command.outer_order_id.clone());
        let marker = matches!(order.as_str(), "sweep" | "rules");
        if run_one(&ledger, &mut rng, command.clone()).await && !marker {
            orders.push((account, order, kind));
            if rng.below(8) == 0 {
                // A retry: the same answer, nothing written.
                run_one(&ledger, &mut rng, command).await;
            }
        }
        if let Taking::Explicit(chance) = taking {
            if rng.below(100) < chance {
                if let Err(error) = ledger.snapshot().await {
                    let entries = ledger.verify().await.unwrap().entries;
                    assert_eq!(entries, 0, "seed {seed}: only an empty ledger has nothing to snapshot: {error}");
                }
            }
        }
        if rng.below(30) == 0 || step + 1 == COMMANDS {
            ledger =
                reopen(ledger, dir.path(), taking, &orders, &format!("seed {seed}, step {step}, {taking:?}")).await;
            reopens += 1;
            from_snapshot += u64::from(ledger.snapshot_stats().await.unwrap().loaded_from.is_some());
        }
    }
    // The same ledger by a full fold: the same answers.
    let expected = answers(&ledger, &orders).await;
    ledger.close().await.unwrap();
    std::fs::remove_dir_all(dir.path().join("purse-snapshots")).unwrap();
    let mut config = config(dir.path(), taking);
    config.snapshot_every_entries = 0;
    let ledger = Ledger::open(config).await.unwrap();
    assert_eq!(ledger.snapshot_stats().await.unwrap().loaded_from, None);
    assert_eq!(answers(&ledger, &orders).await, expected, "seed {seed}: a full fold answers otherwise");
    ledger.close().await.unwrap();
    (reopens, from_snapshot)
}

#[tokio::test]
async fn open_from_a_snapshot_and_the_tail_is_the_full_fold() {
    let first = seed("PURSE_SNAPSHOT_SEED");
    let seeds = std::env::var("PURSE_SNAPSHOT_SEEDS").ok().and_then(|text| text.parse().ok()).unwrap_or(16u64);
    println!("PURSE_SNAPSHOT_SEED={first}, {seeds} seeds");
    let (mut reopens, mut from_snapshot) = (0, 0);
    for seed in first..first + seeds {
        let (seed_reopens, seed_from_snapshot) = run_seed(seed).await;
        reopens += seed_reopens;
        from_snapshot += seed_from_snapshot;
    }
    println!("{reopens} reopens, {from_snapshot} from a snapshot");
    assert!(from_snapshot * 2 > reopens, "most reopens start from a snapshot: {from_snapshot} of {reopens}");
}
