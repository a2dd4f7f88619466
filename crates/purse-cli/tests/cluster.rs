//! `purse cluster init|status` against a real 3-node NATS cluster on 127.0.0.1.

use std::path::Path;
use std::process::Command;

use purse_ledger::jetstream::test_cluster::Cluster;

fn purse(servers: &[String], args: &[&str]) -> (i32, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_purse"))
        .arg("cluster")
        .args(args)
        .env("PURSE_NATS", servers.join(","))
        .output()
        .unwrap();
    let text = if output.status.success() { output.stdout } else { output.stderr };
    (output.status.code().unwrap(), serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
async fn init_and_status() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cluster = Cluster::start(24360, tmp, &tmp.join("nats-server-bin")).await;
    let servers = cluster.servers();
    let (code, made) = purse(&servers, &["init", "--name", "shop", "--partitions", "3"]);
    assert_eq!((code, made["partitions"].as_u64(), made["hash"].as_str()), (0, Some(3), Some("fnv1a64")));
    let (code, again) = purse(&servers, &["init", "--name", "shop", "--partitions", "3"]);
    assert_eq!((code, again["partitions"].as_u64()), (0, Some(3)), "the same init again is fine");
    let (code, refused) = purse(&servers, &["init", "--name", "shop", "--partitions", "4"]);
    assert_eq!((code, refused["error"]["code"].as_str()), (1, Some("INVALID_ARGUMENT")));
    assert!(refused["error"]["message"].as_str().unwrap().contains("never change"), "{refused}");

    let (code, status) = purse(&servers, &["status", "--name", "shop"]);
    assert_eq!(code, 0, "{status}");
    let partitions = status["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    assert_eq!(partitions[2]["stream"], "PURSE_shop_P0002");
    assert!(partitions.iter().all(|partition| partition["owner"].is_null()), "no node yet: {status}");

    let (code, missing) = purse(&servers, &["status", "--name", "nope"]);
    assert_eq!(code, 1);
    assert!(missing["error"]["message"].as_str().unwrap().contains("purse cluster init"), "{missing}");
    let (code, bad) = purse(&servers, &["init", "--name", "a.b", "--partitions", "1"]);
    assert_eq!((code, bad["error"]["code"].as_str()), (1, Some("INVALID_ARGUMENT")), "{bad}");

    // Two nodes; one partition moved from the first to the second with `purse cluster move`.
    let dir = tempfile::tempdir().unwrap();
    let node = |name: &str| {
        let mut config =
            purse_cluster::NodeConfig::new("shop", name, servers.clone(), cluster.monitor(), dir.path().join(name));
        config.lease_ttl = std::time::Duration::from_secs(3);
        config
    };
    let a = purse_cluster::Node::start(node("a")).await.unwrap();
    a.wait_for_partitions(3, std::time::Duration::from_secs(30)).await.unwrap();
    let b = purse_cluster::Node::start(node("b")).await.unwrap();
    // The nodes' own tasks must run while the command waits for the move.
    let (code, moved) =
        tokio::task::block_in_place(|| purse(&servers, &["move", "--name", "shop", "--partition", "1", "--to", "b"]));
    assert_eq!((code, moved["owner"]["node"].as_str()), (0, Some("b")), "{moved}");
    let (_, status) = purse(&servers, &["status", "--name", "shop"]);
    let owners: Vec<&str> =
        status["partitions"].as_array().unwrap().iter().map(|p| p["owner"]["node"].as_str().unwrap_or("-")).collect();
    assert_eq!(owners, ["a", "b", "a"], "{status}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
