//! One flipped byte anywhere in a ledger's directory: refused, repaired or harmless, never a
//! ledger that opens and answers differently.
//!
//! A small ledger (flows of every type, a rules change) is written in three sessions, each
//! closed cleanly. Its answers are taken from a copy (every account with its flows, every entry
//! by flow id and every flow by order id, the rules, `verify`'s counts). Then, for a sample of byte positions
//! over every file in the directory (sled's `db`, `conf` and `snap.*`, purse's `purse-head`),
//! a fresh copy of the pristine directory gets that one byte flipped (alternately xor 0xff and
//! xor a random nonzero mask) and is opened. Each copy is one of:
//!
//! - `refused`: the open or `verify` fails with CORRUPTION or STORAGE;
//! - `repaired`: it opens with the same answers and `purse-repairs.log` appeared or grew;
//! - `harmless`: it opens with the same answers and no repair;
//! - `wrong`: it opens and `verify` passes but some answer differs, any other error code, a
//!   panic outside sled (sled's own panics are turned into CORRUPTION by design), or no answer.
//!
//! The test fails if any copy is `wrong`. Every copy starts from the pristine files, since sled
//! rewrites its files on open.
//!
//! `PURSE_BYTE_FLIP_SAMPLE` (default 640 flips in all: every byte of `conf`, `purse-head` and a
//! small `snap.*`, the rest in `db`) and `PURSE_BYTE_FLIP_SEED` (default: from the clock,
//! printed).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{charge, copy_dir, deduct, money};
use purse_core::{Action, Command, ErrorCode, RuleSet, RuleSetText, Scale};
use purse_ledger::bench_support::Rng;
use purse_ledger::{Error, FlowKey, FlowQuery, Ledger, LedgerConfig, PAGE_SIZE_MAX};

const SAMPLE_DEFAULT: usize = 640;
/// The file the store appends one line to per repair of sled's files.
const REPAIRS_LOG: &str = "purse-repairs.log";
const ACCOUNTS: &[&str] = &["alice", "bob", "carol", "dave", "nobody"];
/// A damaged copy that gives no answer in this long hangs; that is `wrong`, not slow.
const PATIENCE: Duration = Duration::from_secs(120);
/// `wrong` copies described in full at the end.
const WRONG_SHOWN: usize = 20;

/// The commands of the ledger, in order: every flow type, a few accounts, a brand's rule.
fn commands() -> Vec<Command> {
    let mut commands = Vec::new();
    for index in 0..24 {
        let account = ACCOUNTS[index % 4];
        let mut command = charge(&format!("c-{index}"), &format!("co-{index}"), account, "100.00");
        if account == "alice" {
            command.brand_id = Some("b1".into());
            let trigger_gift = index % 8 == 0;
            command.action = Action::Charge { real: money("100.00"), gift: None, pre: money("5.00"), trigger_gift };
        }
        if index % 5 == 0 {
            command.remark = Some(format!("remark {index}"));
            command.ext_info = Some(format!("{{\"index\": {index}}}"));
        }
        commands.push(command);
    }
    for index in 0..12 {
        commands.push(deduct(&format!("d-{index}"), &format!("do-{index}"), ACCOUNTS[index % 4], "30.00"));
    }
    for index in 0..4 {
        let action = Action::Undeduct { original_outer_order_id: format!("do-{index}"), value: None };
        commands.push(Command::new(&format!("u-{index}"), &format!("uo-{index}"), ACCOUNTS[index % 4], action));
        let action =
            Action::Undeduct { original_outer_order_id: format!("do-{}", index + 4), value: Some(money("10")) };
        commands.push(Command::new(&format!("p-{index}"), &format!("po-{index}"), ACCOUNTS[index % 4], action));
    }
    for index in [1, 2] {
        let action = Action::Uncharge { src_outer_order_id: format!("co-{}", index + 12) };
        commands.push(Command::new(&format!("x-{index}"), &format!("xo-{index}"), ACCOUNTS[index % 4], action));
    }
    let action = Action::Import { real: money("20.00"), gift: money("2.00"), pre: money("1.00") };
    commands.push(Command::new("i-1", "io-1", "carol", action));
    let mut adjust =
        Command::new("a-1", "ao-1", "dave", Action::Adjust { real: money("-1.50"), gift: money("0"), pre: money("0") });
    adjust.remark = Some("till short".into());
    commands.push(adjust);
    commands
}

