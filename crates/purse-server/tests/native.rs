//! The native API in process: every answer through the real router, its layers included.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use purse_ledger::{Ledger, LedgerConfig};
use purse_server::{router, AppState, KeyStore, Keys, Scope, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Server {
    app: Router,
    read: String,
    write: String,
    admin: String,
    ledger: Ledger,
    _dir: tempfile::TempDir,
}

async fn server_with(config: ServerConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path().join("ledger"))).await.unwrap();
    let mut keys = Keys { version: 1, ..Keys::default() };
    let (_, read) = keys.add_key("reader", Scope::Read).unwrap();
    let (_, write) = keys.add_key("till", Scope::Write).unwrap();
    let (_, admin) = keys.add_key("ops", Scope::Admin).unwrap();
    let state = AppState::new(ledger.clone(), KeyStore::fixed(keys), config);
    Server { app: router(state), read, write, admin, ledger, _dir: dir }
}

async fn server() -> Server {
    server_with(ServerConfig::default()).await
}

/// One answer: status, body text, content type.
struct Answer {
    status: StatusCode,
    text: String,
    content_type: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| panic!("{error}: {}", self.text))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_owned()
    }
}

impl Server {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer { status, text: String::from_utf8(bytes.to_vec()).unwrap(), content_type }
    }

    async fn post(&self, path: &str, key: &str, body: &str) -> Answer {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(request).await
    }

    async fn write(&self, command: &str, body: Value) -> Answer {
        self.post(&format!("/v1/{command}"), &self.write, &body.to_string()).await
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        let request =
            Request::get(path).header(header::AUTHORIZATION, format!("Bearer {key}")).body(Body::empty()).unwrap();
        self.send(request).await
    }
}

/// The one assertion of the status tables: an answer's status and error code.
fn check(answer: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!(answer.status.as_u16(), status, "{what}: {}", answer.text);
    if !code.is_empty() {
        assert_eq!(answer.code(), code, "{what}: {}", answer.text);
    }
}

fn charge(request: &str, order: &str, account: &str, real: &str) -> Value {
    json!({"request_id": request, "outer_order_id": order, "account_id": account, "real_value": real})
}

