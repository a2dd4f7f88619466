//! Transfers between partitions (docs/cluster.md §4) on a real 3-node JetStream cluster: a
//! transfer hold on the source, the TRANSFER_IN on the destination, the settling TRANSFER_OUT
//! or the RELEASE of a refused one; retries answered with the first answer; and a node killed
//! with SIGKILL in the middle of transfers, after which the next owner's recovery leaves every
//! transfer completed or given back, and the value of all accounts (held value included) is
//! what it was. Also two nodes, one partition each, transferring to each other's partitions
//! (the credit asked of the other node), one killed at a moment that differs from run to run.

mod common;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStdout, Command as Process, Stdio};
use std::time::Duration;

use common::{config, start_cluster};
use purse_cluster::{partition::partition_of, ClusterError, Node};
use purse_core::{Action, Amount, Command, ErrorCode, FlowType};

const PARTITIONS: u32 = 2;
const SAGA: (u16, &str) = (24380, "saga");
const KILL: (u16, &str) = (24390, "sagakill");
const MEMBERS: usize = 6;

/// `MEMBERS` accounts in each partition: (partition 0's, partition 1's).
fn members() -> (Vec<String>, Vec<String>) {
    let (mut zero, mut one) = (Vec::new(), Vec::new());
    for n in 0.. {
        let account = format!("member-{n}");
        let side = if partition_of(&account, PARTITIONS) == 0 { &mut zero } else { &mut one };
        if side.len() < MEMBERS {
            side.push(account);
        }
        if zero.len() == MEMBERS && one.len() == MEMBERS {
            return (zero, one);
        }
    }
    unreachable!("the loop returns")
}

fn charge(request: &str, account: &str, real: i64, gift: i64) -> Command {
    let action = Action::Charge {
        real: Amount::from_minor(real),
        gift: Some(Amount::from_minor(gift)),
        pre: Amount::ZERO,
        trigger_gift: false,
    };
    let mut command = Command::new(request, &format!("o-{request}"), account, action);
    if gift > 0 {
        command.gift_expire_time = Some(purse_core::Timestamp(4_000_000_000));
    }
    command
}

fn transfer(request: &str, from: &str, to: &str, minor: i64) -> Command {
    let action = Action::Transfer { to_account_id: to.into(), value: Some(Amount::from_minor(minor)) };
    Command::new(request, &format!("o-{request}"), from, action)
}