fn rules() -> RuleSet {
    let text = RuleSetText {
        gift_valid_days: None,
        deduction_order: Some("GIFT_BEFORE_REAL_DEDUCT".into()),
        gift_type: Some("CUSTOMIZED".into()),
        full_gift_switch: Some(true),
        tiers: vec![("50".into(), "5".into())],
    };
    RuleSet::from_text(&text, Scale::CNY).expect("rules")
}

/// Writes the ledger in three sessions, each opened and closed cleanly like separate runs of
/// the binary: a reopen is what makes sled write its snapshot file.
async fn build(path: &Path) {
    let commands = commands();
    let (first, rest) = commands.split_at(10);
    let (second, third) = rest.split_at(20);
    for (session, commands) in [first, second, third].into_iter().enumerate() {
        let ledger = common::reopen(path).await.unwrap_or_else(|error| panic!("session {session}: {error}"));
        if session == 1 {
            ledger.set_rules(Some("b1".into()), rules()).await.expect("rules");
        }
        for command in commands {
            ledger.submit(command.clone()).await.unwrap_or_else(|error| panic!("{}: {error}", command.request_id));
        }
        ledger.close().await.expect("close");
    }
}

/// Everything the ledger answers, as text, or the error that stopped it.
async fn answers(ledger: &Ledger) -> Result<String, Error> {
    let report = ledger.verify().await?;
    let (entries, flows, accounts, blocks) = (report.entries, report.flows, report.accounts, report.blocks);
    let mut out = format!("verify: {entries} entries, {flows} flows, {accounts} accounts, {blocks} blocks\n");
    let show = |result: Result<String, Error>| result.unwrap_or_else(|error| format!("{:?}", error.code()));
    for sequence in 1..=report.entries + 1 {
        out += &show(ledger.flow(FlowKey::Id(sequence)).await.map(|flow| format!("{flow:?}\n")));
    }
    for command in commands() {
        out += &show(
            ledger.flow(FlowKey::OuterOrderId(command.outer_order_id)).await.map(|flow| format!("{}\n", flow.flow_id)),
        );
    }
    for account in ACCOUNTS {
        out += &show(ledger.account(account).await.map(|view| format!("{view:?}\n")));
        let mut query = FlowQuery::new(*account);
        query.page_size = PAGE_SIZE_MAX;
        out += &show(ledger.flows(query).await.map(|page| format!("{page:?}\n")));
    }
    for brand in [None, Some("b1".to_owned())] {
        out += &show(ledger.rules(brand).await.map(|rules| format!("{rules:?}\n")));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Refused,
    Repaired,
    Harmless,
    Wrong,
}

const OUTCOMES: [Outcome; 4] = [Outcome::Refused, Outcome::Repaired, Outcome::Harmless, Outcome::Wrong];

fn refusal(error: &Error) -> bool {
    matches!(error.code(), ErrorCode::Corruption | ErrorCode::Storage)
}

fn repairs(path: &Path) -> u64 {
    std::fs::metadata(path.join(REPAIRS_LOG)).map_or(0, |metadata| metadata.len())
}

/// Opens the damaged copy at `path` and says what it is, with a word on why.
async fn classify(path: &Path, reference: &str, repairs_before: u64) -> (Outcome, String) {
    let ledger = match Ledger::open(LedgerConfig::new(path)).await {
        Ok(ledger) => ledger,
        Err(error) if refusal(&error) => return (Outcome::Refused, format!("open: {error}")),
        Err(error) => return (Outcome::Wrong, format!("open failed with {:?}: {error}", error.code())),
    };
    let answered = answers(&ledger).await;
    let closed = ledger.close().await;
    let text = match answered {
        Ok(text) => text,
        Err(error) if refusal(&error) => return (Outcome::Refused, format!("verify: {error}")),
        Err(error) => return (Outcome::Wrong, format!("verify failed with {:?}: {error}", error.code())),
    };
    if text != reference {
        let (line, (got, expected)) = text
            .lines()
            .zip(reference.lines())
            .enumerate()
            .find(|(_, (got, expected))| got != expected)
            .unwrap_or((0, ("(a different number of lines)", "")));
        return (Outcome::Wrong, format!("opened with other answers; line {line}: {got:?}, expected {expected:?}"));
    }
    match closed {
        Err(error) if refusal(&error) => (Outcome::Refused, format!("close: {error}")),
        Err(error) => (Outcome::Wrong, format!("close failed with {:?}: {error}", error.code())),
        Ok(()) if repairs(path) > repairs_before => (Outcome::Repaired, String::new()),
        Ok(()) => (Outcome::Harmless, String::new()),
    }
}

/// Every file under `dir`, as paths relative to it, with its length.
fn files(dir: &Path, under: &Path, out: &mut Vec<(PathBuf, usize)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir.join(under)).unwrap().map(Result::unwrap).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let relative = under.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            files(dir, &relative, out);
        } else {
            out.push((relative, usize::try_from(entry.metadata().unwrap().len()).expect("a small file")));
        }
    }
}

