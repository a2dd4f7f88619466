//! The CI seed set: a fixed range of seeds that must pass, whose faults together cover every
//! fault kind and whose workloads write every flow type and meet the refusals of holds, status
//! and transfers; and determinism: one seed, run twice, tells the same story byte for byte.

use purse_sim::{Coverage, Options, Tally};

/// The seeds CI runs, at a step count that keeps the debug build under a minute.
const SEEDS: std::ops::Range<u64> = 0..200;
const STEPS: u64 = 100;

#[test]
fn the_ci_seeds_pass_and_inject_every_fault() {
    let options = Options { steps: STEPS, breakage: None };
    let mut coverage = Coverage::default();
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for seed in SEEDS {
        match purse_sim::run(seed, &options) {
            Ok(run) => {
                coverage.merge(&run.coverage);
                tally.merge(&run.tally);
            }
            Err(failure) => failures.push(failure.to_string()),
        }
    }
    println!("{}", coverage.line());
    println!("{}", tally.line());
    assert!(failures.is_empty(), "{} seeds failed:\n{}", failures.len(), failures.join("\n"));
    assert!(coverage.missing().is_empty(), "never injected: {:?}", coverage.missing());
    assert!(tally.never_written().is_empty(), "never written: {:?}", tally.never_written());
    for code in ["HOLD_EXPIRED", "ACCOUNT_FROZEN", "ACCOUNT_CLOSED", "ALREADY_REVERSED", "IDEMPOTENCY_CONFLICT"] {
        assert!(tally.refused.get(code).copied().unwrap_or(0) > 0, "never refused with {code}: {}", tally.line());
    }
    let expiry = [tally.expiring_credits, tally.sweep_releases, tally.expires_skipped];
    assert!(expiry.iter().all(|count| *count > 0), "spec §11 paths not reached: {}", tally.expiry_line());
}

#[test]
fn a_seed_tells_the_same_story_twice() {
    let options = Options { steps: STEPS, breakage: None };
    for seed in [3, 17] {
        let first = purse_sim::run(seed, &options).expect("passes");
        let second = purse_sim::run(seed, &options).expect("passes");
        assert_eq!(first.events, second.events, "seed {seed}");
        assert_eq!(first.summary(), second.summary(), "seed {seed}");
        assert_eq!(first.coverage, second.coverage, "seed {seed}");
        assert_eq!(first.tally, second.tally, "seed {seed}");
    }
    let other = purse_sim::run(4, &options).expect("passes");
    assert_ne!(other.hash(), purse_sim::run(3, &options).expect("passes").hash(), "different seeds, different stories");
}