/// Σ balances and Σ held over every account, in minor units.
async fn totals(node: &Node, accounts: &[String]) -> (i64, i64) {
    let (mut owned, mut held) = (0, 0);
    for account in accounts {
        if let Ok(view) = node.account(account).await {
            owned += view.balance.total().unwrap().minor();
            held += view.held.total().unwrap().minor();
        }
    }
    (owned, held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn transfers_between_partitions_settle_or_give_back_exactly_once() {
    let _cluster = start_cluster(SAGA, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(config(SAGA, "n1", dir.path())).await.unwrap();
    node.wait_for_partitions(PARTITIONS as usize, Duration::from_secs(30)).await.unwrap();
    let (zero, one) = members();
    node.submit(charge("c1", &zero[0], 6_000, 4_000)).await.unwrap();
    node.submit(charge("c2", &one[0], 100, 0)).await.unwrap();

    let moved = node.transfer(transfer("t1", &zero[0], &one[0], 5_000)).await.unwrap();
    assert_eq!((moved.out.flow_type, moved.transfer_in.flow_type), (FlowType::TransferOut, FlowType::TransferIn));
    assert_eq!(moved.transfer_in.affected, moved.out.affected.checked_neg().unwrap());
    assert_eq!(moved.transfer_in.lots.len(), 1, "the GIFT keeps its expiry");
    let source = node.account(&zero[0]).await.unwrap();
    assert_eq!((source.balance.total().unwrap().minor(), source.held.total().unwrap().minor()), (5_000, 0));
    assert_eq!(node.account(&one[0]).await.unwrap().balance.total().unwrap().minor(), 5_100);
    // A retry is the first answer, flow for flow.
    let again = node.transfer(transfer("t1", &zero[0], &one[0], 5_000)).await.unwrap();
    assert_eq!((again.out.flow_id, again.transfer_in.flow_id), (moved.out.flow_id, moved.transfer_in.flow_id));
    let other = node.transfer(transfer("t1", &zero[0], &one[0], 4_000)).await.unwrap_err();
    assert_eq!(other.code(), ErrorCode::IdempotencyConflict, "{other}");

    // A frozen destination refuses: the hold goes back, and a retry gets the same refusal.
    let mut freeze = Command::new("f1", "of1", &one[1], Action::Freeze);
    freeze.remark = Some("lost card".into());
    node.submit(charge("c3", &one[1], 1, 0)).await.unwrap();
    node.submit(freeze).await.unwrap();
    let refused = node.transfer(transfer("t2", &zero[0], &one[1], 1_000)).await.unwrap_err();
    assert!(matches!(refused, ClusterError::Refused { code: ErrorCode::AccountFrozen, .. }), "{refused}");
    let again = node.transfer(transfer("t2", &zero[0], &one[1], 1_000)).await.unwrap_err();
    assert_eq!(again, refused);
    let source = node.account(&zero[0]).await.unwrap();
    assert_eq!((source.balance.total().unwrap().minor(), source.held.total().unwrap().minor()), (5_000, 0));
    // Too much: refused on the source, nothing held.
    let short = node.transfer(transfer("t3", &zero[0], &one[0], 5_001)).await.unwrap_err();
    assert_eq!(short.code(), ErrorCode::InsufficientBalance);
    // Nobody but the transfer closes its hold.
    let capture = Action::Capture { src_outer_order_id: "o-t1:transfer-hold".into(), value: None };
    let closed = node.submit(Command::new("k1", "ok1", &zero[0], capture)).await.unwrap_err();
    assert_eq!(closed.code(), ErrorCode::InvalidArgument);
    for partition in 0..PARTITIONS {
        node.partition(partition).await.unwrap().verify().await.unwrap();
    }
    assert_eq!(node.recover().await, 0, "nothing left half-done");
    node.stop().await.unwrap();
}

/// The child: charges every account, then runs transfers between partitions in a loop, printing
/// `READY` once charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_node_killed_mid_transfers_leaves_each_one_done_or_given_back"]
async fn transfer_process() {
    let Ok(dir) = std::env::var("PURSE_SAGA_DIR") else { return };
    let node = Node::start(config(KILL, "a", Path::new(&dir))).await.unwrap();
    node.wait_for_partitions(PARTITIONS as usize, Duration::from_secs(30)).await.unwrap();
    let (zero, one) = members();
    for (n, account) in zero.iter().chain(&one).enumerate() {
        node.submit(charge(&format!("c{n}"), account, 10_000, 2_000)).await.unwrap();
    }
    println!("READY");
    for n in 0..TRANSFERS {
        let (from, to) = ends(&zero, &one, n);
        match node.transfer(transfer(&format!("t{n}"), from, to, amount(n))).await {
            Ok(moved) => println!("DONE t{n} {}", moved.out.flow_id),
            Err(error) => println!("ERR t{n} {error}"),
        }
    }
    // Two transfers stopped half-way, as a crash leaves them: one held only, one held and
    // credited but not settled. The node is paused first, so that its own recovery does not
    // finish them; then the process waits to be killed.
    node.pause(true);
    let accounts: Vec<String> = zero.iter().chain(&one).cloned().collect();
    let (from, to) = ends(&zero, &one, TRANSFERS);
    let hold = |n: usize, to: &str| {
        let action = Action::TransferHold { to_account_id: to.into(), value: Some(Amount::from_minor(amount(n))) };
        Command::new(&format!("t{n}"), &format!("o-t{n}:transfer-hold"), from, action)
    };
    let source = node.partition(partition_of(from, PARTITIONS)).await.unwrap();
    source.submit(hold(TRANSFERS, to)).await.unwrap();
    let (from, to) = ends(&zero, &one, TRANSFERS + 1);
    let source = node.partition(partition_of(from, PARTITIONS)).await.unwrap();
    let hold_flow = source.submit(hold(TRANSFERS + 1, to)).await.unwrap();
    let held = source.transfer_hold(&format!("o-t{}:transfer-hold", TRANSFERS + 1)).await.unwrap().unwrap();
    let credit = Action::TransferCredit {
        from_account_id: from.clone(),
        hold_outer_order_id: format!("o-t{}:transfer-hold", TRANSFERS + 1),
        parts: held.parts,
        lots: held.lots,
        brand_id: None,
    };
    let mut credit = Command::new(&format!("t{}", TRANSFERS + 1), &format!("o-t{}", TRANSFERS + 1), to, credit);
    credit.biz_date = Some(hold_flow.order_time);
    node.partition(partition_of(to, PARTITIONS)).await.unwrap().submit(credit).await.unwrap();
    // In transit the value is counted once when the holds are counted: the credited one is
    // the destination's balance and still the source's held value.
    let (mut owned, mut held) = (0, 0);
    for account in &accounts {
        let ledger = node.partition(partition_of(account, PARTITIONS)).await.unwrap();
        let view = ledger.account(account).await.unwrap();
        owned += view.balance.total().unwrap().minor();
        held += view.held.total().unwrap().minor();
    }
    let everything = i64::try_from(accounts.len()).unwrap() * 12_000;
    assert_eq!(held, amount(TRANSFERS) + amount(TRANSFERS + 1));
    assert_eq!(owned - amount(TRANSFERS + 1), everything, "value counted twice or lost in transit");
    println!("HALF");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// Runs this test binary's ignored test `test` as a child process, `variable` naming `dir`;
/// answers it and its stdout's lines.
fn child(test: &str, variable: &str, dir: &Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Process::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", test, "--nocapture", "--test-threads", "1"])
        .env(variable, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Waits (up to `timeout`) until `node`, serving every partition, has no transfer hold open.
async fn recovered(node: &Node, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut left = 0;
        for partition in 0..PARTITIONS {
            let Some(ledger) = node.partition(partition).await else {
                panic!("the node lost partition {partition}: it serves {:?}", node.owned().await)
            };
            left += ledger.open_transfer_holds().await.unwrap().len();
        }
        if left == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{left} transfer holds still open after recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Transfers the child completes before it stops two half-way.
const TRANSFERS: usize = 40;

fn ends<'a>(zero: &'a [String], one: &'a [String], n: usize) -> (&'a String, &'a String) {
    if n.is_multiple_of(2) {
        (&zero[n % MEMBERS], &one[(n / 2) % MEMBERS])
    } else {
        (&one[n % MEMBERS], &zero[(n / 3) % MEMBERS])
    }
}

fn amount(n: usize) -> i64 {
    1 + i64::try_from(n % 50).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn a_node_killed_mid_transfers_leaves_each_one_done_or_given_back() {
    let _cluster = start_cluster(KILL, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let (zero, one) = members();
    let accounts: Vec<String> = zero.iter().chain(&one).cloned().collect();
    let total = i64::try_from(accounts.len()).unwrap() * 12_000;
    let (mut child, mut lines) = child("transfer_process", "PURSE_SAGA_DIR", dir.path());
    let mut done = 0;
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with("DONE") {
            done += 1;
        }
        if line == "HALF" {
            break;
        }
    }
    assert_eq!(done, TRANSFERS, "the child finished fewer transfers");
    // Killed with two transfers half-way.
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);

    let b = Node::start(config(KILL, "b", dir.path())).await.unwrap();
    b.wait_for_partitions(PARTITIONS as usize, Duration::from_secs(30)).await.unwrap();
    // Recovery (run by the node itself as it takes partitions over) leaves nothing open.
    recovered(&b, Duration::from_secs(10)).await;
    let (owned, held) = totals(&b, &accounts).await;
    assert_eq!((owned, held), (total, 0), "the value of all accounts changed");
    // Each transfer appears once: a settled one has one TRANSFER_OUT and one TRANSFER_IN; a retry
    // of every transfer the child started returns what was done.
    for n in 0..=done + 1 {
        let (from, to) = if n % 2 == 0 {
            (&zero[n % MEMBERS], &one[(n / 2) % MEMBERS])
        } else {
            (&one[n % MEMBERS], &zero[(n / 3) % MEMBERS])
        };
        match b.transfer(transfer(&format!("t{n}"), from, to, 1 + (n as i64 % 50))).await {
            Ok(moved) => assert_eq!(moved.transfer_in.affected, moved.out.affected.checked_neg().unwrap()),
            // The two half-way ones were settled by the recovery (no hold was left open).
            Err(ClusterError::Refused { .. }) if n < TRANSFERS => {}
            Err(error) => panic!("t{n}: {error}"),
        }
    }
    let (owned, held) = totals(&b, &accounts).await;
    assert_eq!((owned, held), (total, 0), "retries moved value twice");
    for partition in 0..PARTITIONS {
        b.partition(partition).await.unwrap().verify().await.unwrap();
    }
    b.stop().await.unwrap();
}

const CROSS: (u16, &str) = (24420, "sagacross");

/// The child of the cross-node test: node `a`, one partition at most (partition 0, the first
/// free); charges its accounts, then sends transfers from them to partition 1's (owned by the
/// parent's node) until killed, retrying each on `STORAGE` as a client does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_node_killed_mid_transfers_between_two_nodes_loses_nothing"]
async fn cross_process() {
    let Ok(dir) = std::env::var("PURSE_SAGA_CROSS_DIR") else { return };
    let mut config = config(CROSS, "a", Path::new(&dir));
    config.partitions_max = Some(1);
    let node = Node::start(config).await.unwrap();
    node.wait_for_partitions(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(node.owned().await, [0]);
    let (zero, one) = members();
    for (n, account) in zero.iter().enumerate() {
        node.submit(charge(&format!("a-c{n}"), account, 10_000, 0)).await.unwrap();
    }
    println!("READY");
    // Callers side by side, each sending its own transfers (the n-th of them all is a-t<n>).
    let mut callers = Vec::new();
    for caller in 0..CROSS_CALLERS {
        let (node, zero, one) = (node.clone(), zero.clone(), one.clone());
        callers.push(tokio::spawn(async move {
            for n in (caller..10_000).step_by(CROSS_CALLERS) {
                let (from, to) = (&zero[n % MEMBERS], &one[(n / 2) % MEMBERS]);
                loop {
                    match node.transfer(transfer(&format!("a-t{n}"), from, to, amount(n))).await {
                        Ok(moved) => println!("DONE a-t{n} {}", moved.out.flow_id),
                        Err(error) if error.code() == ErrorCode::Storage => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        Err(error) => println!("ERR a-t{n} {error}"),
                    }
                    break;
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
}

/// Callers on each side of the cross-node test.
const CROSS_CALLERS: usize = 4;

/// Two nodes, one partition each, both sending transfers to the other's partition (each
/// credit asked of the other node); the child node is SIGKILLed at a moment that differs from
/// run to run. The survivor takes its partition over and its recovery finishes every transfer
/// either node left half-done; no value is created or lost, retries return what was done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn a_node_killed_mid_transfers_between_two_nodes_loses_nothing() {
    let _cluster = start_cluster(CROSS, PARTITIONS).await;
    let dir = tempfile::tempdir().unwrap();
    let (zero, one) = members();
    let accounts: Vec<String> = zero.iter().chain(&one).cloned().collect();
    let total = i64::try_from(accounts.len()).unwrap() * 10_000;
    let (mut child, mut lines) = child("cross_process", "PURSE_SAGA_CROSS_DIR", dir.path());
    // libtest prints the test's name first, on the same line.
    let ready =
        tokio::task::block_in_place(|| lines.by_ref().map_while(Result::ok).any(|line| line.ends_with("READY")));
    assert!(ready, "the child did not start");
    // The child holds partition 0; this node takes partition 1, its fair share of two.
    let b = Node::start(config(CROSS, "b", dir.path())).await.unwrap();
    b.wait_for_partitions(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(b.owned().await, [1]);
    for (n, account) in one.iter().enumerate() {
        b.submit(charge(&format!("b-c{n}"), account, 10_000, 0)).await.unwrap();
    }
    // This node sends transfers the other way meanwhile.
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let senders: Vec<_> = (0..CROSS_CALLERS)
        .map(|caller| {
            let (b, zero, one, running) = (b.clone(), zero.clone(), one.clone(), running.clone());
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for n in (caller..).step_by(CROSS_CALLERS) {
                    if !running.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let (from, to) = (&one[n % MEMBERS], &zero[(n / 3) % MEMBERS]);
                    // A refusal (the other partition between owners) is retried at the end.
                    if b.transfer(transfer(&format!("b-t{n}"), from, to, amount(n))).await.is_err() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    sent.push(n);
                }
                sent
            })
        })
        .collect();
    // The kill lands after 5 to 44 of the child's transfers, chosen by the clock.
    let kill_after = 5 + usize::try_from(std::time::UNIX_EPOCH.elapsed().unwrap().subsec_micros() % 40).unwrap();
    println!("killing the child after {kill_after} of its transfers");
    let mut done = std::collections::HashMap::new();
    tokio::task::block_in_place(|| {
        for line in lines.by_ref().map_while(Result::ok) {
            let words: Vec<&str> = line.split(' ').collect();
            if let ["DONE", id, flow_id] = words[..] {
                done.insert(id.to_owned(), flow_id.parse::<u64>().unwrap());
            }
            if done.len() == kill_after {
                break;
            }
        }
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);

    // The survivor takes partition 0 over (one lease TTL), then its recovery finishes what
    // both nodes left half-done.
    b.wait_for_partitions(2, Duration::from_secs(30)).await.unwrap();
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut sent = Vec::new();
    for sender in senders {
        sent.extend(sender.await.unwrap());
    }
    recovered(&b, Duration::from_secs(20)).await;
    let (owned, held) = totals(&b, &accounts).await;
    assert_eq!((owned, held), (total, 0), "the value of all accounts changed");
    // Every transfer the child finished is answered again with its first TRANSFER_OUT; every
    // one either node sent ends settled (none is refused: no account is frozen or short).
    // Each caller had at most one transfer in flight at the kill, beyond those done.
    let highest = done.keys().filter_map(|id| id.strip_prefix("a-t")?.parse::<usize>().ok()).max().unwrap_or(0);
    for n in 0..=highest + 2 * CROSS_CALLERS {
        let (from, to) = (&zero[n % MEMBERS], &one[(n / 2) % MEMBERS]);
        let moved = b.transfer(transfer(&format!("a-t{n}"), from, to, amount(n))).await.unwrap();
        if let Some(flow_id) = done.get(&format!("a-t{n}")) {
            assert_eq!(moved.out.flow_id, *flow_id, "a-t{n} was answered with another flow");
        }
    }
    for &n in &sent {
        let (from, to) = (&one[n % MEMBERS], &zero[(n / 3) % MEMBERS]);
        b.transfer(transfer(&format!("b-t{n}"), from, to, amount(n))).await.unwrap();
    }
    let (owned, held) = totals(&b, &accounts).await;
    assert_eq!((owned, held), (total, 0), "retries moved value twice");
    for partition in 0..PARTITIONS {
        b.partition(partition).await.unwrap().verify().await.unwrap();
    }
    println!("{} of the child's transfers done before the kill, {} sent by the parent", done.len(), sent.len());
    b.stop().await.unwrap();
}