/// The byte positions to flip: `sample` split evenly over the files; a file shorter than its
/// share has every byte flipped and its rest goes to the others. In `db` (sled preallocates
/// it, the tail is zeros) three quarters fall before its last nonzero byte.
fn plan(dir: &Path, files: &[(PathBuf, usize)], sample: usize, random: &mut Rng) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&file| files[file].1);
    let mut left = sample;
    let mut positions = Vec::new();
    for (done, &file) in order.iter().enumerate() {
        let (name, len) = &files[file];
        let share = left / (files.len() - done);
        if *len <= share {
            positions.extend((0..*len).map(|at| (file, at)));
            left -= len;
            continue;
        }
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let used = bytes.iter().rposition(|&byte| byte != 0).map_or(*len, |last| last + 1);
        let mut chosen = std::collections::BTreeSet::new();
        while chosen.len() < share {
            let bound = if chosen.len() % 4 == 3 { *len } else { used };
            chosen.insert(random.index(bound));
        }
        positions.extend(chosen.into_iter().map(|at| (file, at)));
        left -= share;
    }
    positions
}

/// Counts panics outside sled. sled's own are caught by the store and reported as CORRUPTION,
/// by design; any other is a bug, and the copy it happened on is `wrong`.
fn count_panics() -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&count);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_sled = info.location().is_some_and(|location| location.file().contains("/sled-"));
        if !in_sled {
            counted.fetch_add(1, Ordering::SeqCst);
            default(info);
        }
    }));
    count
}

