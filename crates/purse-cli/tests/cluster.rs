//! `purse cluster init|status|move` and `purse serve --cluster` against a real 3-node NATS
//! cluster on 127.0.0.1.

#[path = "support/http.rs"]
mod http;
#[path = "support/purse.rs"]
mod purse;
#[path = "support/serve.rs"]
mod serve;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use http::Client;
use serde_json::{json, Value};

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
    assert!(partitions.iter().all(|partition| partition["replica_lag"] == serde_json::json!([])), "no stream yet");
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
    // Each stream's followers, with their lag behind the leader (R3: two followers).
    let lag = status["partitions"][0]["replica_lag"].as_array().unwrap();
    assert_eq!(lag.len(), 2, "{status}");
    assert!(lag.iter().all(|replica| replica["lag"].is_u64() && replica["current"].is_boolean()), "{status}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// One HTTP request on a new connection: (status, JSON body).
fn ask(address: &str, method: &str, path: &str, key: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, text) = Client::connect(address).unwrap().send_with(method, path, key, headers, &body).unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text:?}")))
}

/// Waits until the node at `address` serves exactly `partitions`.
fn wait_serving(address: &str, key: &str, partitions: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = ask(address, "GET", "/v1/cluster", key, &[], &Value::Null);
        assert_eq!(status, 200, "{answer}");
        if answer["serving"] == json!(partitions) {
            return;
        }
        assert!(Instant::now() < deadline, "{address} serves {answer}, not {partitions:?}, after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `purse serve --cluster` on two nodes: every request is answered by whichever node gets it,
/// the owner's answer forwarded; retries are answered once; a transfer between partitions on
/// two nodes settles or is given back; a killed node's partitions are taken over and its
/// answers stand.
#[test]
#[ignore = "starts a NATS cluster (needs python3 and PyPI): .ci/run runs it"]
fn serve_cluster_forwards_to_the_owner() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let cluster = runtime.block_on(Cluster::start(24410, tmp, &tmp.join("nats-server-bin")));
    let servers = cluster.servers();
    let (code, made) = purse(&servers, &["init", "--name", "web", "--partitions", "2"]);
    assert_eq!(code, 0, "{made}");

    // The same keys on both nodes: a forwarded request keeps its credentials.
    let (a, b) = (purse::Purse::new(), purse::Purse::new());
    let key = a.ok("keys add --scope admin --name ops")["key"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(b.data()).unwrap();
    std::fs::copy(a.data().join("keys.json"), b.data().join("keys.json")).unwrap();
    let (nats, monitor) = (servers.join(","), cluster.monitor().join(","));
    let flags = |node: &'static str| {
        let flags = ["--cluster", &nats, "--cluster-name", "web", "--node", node, "--nats-monitor", &monitor];
        flags.iter().map(|flag| flag.to_string()).chain(["--lease-ttl".into(), "3".into()]).collect::<Vec<_>>()
    };
    let start = |purse: &purse::Purse, node: &'static str| {
        let flags = flags(node);
        serve::Server::start(purse, &flags.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let node_a = start(&a, "a");
    wait_serving(&node_a.address, &key, &[0, 1]);
    let node_b = start(&b, "b");
    let (code, moved) = purse(&servers, &["move", "--name", "web", "--partition", "1", "--to", "b"]);
    assert_eq!((code, moved["owner"]["address"].as_str()), (0, Some(node_b.address.as_str())), "{moved}");
    wait_serving(&node_a.address, &key, &[0]);
    wait_serving(&node_b.address, &key, &[1]);

    let partitions = 2;
    let named = |partition| {
        (0..)
            .map(|n| format!("member-{n}"))
            .find(|id| purse_cluster::partition::partition_of(id, partitions) == partition)
    };
    let (p0, p1) = (named(0).unwrap(), named(1).unwrap());
    let (at_a, at_b) = (node_a.address.clone(), node_b.address.clone());

    // A charge of a partition-1 account sent to node a is answered by node b, its owner; the
    // retry sent to node b itself gets the first answer.
    let charge = |request: &str, account: &str, real: &str| json!({"request_id": request, "outer_order_id": request, "account_id": account, "real_value": real, "gift_value": "5.00"});
    let (status, first) = ask(&at_a, "POST", "/v1/charge", &key, &[], &charge("c1", &p1, "100.00"));
    assert_eq!((status, first["account_id"].as_str()), (200, Some(p1.as_str())), "{first}");
    let (status, again) = ask(&at_b, "POST", "/v1/charge", &key, &[], &charge("c1", &p1, "100.00"));
    assert_eq!((status, &again), (200, &first), "a retry anywhere gets the first answer");
    let (status, second) = ask(&at_b, "POST", "/v1/charge", &key, &[], &charge("c2", &p0, "40.00"));
    assert_eq!((status, second["account_id"].as_str()), (200, Some(p0.as_str())), "{second}");
    let (status, account) = ask(&at_a, "GET", &format!("/v1/account?account_id={p1}"), &key, &[], &Value::Null);
    assert_eq!((status, account["total_value"].as_str()), (200, Some("105.00")), "{account}");
    // A refusal comes back as the owner answered it.
    let (status, refused) = ask(
        &at_a,
        "POST",
        "/v1/deduct",
        &key,
        &[],
        &json!({"request_id": "d1", "outer_order_id": "d1", "account_id": p1, "value": "999.00"}),
    );
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("INSUFFICIENT_BALANCE")), "{refused}");

    // A route that names no account needs its partition, by header or by query parameter.
    let (status, refused) = ask(&at_a, "GET", "/v1/accounts", &key, &[], &Value::Null);
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("INVALID_ARGUMENT")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("X-Purse-Partition"), "{refused}");
    let (status, listed) = ask(&at_a, "GET", "/v1/accounts?partition=1&page_size=10", &key, &[], &Value::Null);
    assert_eq!(status, 200, "{listed}");
    let ids: Vec<&str> =
        listed["accounts"].as_array().unwrap().iter().map(|row| row["account_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [p1.as_str()], "partition 1's accounts, from node b through node a");
    let (status, zero) = ask(&at_b, "GET", "/v1/liability", &key, &[("X-Purse-Partition", "0")], &Value::Null);
    assert_eq!((status, zero["total"]["total_value"].as_str()), (200, Some("45.00")), "{zero}");
    // The liability without a partition is the whole cluster's: every partition's, added up.
    let (status, all) = ask(&at_b, "GET", "/v1/liability", &key, &[], &Value::Null);
    let totals = (all["accounts"].as_u64(), all["total"]["total_value"].as_str(), all["total"]["gift_value"].as_str());
    assert_eq!((status, totals), (200, (Some(2), Some("150.00"), Some("10.00"))), "{all}");
    assert_eq!(all["by_brand"][0]["total_value"], "150.00", "{all}");
    let (status, refused) = ask(&at_b, "GET", "/v1/accounts?partition=7", &key, &[], &Value::Null);
    assert_eq!(status, 400, "{refused}");
    // A forwarded request is answered by the node it reaches or refused there, never sent on.
    let (status, refused) =
        ask(&at_a, "GET", &format!("/v1/account?account_id={p1}"), &key, &[("X-Purse-Forwarded", "x")], &Value::Null);
    assert_eq!((status, refused["error"]["code"].as_str()), (503, Some("STORAGE")), "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains(&format!("node b at {at_b}")), "{refused}");
    // Credentials are checked by the owner too.
    let (status, _) = ask(&at_a, "GET", &format!("/v1/account?account_id={p1}"), "wrong", &[], &Value::Null);
    assert_eq!(status, 401);

    // A transfer between partitions on two nodes: the source's owner (b) holds and settles, the
    // destination's owner (a) credits when b asks it; the retry through the other node gets
    // the first answer.
    let transfer =
        json!({"request_id": "t1", "outer_order_id": "t1", "account_id": p1, "to_account_id": p0, "value": "30.00"});
    let (status, done) = ask(&at_a, "POST", "/v1/transfer", &key, &[], &transfer);
    let accounts = (done["out"]["account_id"].as_str(), done["in"]["account_id"].as_str());
    assert_eq!((status, accounts), (200, (Some(p1.as_str()), Some(p0.as_str()))), "{done}");
    let (status, again) = ask(&at_b, "POST", "/v1/transfer", &key, &[], &transfer);
    assert_eq!((status, &again), (200, &done), "the transfer's retry");
    // Refused by the destination (frozen): the hold is given back, and the retry is refused alike.
    let freeze = json!({"request_id": "f1", "outer_order_id": "f1", "account_id": p0, "remark": "card lost"});
    assert_eq!(ask(&at_b, "POST", "/v1/freeze", &key, &[], &freeze).0, 200);
    let refused_transfer =
        json!({"request_id": "t2", "outer_order_id": "t2", "account_id": p1, "to_account_id": p0, "value": "1.00"});
    let (status, refused) = ask(&at_b, "POST", "/v1/transfer", &key, &[], &refused_transfer);
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("ACCOUNT_FROZEN")), "{refused}");
    let (status, again) = ask(&at_a, "POST", "/v1/transfer", &key, &[], &refused_transfer);
    assert_eq!((status, &again), (422, &refused), "the refused transfer's retry");
    let (status, account) = ask(&at_a, "GET", &format!("/v1/account?account_id={p1}"), &key, &[], &Value::Null);
    let balances = (account["total_value"].as_str(), account["held_total_value"].as_str());
    assert_eq!((status, balances), (200, (Some("75.00"), Some("0.00"))), "{account}");
    let unfreeze = json!({"request_id": "f2", "outer_order_id": "f2", "account_id": p0, "remark": "card found"});
    assert_eq!(ask(&at_a, "POST", "/v1/unfreeze", &key, &[], &unfreeze).0, 200);

    // Node a dies: node b takes partition 0 over, and the retries get the first answers.
    drop(node_a);
    wait_serving(&at_b, &key, &[0, 1]);
    let (status, again) = ask(&at_b, "POST", "/v1/transfer", &key, &[], &transfer);
    assert_eq!((status, &again), (200, &done), "the transfer's retry after the take-over");
    let (status, again) = ask(&at_b, "POST", "/v1/charge", &key, &[], &charge("c1", &p1, "100.00"));
    assert_eq!((status, &again), (200, &first), "the charge's retry after the take-over");
    let (status, account) = ask(&at_b, "GET", &format!("/v1/account?account_id={p0}"), &key, &[], &Value::Null);
    assert_eq!((status, account["total_value"].as_str()), (200, Some("75.00")), "{account}");
    for partition in ["0", "1"] {
        let (status, report) =
            ask(&at_b, "POST", "/v1/verify", &key, &[("X-Purse-Partition", partition)], &Value::Null);
        assert_eq!((status, report["ok"].as_bool()), (200, Some(true)), "partition {partition}: {report}");
    }

    let (status, _, rest) = node_b.terminate();
    assert!(status.success() && rest.contains("\"stopped\": true"), "{status:?} {rest}");
    drop(cluster);
}
