use purse_core::{Action, Amount, Command};
use purse_ledger::{Ledger, LedgerConfig};
use std::time::Instant;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let flows: u64 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(200_000);
    let concurrency: u64 = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(1024);
    let ledger = Ledger::open(LedgerConfig::new(&dir)).await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut i = task;
            while i < flows {
                let account = format!("acct-{}", i % 10_000);
                let id = format!("q-{i}");
                let action = if i % 2 == 0 {
                    Action::Charge {
                        real: Amount::from_minor(10_000),
                        gift: None,
                        pre: Amount::ZERO,
                        trigger_gift: false,
                    }
                } else {
                    Action::Deduct { value: Amount::from_minor(300) }
                };
                if ledger.submit(Command::new(&id, &id, &account, action)).await.is_ok() {
                    ok += 1;
                }
                i += concurrency;
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stats = ledger.stats().await.unwrap();
    println!("{ok} ok in {:?}: {:.0} flows/s; {:?}", elapsed, ok as f64 / elapsed.as_secs_f64(), stats);
    let t = Instant::now();
    ledger.close().await.unwrap();
    let ledger = Ledger::open(LedgerConfig::new(&dir)).await.unwrap();
    println!("reopen {:?}", t.elapsed());
    ledger.close().await.unwrap();
}
