//! Nodes of a cluster on a real 3-node NATS JetStream cluster on 127.0.0.1 (`.ci/nats-cluster`):
//! partitions shared between nodes by leases, commands routed by account, a stalled owner
//! replaced after its lease runs out and fenced by the stream, nothing acknowledged lost.

mod common;

use std::time::Duration;

use common::{config, start_cluster};
use purse_cluster::{meta, partition::partition_of, ClusterError, Node};
use purse_core::{Action, Amount, Command, ErrorCode};

fn charge(request: &str, account: &str, minor: i64) -> Command {
    let action = Action::Charge { real: Amount::from_minor(minor), gift: None, pre: Amount::ZERO, trigger_gift: false };
    Command::new(request, &format!("o-{request}"), account, action)
}

const STALL: (u16, &str) = (24330, "stall");
const SHARE: (u16, &str) = (24340, "share");

/// Accounts that fall in each of `partitions` partitions, `per` of each.
fn accounts(partitions: u32, per: usize) -> Vec<String> {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); partitions as usize];
    for n in 0.. {
        let account = format!("member-{n}");
        let slot = &mut found[partition_of(&account, partitions) as usize];
        if slot.len() < per {
            slot.push(account);
        }
        if found.iter().all(|slot| slot.len() == per) {
            break;
        }
    }
    found.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn a_stalled_owner_is_replaced_after_its_lease_and_fenced() {
    let cluster = start_cluster(STALL, 4).await;
    let dir = tempfile::tempdir().unwrap();
    // The cluster's meta is fixed: the same again is fine, another partition count is refused.
    let client = async_nats::connect(cluster.servers()[0].as_str()).await.unwrap();
    let context = async_nats::jetstream::new(client);
    assert_eq!(meta::init(&context, "stall", 4, 3).await.unwrap().partitions, 4);
    let refused = meta::init(&context, "stall", 8, 3).await.unwrap_err();
    assert!(refused.to_string().contains("never change"), "{refused}");

    let a = Node::start(config(STALL, "a", dir.path())).await.unwrap();
    a.wait_for_partitions(4, Duration::from_secs(30)).await.unwrap();
    let members = accounts(4, 2);
    let mut acknowledged = Vec::new();
    for (n, account) in members.iter().enumerate() {
        let flow = a.submit(charge(&format!("a{n}"), account, 1_000)).await.unwrap();
        acknowledged.push((format!("a{n}"), account.clone(), flow.flow_id));
    }
    // A second node finds everything owned and serves nothing yet; it names the owner.
    let b = Node::start(config(STALL, "b", dir.path())).await.unwrap();
    assert!(b.owned().await.is_empty());
    match b.submit(charge("b-early", &members[0], 1)).await.unwrap_err() {
        ClusterError::NotOwner { owner: Some(owner), .. } => assert_eq!(owner.node, "a"),
        other => panic!("{other}"),
    }

    // a stalls: it renews nothing. Its leases run out and b takes every partition over.
    let kept = a.partition(partition_of(&members[0], 4)).await.unwrap();
    a.pause(true);
    b.wait_for_partitions(4, Duration::from_secs(30)).await.unwrap();
    // a refuses commands itself once its lease is nearly out, and its ledger is fenced.
    let refused = a.submit(charge("a-late", &members[0], 1)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Storage, "{refused}");
    let fenced = kept.submit(charge("a-late", &members[0], 1)).await.unwrap_err();
    assert!(fenced.to_string().contains("fenced"), "{fenced}");
    a.pause(false);

    // Nothing a acknowledged is lost; each retry on b is the first answer.
    for (request, account, flow_id) in &acknowledged {
        assert_eq!(b.submit(charge(request, account, 1_000)).await.unwrap().flow_id, *flow_id, "{request}");
    }
    let view = b.account(&members[0]).await.unwrap();
    assert_eq!(view.balance.total(), Some(Amount::from_minor(1_000)), "a-late never happened");
    assert_ne!(partition_of(&members[0], 4), partition_of(&members[2], 4));
    for partition in 0..4 {
        b.partition(partition).await.unwrap().verify().await.unwrap();
    }
    // A transfer across two partitions (tests/saga.rs has the rest), and one within a partition.
    let across = Action::Transfer { to_account_id: members[2].clone(), value: Some(Amount::from_minor(1)) };
    let moved = b.transfer(Command::new("t1", "ot1", &members[0], across)).await.unwrap();
    assert_eq!(moved.transfer_in.account_id, members[2]);
    let within = Action::Transfer { to_account_id: members[1].clone(), value: Some(Amount::from_minor(100)) };
    let moved = b.transfer(Command::new("t2", "ot2", &members[0], within)).await.unwrap();
    assert_eq!(moved.transfer_in.account_id, members[1]);

    let status = purse_cluster::status(&cluster.servers(), "stall").await.unwrap();
    assert_eq!(status.len(), 4);
    assert!(status.iter().all(|partition| partition.owner.as_ref().is_some_and(|held| held.holder.node == "b")));
    assert!(status.iter().all(|partition| partition.stream_state.as_ref().is_some_and(|s| s.last_sequence > 0)));
    drop(a.stop().await);
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn two_nodes_share_the_partitions() {
    let _cluster = start_cluster(SHARE, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let mut first = config(SHARE, "a", dir.path());
    first.partitions_max = Some(2);
    let a = Node::start(first).await.unwrap();
    let b = Node::start(config(SHARE, "b", dir.path())).await.unwrap();
    a.wait_for_partitions(2, Duration::from_secs(30)).await.unwrap();
    b.wait_for_partitions(2, Duration::from_secs(30)).await.unwrap();
    let (on_a, on_b) = (a.owned().await, b.owned().await);
    assert!(on_a.iter().all(|partition| !on_b.contains(partition)), "{on_a:?} {on_b:?}");
    // Each account is served by its partition's owner only.
    for (n, account) in accounts(4, 1).iter().enumerate() {
        let partition = partition_of(account, 4);
        let (owner, other) = if on_a.contains(&partition) { (&a, &b) } else { (&b, &a) };
        owner.submit(charge(&format!("s{n}"), account, 500)).await.unwrap();
        assert!(matches!(
            other.submit(charge(&format!("s{n}"), account, 500)).await,
            Err(ClusterError::NotOwner { .. })
        ));
    }
    // One of a's partitions moved to b: a lets go, b takes it over and has what a wrote.
    let moving = on_a[0];
    let servers: Vec<String> = (0..3).map(|n| format!("nats://127.0.0.1:{}", SHARE.0 + n)).collect();
    let held = purse_cluster::move_partition(&servers, "share", moving, "b", Duration::from_secs(30)).await.unwrap();
    assert_eq!(held.holder.node, "b");
    b.wait_for_partitions(3, Duration::from_secs(30)).await.unwrap();
    assert!(!a.owned().await.contains(&moving));
    for (n, account) in accounts(4, 1).iter().enumerate() {
        if partition_of(account, 4) == moving {
            let replay = b.submit(charge(&format!("s{n}"), account, 500)).await.unwrap();
            assert_eq!(b.account(account).await.unwrap().balance.total(), Some(Amount::from_minor(500)), "{replay:?}");
        }
    }
    let refused = purse_cluster::move_partition(&servers, "share", 9, "b", Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidArgument);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
