//! `purse serve` as a user runs it: the built binary on a real port, `purse keys`, read commands
//! through the admin socket while the server holds the ledger, and SIGTERM under load.
//!
//! The HTTP client here is a few lines over `std::net` (HTTP/1.1, keep-alive, Content-Length
//! bodies): what a till's own code does, with nothing of purse's in between.

#[path = "support/http.rs"]
mod http;
#[path = "support/purse.rs"]
mod purse;
#[path = "support/serve.rs"]
mod serve;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Client;
use purse::Purse;
use serde_json::{json, Value};
use serve::Server;

fn key(purse: &Purse, scope: &str) -> String {
    let made = purse.ok(&format!("keys add --scope {scope} --name test-{scope}"));
    made["key"].as_str().expect("key").to_owned()
}

#[test]
fn serve_answers_and_read_commands_go_through_it() {
    let purse = Purse::new();
    let write = key(&purse, "write");
    let listed = purse.ok_text("keys list");
    assert!(!listed.contains(&write) && listed.contains("\"scope\": \"write\""), "{listed}");
    let server = Server::start(&purse, &[]);
    let mut client = Client::connect(&server.address).expect("connect");
    let charge = json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice", "real_value": "88.00"});
    let (status, body) = client.send("POST", "/v1/charge", &write, &charge.to_string()).expect("charge");
    assert_eq!(status, 200, "{body}");
    let (status, body) = client.send("GET", "/v1/account?account_id=alice", &write, "").expect("account");
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["total_value"].clone()), (200, json!("88.00")));
    // The server holds the ledger: reads go through its admin socket, and print what a local
    // read prints.
    let through_server = purse.ok_text("account --account-id alice");
    assert!(through_server.contains("\"total_value\": \"88.00\""), "{through_server}");
    let flows = purse.ok("flows --account-id alice --flow-type CHARGE");
    assert_eq!(flows["total_count"], 1);
    assert_eq!(purse.ok("verify")["ok"], true);
    assert_eq!(purse.ok_text("export").lines().count(), 1);
    purse.fails("account --account-id nobody", "ACCOUNT_NOT_FOUND", 1);
    // A write is not sent to the server: the ledger is in use, and the message says so.
    let message =
        purse.fails("charge --request-id r2 --outer-order-id o2 --account-id a --real-value 1", "INVALID_ARGUMENT", 1);
    assert!(message.contains("in use"), "{message}");
    let (status, _, rest) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(rest.contains("\"stopped\": true"), "{rest}");
    assert_eq!(purse.ok_text("account --account-id alice"), through_server, "a local read prints the same");
}

