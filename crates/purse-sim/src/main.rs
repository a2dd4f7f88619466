//! `purse-sim`: runs the deterministic simulator.
//!
//! ```text
//! purse-sim --seed 42            one seed; its whole story on failure
//! purse-sim --seeds 0..10000     a range; one summary line, a coverage line per fault kind and
//!                                one of the flows written per type and the refusals per code
//! purse-sim --steps 500          steps per seed (default 200)
//! ```
//! Exits non-zero if any seed fails. The same seed always prints the same bytes; the time a
//! range took goes to stderr, so that stdout stays reproducible.

use std::ops::Range;
use std::process::ExitCode;
use std::time::Instant;

use purse_sim::{Coverage, Fault, Options, Tally};

const USAGE: &str = "usage: purse-sim (--seed S | --seeds A..B) [--steps N]";

#[derive(Debug)]
struct Arguments {
    seeds: Range<u64>,
    single: bool,
    steps: u64,
}

fn parse(arguments: &[String]) -> Result<Arguments, String> {
    let mut seeds = None;
    let mut single = false;
    let mut steps = Options::default().steps;
    let mut words = arguments.iter();
    while let Some(word) = words.next() {
        let mut value = || words.next().ok_or_else(|| format!("{word} needs a value"));
        match word.as_str() {
            "--seed" => {
                let seed = number(value()?)?;
                seeds = Some(seed..seed.saturating_add(1));
                single = true;
            }
            "--seeds" => {
                let text = value()?;
                let (low, high) = text.split_once("..").ok_or_else(|| format!("--seeds {text}: expected A..B"))?;
                seeds = Some(number(low)?..number(high)?);
                single = false;
            }
            "--steps" => steps = number(value()?)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let seeds = seeds.ok_or("give --seed or --seeds")?;
    Ok(Arguments { seeds, single, steps })
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("{text:?} is not a whole number"))
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let arguments = match parse(&arguments) {
        Ok(arguments) => arguments,
        Err(why) => {
            eprintln!("{why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = Options { steps: arguments.steps, breakage: None };
    if arguments.single {
        return one(arguments.seeds.start, &options);
    }
    range(arguments.seeds, &options)
}

fn one(seed: u64, options: &Options) -> ExitCode {
    match purse_sim::run(seed, options) {
        Ok(run) => {
            println!("{}", run.summary());
            println!("{}", run.coverage.line());
            println!("{}", run.tally.line());
            println!("{}", run.tally.expiry_line());
            ExitCode::SUCCESS
        }
        Err(failure) => {
            for event in &failure.events {
                println!("{event}");
            }
            println!("{failure}");
            println!("{}", failure.coverage.line());
            ExitCode::FAILURE
        }
    }
}

fn range(seeds: Range<u64>, options: &Options) -> ExitCode {
    let started = Instant::now();
    let mut coverage = Coverage::default();
    let mut tally = Tally::default();
    let (mut passed, mut failed, mut acknowledged) = (0u64, 0u64, 0u64);
    for seed in seeds.clone() {
        match purse_sim::run(seed, options) {
            Ok(run) => {
                passed += 1;
                acknowledged += run.acknowledged;
                coverage.merge(&run.coverage);
                tally.merge(&run.tally);
            }
            Err(failure) => {
                failed += 1;
                coverage.merge(&failure.coverage);
                println!("FAIL {failure}");
                println!("  replay: cargo run -p purse-sim -- --seed {} --steps {}", failure.seed, options.steps);
            }
        }
    }
    println!(
        "seeds {}..{} at {} steps: {passed} passed, {failed} failed, {acknowledged} entries acknowledged",
        seeds.start, seeds.end, options.steps
    );
    println!("{}", coverage.line());
    println!("{}", tally.line());
    println!("{}", tally.expiry_line());
    let never: Vec<&str> = tally.never_written().into_iter().map(purse_core::FlowType::as_str).collect();
    if !never.is_empty() {
        println!("never written: {}", never.join(" "));
    }
    let missing: Vec<&str> = coverage.missing().into_iter().map(Fault::name).collect();
    if !missing.is_empty() {
        println!("never injected: {}", missing.join(" "));
    }
    eprintln!("took {} ms", started.elapsed().as_millis());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
