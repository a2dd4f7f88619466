//! Many callers at once: group commit must keep every rule and idempotency exact.

mod common;

use common::{charge, deduct, money, open};
use purse_core::{Amount, ErrorCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_tasks_never_overdraw_one_account() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    ledger.submit(charge("seed", "seed", "shared", "100.00")).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..64 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut accepted = Amount::ZERO;
            let mut refused = 0u32;
            for round in 0..10 {
                let id = format!("t{task}-{round}");
                match ledger.submit(deduct(&id, &id, "shared", "0.37")).await {
                    Ok(flow) => {
                        let after = flow.after().expect("in range");
                        assert!(after.negative_bucket().is_none(), "balance went negative: {flow:?}");
                        accepted = accepted.checked_add(money("0.37")).unwrap();
                    }
                    Err(error) => {
                        assert_eq!(error.code(), ErrorCode::InsufficientBalance, "{error}");
                        refused += 1;
                    }
                }
            }
            (accepted, refused)
        }));
    }
    let mut spent = Amount::ZERO;
    let mut refused = 0;
    for task in tasks {
        let (accepted, task_refused) = task.await.unwrap();
        spent = spent.checked_add(accepted).unwrap();
        refused += task_refused;
    }
    // 640 deductions of 0.37 want 236.80 of the 100.00: exactly floor(100 / 0.37) = 270 fit.
    assert_eq!(spent, money("99.90"));
    assert_eq!(refused, 640 - 270);
    let account = ledger.account("shared").await.unwrap();
    assert_eq!(account.balance.total(), Some(money("0.10")));
    ledger.verify().await.unwrap();
    ledger.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_request_from_sixteen_tasks_is_one_flow() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(dir.path()).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move { ledger.submit(charge("same", "order", "acct", "5.00")).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().expect("every copy succeeds"));
    }
    assert!(answers.iter().all(|answer| *answer == answers[0]), "16 identical answers");
    let report = ledger.verify().await.unwrap();
    assert_eq!(report.flows, 1);
    assert_eq!(ledger.account("acct").await.unwrap().balance.total(), Some(money("5.00")));
    let stats = ledger.stats().await.unwrap();
    assert!(stats.requests >= 16);
    ledger.close().await.unwrap();
}