#[tokio::test]
async fn writes_answer_the_flow_detail_and_errors_their_status() {
    let server = server().await;
    let first = json!({"request_id": "r1", "outer_order_id": "o1", "account_id": "alice",
        "real_value": "100.00", "gift_value": 20, "ext_info": {"payModeId": "WX"}});
    let answer = server.write("charge", first.clone()).await;
    check(&answer, 200, "", "charge");
    assert_eq!(answer.content_type, "application/json");
    let flow = answer.json();
    assert_eq!(flow["flow_type"], "CHARGE");
    assert_eq!(flow["current_value"], "120.00");
    assert_eq!(flow["after_property_list"][1], json!({"type": "GIFT", "value": "20.00"}));
    // Kept exactly as written (json! writes it compact).
    assert_eq!(flow["ext_info"], "{\"payModeId\":\"WX\"}");
    // A replay answers the first answer byte for byte.
    assert_eq!(server.write("charge", first).await.text, answer.text);

    let table: Vec<(&str, Value, u16, &str)> = vec![
        (
            "deduct",
            json!({"request_id": "d1", "outer_order_id": "od1", "account_id": "alice", "value": "30.00"}),
            200,
            "",
        ),
        (
            "deduct",
            json!({"request_id": "d2", "outer_order_id": "od2", "account_id": "alice", "value": "1000"}),
            422,
            "INSUFFICIENT_BALANCE",
        ),
        (
            "deduct",
            json!({"request_id": "d3", "outer_order_id": "od3", "account_id": "bob", "value": "1"}),
            404,
            "ACCOUNT_NOT_FOUND",
        ),
        (
            "deduct",
            json!({"request_id": "d1", "outer_order_id": "od1", "account_id": "alice", "value": "31.00"}),
            409,
            "IDEMPOTENCY_CONFLICT",
        ),
        (
            "deduct",
            json!({"request_id": "d4", "outer_order_id": "od1", "account_id": "alice", "value": "1"}),
            409,
            "DUPLICATE_ORDER",
        ),
        (
            "deduct",
            json!({"request_id": "d5", "outer_order_id": "od5", "account_id": "alice", "value": "1.001"}),
            400,
            "INVALID_AMOUNT",
        ),
        (
            "deduct",
            json!({"request_id": "d6", "outer_order_id": "od6", "account_id": "alice", "value": "-1"}),
            400,
            "INVALID_AMOUNT",
        ),
        (
            "undeduct",
            json!({"request_id": "u1", "outer_order_id": "nope", "new_outer_order_id": "ou1", "account_id": "alice"}),
            404,
            "ORDER_NOT_FOUND",
        ),
        (
            "undeduct",
            json!({"request_id": "u2", "outer_order_id": "od1", "new_outer_order_id": "ou2", "account_id": "alice", "value": "40"}),
            422,
            "REFUND_EXCEEDS_ORIGINAL",
        ),
        (
            "undeduct",
            json!({"request_id": "u3", "outer_order_id": "od1", "new_outer_order_id": "ou3", "account_id": "alice", "value": "10"}),
            200,
            "",
        ),
        (
            "hold",
            json!({"request_id": "h1", "outer_order_id": "oh1", "account_id": "alice", "value": "5", "expire_time": "2099-01-01 00:00:00"}),
            200,
            "",
        ),
        (
            "capture",
            json!({"request_id": "p1", "outer_order_id": "op1", "src_outer_order_id": "oh1", "account_id": "alice", "value": "6"}),
            400,
            "INVALID_AMOUNT",
        ),
        (
            "capture",
            json!({"request_id": "p2", "outer_order_id": "op2", "src_outer_order_id": "oh1", "account_id": "alice", "value": "2"}),
            200,
            "",
        ),
        (
            "release",
            json!({"request_id": "p3", "outer_order_id": "op3", "src_outer_order_id": "oh1", "account_id": "alice"}),
            409,
            "ALREADY_REVERSED",
        ),
        (
            "adjust",
            json!({"request_id": "a1", "outer_order_id": "oa1", "account_id": "alice", "pre_value": "3"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "adjust",
            json!({"request_id": "a2", "outer_order_id": "oa2", "account_id": "alice", "pre_value": "3", "remark": "cup"}),
            200,
            "",
        ),
        (
            "freeze",
            json!({"request_id": "f1", "outer_order_id": "of1", "account_id": "alice", "remark": "lost"}),
            200,
            "",
        ),
        (
            "deduct",
            json!({"request_id": "d7", "outer_order_id": "od7", "account_id": "alice", "value": "1"}),
            422,
            "ACCOUNT_FROZEN",
        ),
        (
            "unfreeze",
            json!({"request_id": "f2", "outer_order_id": "of2", "account_id": "alice", "remark": "found"}),
            200,
            "",
        ),
        (
            "import",
            json!({"request_id": "i1", "outer_order_id": "oi1", "account_id": "carol", "gift_value": "8", "order_time": "2020-01-01 00:00:00"}),
            200,
            "",
        ),
        (
            "clear",
            json!({"request_id": "k1", "outer_order_id": "ok1", "account_id": "carol", "bucket": "REAL", "remark": "x"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "close",
            json!({"request_id": "z1", "outer_order_id": "oz1", "account_id": "carol", "remark": "bye"}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "clear",
            json!({"request_id": "k2", "outer_order_id": "ok2", "account_id": "carol", "bucket": "gift", "remark": "x"}),
            200,
            "",
        ),
        (
            "close",
            json!({"request_id": "z2", "outer_order_id": "oz2", "account_id": "carol", "remark": "bye"}),
            200,
            "",
        ),
        ("charge", charge("z3", "oz3", "carol", "1"), 422, "ACCOUNT_CLOSED"),
    ];
    for (command, body, status, code) in table {
        let what = format!("{command} {body}");
        check(&server.write(command, body).await, status, code, &what);
    }
    let transfer = server
        .write(
            "transfer",
            json!({"request_id": "t1", "outer_order_id": "ot1", "account_id": "alice", "to_account_id": "dave", "value": "10"}),
        )
        .await;
    check(&transfer, 200, "", "transfer");
    assert_eq!(transfer.json()["out"]["flow_type"], "TRANSFER_OUT");
    assert_eq!(transfer.json()["in"]["account_id"], "dave");
    let sweep = server.write("expire", json!({"now": "2030-01-01 00:00:00"})).await;
    check(&sweep, 200, "", "expire");
    assert!(sweep.json()["flows"].is_array());
    let account = server.get("/v1/account?account_id=alice", &server.read).await;
    check(&account, 200, "", "account");
    // 120 - 30 + 10 - 2 + 3 - 10 = 91
    assert_eq!(account.json()["total_value"], "91.00", "{}", account.text);
    // charge, deduct, undeduct, hold, capture, adjust, freeze, unfreeze, import, clear, close,
    // and the transfer's two: every refused write wrote nothing.
    assert_eq!(server.ledger.verify().await.unwrap().flows, 13);
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let server = server_with(ServerConfig { body_bytes_max: 4096, ..ServerConfig::default() }).await;
    let write = server.write.clone();
    let renamed = charge("x1", "ox1", "eve", "1").to_string().replace("real_value", "real_valeu");
    let table: Vec<(&str, String, u16, &str)> = vec![
        ("malformed JSON", "{\"request_id\": ".to_owned(), 400, "INVALID_ARGUMENT"),
        ("not an object", "[1, 2]".to_owned(), 400, "INVALID_ARGUMENT"),
        ("duplicate key", r#"{"request_id": "a", "request_id": "b"}"#.to_owned(), 400, "INVALID_ARGUMENT"),
        ("unknown field", renamed, 400, "INVALID_ARGUMENT"),
        ("missing field", json!({"request_id": "x2"}).to_string(), 400, "INVALID_ARGUMENT"),
        ("oversized body", format!("{{\"remark\": \"{}\"}}", "x".repeat(10_000)), 413, "INVALID_ARGUMENT"),
        (
            "bad ext_info",
            json!({"request_id": "x3", "outer_order_id": "ox3", "account_id": "eve", "real_value": "1", "ext_info": "{"})
                .to_string(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "more decimals than the scale",
            r#"{"request_id": "x4", "outer_order_id": "ox4", "account_id": "eve", "real_value": 0.1000000001}"#.to_owned(),
            400,
            "INVALID_AMOUNT",
        ),
    ];
    for (what, body, status, code) in table {
        let answer = server.post("/v1/charge", &write, &body).await;
        check(&answer, status, code, what);
        assert!(answer.content_type.starts_with("application/json"), "{what}: {}", answer.content_type);
    }
    let form = Request::post("/v1/charge")
        .header(header::AUTHORIZATION, format!("Bearer {write}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(charge("x5", "ox5", "eve", "1").to_string()))
        .unwrap();
    check(&server.send(form).await, 415, "INVALID_ARGUMENT", "form content type");
    let huge_page = server.get("/v1/flows?account_id=eve&page_size=100000", &server.read).await;
    check(&huge_page, 400, "INVALID_ARGUMENT", "huge page size");
    assert!(huge_page.text.contains("page_size"), "{}", huge_page.text);
    check(&server.get("/v1/nothing", &server.read).await, 404, "INVALID_ARGUMENT", "unknown route");
    check(&server.get("/elsewhere", &server.read).await, 404, "INVALID_ARGUMENT", "unknown path");
    assert_eq!(server.ledger.verify().await.unwrap().entries, 0, "nothing was written");
}

#[tokio::test]
async fn keys_and_scopes() {
    let server = server().await;
    let body = charge("s1", "os1", "alice", "1").to_string();
    let no_key = Request::post("/v1/charge").body(Body::from(body.clone())).unwrap();
    check(&server.send(no_key).await, 401, "INVALID_ARGUMENT", "no key");
    check(&server.post("/v1/charge", "pk_000000000000_00", &body).await, 401, "", "unknown key");
    check(&server.post("/v1/charge", &server.read, &body).await, 403, "", "read key writes");
    check(&server.post("/v1/charge", &server.write, &body).await, 200, "", "write key writes");
    check(&server.get("/v1/account?account_id=alice", &server.read).await, 200, "", "read key reads");
    let rules = r#"{"deduction_order": "REAL_BEFORE_GIFT_DEDUCT"}"#;
    let put = |key: &str| {
        Request::put("/v1/rules?brand_id=b1")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(rules))
            .unwrap()
    };
    check(&server.send(put(&server.write)).await, 403, "", "write key sets rules");
    let set = server.send(put(&server.admin)).await;
    check(&set, 200, "", "admin sets rules");
    assert_eq!(set.json()["deduction_order"], "REAL_BEFORE_GIFT_DEDUCT");
    let got = server.get("/v1/rules?brand_id=b1", &server.read).await;
    assert_eq!(got.json()["deduction_order"], "REAL_BEFORE_GIFT_DEDUCT");
    check(&server.post("/v1/verify", &server.write, "").await, 403, "", "write key verifies");
    let verify = server.post("/v1/verify", &server.admin, "").await;
    check(&verify, 200, "", "admin verifies");
    assert_eq!(verify.json()["ok"], true);
    check(&server.send(Request::get("/healthz").body(Body::empty()).unwrap()).await, 200, "", "health needs no key");
    check(&server.send(Request::get("/readyz").body(Body::empty()).unwrap()).await, 200, "", "ready needs no key");
    check(&server.send(Request::get("/metrics").body(Body::empty()).unwrap()).await, 401, "", "metrics need a key");
    // Made-up routes do not each get a label of their own (anyone could grow the metrics).
    for path in ["/v1/x1", "/v1/x2", "/v1/x3"] {
        check(&server.send(Request::get(path).body(Body::empty()).unwrap()).await, 404, "", path);
    }
    let metrics = server.get("/metrics", &server.read).await;
    assert!(!metrics.text.contains("/v1/x1"), "{}", metrics.text);
    assert!(metrics.text.contains("route=\"unmatched\",status=\"404\""), "{}", metrics.text);
    let forbidden = "purse_http_requests_total{route=\"/v1/charge\",status=\"403\",code=\"INVALID_ARGUMENT\"} 1";
    assert!(metrics.text.contains(forbidden), "{}", metrics.text);
    for name in [
        "purse_http_request_duration_seconds_bucket",
        "purse_fsyncs",
        "purse_writer_queue_depth",
        "purse_writer_batches",
    ] {
        assert!(metrics.text.contains(name), "{name}: {}", metrics.text);
    }
}

#[tokio::test]
async fn idempotency_key_header() {
    let server = server().await;
    let body = json!({"outer_order_id": "o1", "account_id": "alice", "real_value": "5"}).to_string();
    let with_key = |key: &str, body: &str| {
        Request::post("/v1/charge")
            .header(header::AUTHORIZATION, format!("Bearer {}", server.write))
            .header("Idempotency-Key", key)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let first = server.send(with_key("\"k-1\"", &body)).await;
    check(&first, 200, "", "the header is the request_id");
    assert_eq!(first.json()["request_id"], "k-1");
    assert_eq!(server.send(with_key("k-1", &body)).await.text, first.text, "a replay by the header");
    let both =
        json!({"request_id": "other", "outer_order_id": "o2", "account_id": "alice", "real_value": "5"}).to_string();
    check(&server.send(with_key("k-2", &both)).await, 400, "INVALID_ARGUMENT", "header and body differ");
    check(&server.send(with_key("", &body)).await, 400, "INVALID_ARGUMENT", "an empty key is an empty request_id");
}

#[tokio::test]
async fn queries_and_export() {
    let server = server().await;
    for index in 1..=3 {
        let answer = server.write("charge", charge(&format!("r{index}"), &format!("o{index}"), "alice", "10")).await;
        check(&answer, 200, "", "charge");
    }
    let deduct = json!({"request_id": "d", "outer_order_id": "od", "account_id": "alice", "value": "4"});
    check(&server.write("deduct", deduct).await, 200, "", "deduct");
    assert_eq!(server.get("/v1/flow?outer_order_id=od", &server.read).await.json()["flow_id"], "4");
    assert_eq!(server.get("/v1/flow?flow_id=2", &server.read).await.json()["outer_order_id"], "o2");
    check(&server.get("/v1/flow?flow_id=99", &server.read).await, 404, "ORDER_NOT_FOUND", "no flow 99");
    let page =
        server.get("/v1/flows?account_id=alice&flow_type=CHARGE&page_size=2&page_no=2", &server.read).await.json();
    assert_eq!(page["total_count"], 3);
    assert_eq!(page["flows"].as_array().unwrap().len(), 1);
    let accounts = server.get("/v1/accounts", &server.read).await.json();
    assert_eq!(accounts["accounts"][0]["account_id"], "alice", "{accounts}");
    check(&server.get("/v1/liability", &server.read).await, 200, "", "liability");
    let window = "start_time=2000-01-01%2000:00:00&end_time=2100-01-01%2000:00:00";
    let statement = server.get(&format!("/v1/statement?account_id=alice&{window}"), &server.read).await;
    check(&statement, 200, "", "statement");
    assert_eq!(statement.json()["flows_count"], 4);
    let lines = server.get("/v1/export", &server.read).await;
    assert_eq!(lines.content_type, "application/x-ndjson");
    let lines: Vec<Value> = lines.text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3]["flow_type"], "DEDUCT");
    let csv = server.get("/v1/export?format=csv&flow_type=DEDUCT", &server.read).await;
    assert!(csv.content_type.starts_with("text/csv"));
    let rows: Vec<&str> = csv.text.split("\r\n").filter(|row| !row.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{}", csv.text);
    assert!(rows[0].starts_with("flow_id,flow_type,"));
    assert!(rows[1].starts_with("4,DEDUCT,alice,"));
    check(&server.get("/v1/export?format=xml", &server.read).await, 400, "INVALID_ARGUMENT", "export format");
}

/// docs/openapi.json is the document the server serves: regenerate it with
/// `PURSE_WRITE_OPENAPI=1 cargo test -p purse-server --test native openapi`.
#[tokio::test]
async fn openapi_document_matches_the_committed_copy() {
    let server = server().await;
    let served = server.get("/openapi.json", &server.read).await.json();
    assert_eq!(served["openapi"], "3.1.0");
    let charge = &served["paths"]["/v1/charge"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let required: Vec<&str> =
        charge["required"].as_array().unwrap().iter().map(|value| value.as_str().unwrap()).collect();
    for field in ["request_id", "outer_order_id", "account_id"] {
        assert!(required.contains(&field), "{required:?}");
    }
    assert!(charge["properties"]["real_value"].is_object());
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("PURSE_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json differs from what the server serves; regenerate it with \
         PURSE_WRITE_OPENAPI=1 cargo test -p purse-server --test native openapi"
    );
}

/// A client that sends its headers and then stalls gets 408 once the request timeout passes,
/// and nothing is written.
#[tokio::test]
async fn a_stalled_body_times_out() {
    let config = ServerConfig { request_timeout: std::time::Duration::from_millis(300), ..ServerConfig::default() };
    let server = server_with(config).await;
    let stalled = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let request = Request::post("/v1/charge")
        .header(header::AUTHORIZATION, format!("Bearer {}", server.write))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stalled))
        .unwrap();
    let answer = server.send(request).await;
    check(&answer, 408, "INVALID_ARGUMENT", "stalled body");
    assert_eq!(server.ledger.verify().await.unwrap().entries, 0);
}