/// SIGTERM while 32 clients write: every request that got a 2xx is in the ledger after the
/// restart, with the flow id it was answered with; the server exits within its grace period.
#[test]
fn sigterm_under_load_keeps_every_acknowledged_write() {
    let purse = Purse::new();
    let write = key(&purse, "write");
    let grace_seconds = 10;
    let server = Server::start(&purse, &["--grace-period", &grace_seconds.to_string()]);
    let seed = json!({"request_id": "seed", "outer_order_id": "seed", "account_id": "acct-0", "real_value": "1000000"});
    let (status, body) =
        Client::connect(&server.address).unwrap().send("POST", "/v1/charge", &write, &seed.to_string()).unwrap();
    assert_eq!(status, 200, "{body}");
    let acknowledged: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..32)
        .map(|client| {
            let (address, write, acknowledged, stop) =
                (server.address.clone(), write.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut connection = Client::connect(&address).ok();
                for index in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(client_connection) = connection.as_mut() else { break };
                    let request = format!("c{client}-{index}");
                    let body = if index % 3 == 2 {
                        json!({"request_id": request, "outer_order_id": request, "account_id": "acct-0", "value": "0.01"})
                    } else {
                        json!({"request_id": request, "outer_order_id": request, "account_id": format!("acct-{client}"), "real_value": "1.00"})
                    };
                    let route = if index % 3 == 2 { "/v1/deduct" } else { "/v1/charge" };
                    match client_connection.send("POST", route, &write, &body.to_string()) {
                        Ok((status, answer)) if (200..300).contains(&status) => {
                            let flow: Value = serde_json::from_str(&answer).expect("a 2xx is a flow detail");
                            let flow_id = flow["flow_id"].as_str().expect("flow_id").to_owned();
                            acknowledged.lock().unwrap().insert(request, flow_id);
                        }
                        // Refused while shutting down, or the connection closed: reconnect
                        // (refused once the listener is gone).
                        Ok(_) | Err(_) => connection = Client::connect(&address).ok(),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let (status, took, _) = server.terminate();
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("client thread");
    }
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(grace_seconds + 5), "exit took {took:?}");
    let acknowledged = acknowledged.lock().unwrap();
    assert!(acknowledged.len() > 100, "only {} writes were acknowledged before SIGTERM", acknowledged.len());
    // Restart: the ledger opens, verifies, and holds every acknowledged write with its flow id.
    assert_eq!(purse.ok("verify")["ok"], true);
    let exported: HashMap<String, String> = purse
        .ok_text("export")
        .lines()
        .map(|line| {
            let flow: Value = serde_json::from_str(line).unwrap();
            (flow["request_id"].as_str().unwrap().to_owned(), flow["flow_id"].as_str().unwrap().to_owned())
        })
        .collect();
    for (request, flow_id) in acknowledged.iter() {
        assert_eq!(
            exported.get(request),
            Some(flow_id),
            "acknowledged {request} is not in the ledger as flow {flow_id}"
        );
    }
}

#[test]
fn keys_add_list_revoke() {
    let purse = Purse::new();
    let made = purse.ok("keys add --scope admin --name ops");
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(made["key"].as_str().unwrap().starts_with(&format!("pk_{id}_")), "{made}");
    let app = purse.ok("keys add --dialect top --app-key 12345678 --secret top-secret --scope write");
    assert_eq!((app["dialect"].as_str(), app["secret"].as_str()), (Some("top"), Some("top-secret")));
    let made_secret = purse.ok("keys add --dialect zenlayer --app-key AK1");
    assert_eq!(made_secret["secret"].as_str().map(str::len), Some(64), "a random secret is made: {made_secret}");
    let listed = purse.ok_text("keys list");
    for secret in [made["key"].as_str().unwrap(), "top-secret", made_secret["secret"].as_str().unwrap()] {
        assert!(!listed.contains(secret), "keys list shows a secret: {listed}");
    }
    assert!(listed.contains("12345678") && listed.contains(&id), "{listed}");
    purse.fails("keys add --dialect top --app-key 12345678", "INVALID_ARGUMENT", 1);
    purse.fails("keys add --scope root", "INVALID_ARGUMENT", 1);
    purse.fails("keys add --dialect nats --app-key x", "INVALID_ARGUMENT", 1);
    purse.ok("keys add --dialect kybio --app-key 12345678 --secret kybio-secret");
    assert_eq!(purse.ok("keys revoke 12345678 --dialect kybio")["revoked"], 1, "only KYBIO's");
    let apps = purse.ok("keys list")["apps"].as_array().unwrap().clone();
    let live = |dialect: &str| {
        apps.iter()
            .filter(|app| app["dialect"] == dialect && app["app_key"] == "12345678")
            .map(|app| app["revoked"] == false)
            .collect::<Vec<_>>()
    };
    assert_eq!((live("top"), live("kybio")), (vec![true], vec![false]), "{apps:?}");
    assert_eq!(purse.ok(&format!("keys revoke {id}"))["revoked"], 1);
    purse.fails(&format!("keys revoke {id}"), "INVALID_ARGUMENT", 1);
    assert!(purse.ok_text("keys list").contains("\"revoked\": true"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(purse.data().join("keys.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "keys.json holds dialect secrets: owner only");
    }
}

/// A client that sends part of its headers and stalls loses its connection after the header
/// timeout, while other clients are served meanwhile; nothing is written.
#[test]
fn a_slow_client_loses_its_connection() {
    let purse = Purse::new();
    let write = key(&purse, "write");
    let config = purse.dir.path().join("serve.json");
    std::fs::write(&config, r#"{"header_read_timeout_ms": 500}"#).unwrap();
    let server = Server::start(&purse, &["--config", config.to_str().unwrap()]);
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(b"POST /v1/charge HTTP/1.1\r\nHost: purse\r\nContent-Le").unwrap();
    let started = std::time::Instant::now();
    // Meanwhile another client is served.
    let (status, body) = Client::connect(&server.address).unwrap().send("GET", "/v1/rules", &write, "").unwrap();
    assert_eq!(status, 200, "{body}");
    let mut rest = Vec::new();
    // The server ends the stalled connection (with a 408 or without a word); the read
    // returns rather than waiting out its own 10 s.
    let _ = slow.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "the stalled connection was kept {took:?}");
    let answer = String::from_utf8_lossy(&rest);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, _, _) = server.terminate();
    assert!(status.success());
    assert_eq!(purse.ok("verify")["entries"], 0);
}