fn main() {
    let sample =
        std::env::var("PURSE_BYTE_FLIP_SAMPLE").ok().and_then(|text| text.parse().ok()).unwrap_or(SAMPLE_DEFAULT);
    let seed = common::seed("PURSE_BYTE_FLIP_SEED");
    println!("byte_flip: {sample} flips, PURSE_BYTE_FLIP_SEED={seed}");
    let mut random = Rng::new(seed);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let pristine = tempfile::tempdir().unwrap();
    runtime.block_on(build(pristine.path()));

    // The answers, from a copy: opening rewrites sled's files, and the pristine ones stay as
    // the clean close left them.
    let scratch = tempfile::tempdir().unwrap();
    let reference = {
        let copy = scratch.path().join("reference");
        copy_dir(pristine.path(), &copy);
        let repairs_before = repairs(&copy);
        let answers = runtime.block_on(async {
            let ledger = Ledger::open(LedgerConfig::new(&copy)).await.expect("the pristine copy opens");
            let answers = answers(&ledger).await.expect("the pristine copy answers");
            ledger.close().await.expect("close");
            answers
        });
        assert_eq!(repairs(&copy), repairs_before, "the pristine copy needed a repair");
        answers
    };
    let flows = commands().len();
    assert!(reference.starts_with(&format!("verify: {} entries, {flows} flows", flows + 1)), "{reference}");
    let mut listing = Vec::new();
    files(pristine.path(), Path::new(""), &mut listing);
    let repairs_before = repairs(pristine.path());
    let names: Vec<String> = listing.iter().map(|(name, len)| format!("{} ({len} bytes)", name.display())).collect();
    println!("byte_flip: files {}", names.join(", "));
    for expected in ["db", "conf", "purse-head"] {
        assert!(listing.iter().any(|(name, _)| name == Path::new(expected)), "no {expected} in {names:?}");
    }
    assert!(listing.iter().any(|(name, _)| name.to_string_lossy().starts_with("snap.")), "no snapshot: {names:?}");

    let panics = count_panics();
    let mut counts: BTreeMap<String, BTreeMap<Outcome, u64>> = BTreeMap::new();
    let mut wrong = Vec::new();
    // Per file: why copies were refused (the message without its numbers), how often.
    let mut refusals: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (index, (file, at)) in plan(pristine.path(), &listing, sample, &mut random).into_iter().enumerate() {
        let name = &listing[file].0;
        let mask = if index % 2 == 0 { 0xff } else { u8::try_from(1 + random.below(255)).expect("a byte") };
        let copy = scratch.path().join(format!("flip-{index}"));
        copy_dir(pristine.path(), &copy);
        let mut bytes = std::fs::read(copy.join(name)).unwrap();
        bytes[at] ^= mask;
        std::fs::write(copy.join(name), &bytes).unwrap();
        let panics_before = panics.load(Ordering::SeqCst);
        let classified = runtime
            .block_on(async { tokio::time::timeout(PATIENCE, classify(&copy, &reference, repairs_before)).await });
        let (mut outcome, mut why) =
            classified.unwrap_or_else(|_| (Outcome::Wrong, format!("no answer in {} s", PATIENCE.as_secs())));
        if panics.load(Ordering::SeqCst) != panics_before {
            (outcome, why) = (Outcome::Wrong, format!("a panic outside sled ({outcome:?}: {why})"));
        }
        let file_name = name.display().to_string();
        *counts.entry(file_name.clone()).or_default().entry(outcome).or_default() += 1;
        match outcome {
            Outcome::Wrong => wrong.push(format!("{file_name} byte {at} ^ {mask:#04x}: {why}")),
            Outcome::Refused => {
                let reason: String = why.chars().filter(|character| !character.is_ascii_digit()).take(120).collect();
                *refusals.entry(file_name).or_default().entry(reason).or_default() += 1;
            }
            Outcome::Repaired | Outcome::Harmless => {}
        }
        let _ = std::fs::remove_dir_all(&copy);
    }

    let mut totals: BTreeMap<Outcome, u64> = BTreeMap::new();
    for (file, outcomes) in &counts {
        let line: Vec<String> = OUTCOMES
            .iter()
            .map(|outcome| {
                let count = outcomes.get(outcome).copied().unwrap_or(0);
                *totals.entry(*outcome).or_default() += count;
                format!("{count} {outcome:?}").to_lowercase()
            })
            .collect();
        println!("byte_flip: {file}: {}", line.join(", "));
        let mut reasons: Vec<(&String, &u64)> = refusals.get(file).into_iter().flatten().collect();
        reasons.sort_by(|left, right| right.1.cmp(left.1));
        for (reason, count) in reasons {
            println!("byte_flip:   {count} refused: {reason}");
        }
    }
    let line: Vec<String> = OUTCOMES
        .iter()
        .map(|outcome| format!("{} {outcome:?}", totals.get(outcome).copied().unwrap_or(0)).to_lowercase())
        .collect();
    println!("byte_flip: all {} flips: {}", totals.values().sum::<u64>(), line.join(", "));
    for case in wrong.iter().take(WRONG_SHOWN) {
        println!("byte_flip: WRONG {case}");
    }
    runtime.shutdown_background();
    if !wrong.is_empty() {
        println!("0 passed, 1 failed: {} damaged copies opened wrong (PURSE_BYTE_FLIP_SEED={seed})", wrong.len());
        std::process::exit(1);
    }
    println!("1 passed, 0 failed");
}
