//! The provider dialects through the real router, by clients written from the providers' own
//! pages (docs in /work/shared/seeds): their example requests, signed as each provider signs.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use purse_core::{Action, Amount, Command, Zone};
use purse_ledger::{FlowQuery, Ledger, LedgerConfig};
use purse_server::keys::Dialect;
use purse_server::{router, AppState, KeyStore, Keys, Scope, ServerConfig};
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

const TOP_KEY: &str = "12345678";
const TOP_SECRET: &str = "top-secret";
const TOP_READER: &str = "87654321";
const KYBIO_APP: &str = "abcdefghijklmn";
const KYBIO_SECRET: &str = "kybio-app-key";
const ZEN_KEY: &str = "zen-access-key";
const ZEN_SECRET: &str = "zen-password";

struct Server {
    app: Router,
    ledger: Ledger,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    server_with(ServerConfig::default()).await
}

async fn server_with(config: ServerConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path().join("ledger"))).await.unwrap();
    let mut keys = Keys { version: 1, ..Keys::default() };
    keys.add_app(Dialect::Top, TOP_KEY, Some(TOP_SECRET), Scope::Write).unwrap();
    keys.add_app(Dialect::Top, TOP_READER, Some(TOP_SECRET), Scope::Read).unwrap();
    keys.add_app(Dialect::Kybio, KYBIO_APP, Some(KYBIO_SECRET), Scope::Write).unwrap();
    keys.add_app(Dialect::Zenlayer, ZEN_KEY, Some(ZEN_SECRET), Scope::Read).unwrap();
    let state = AppState::new(ledger.clone(), KeyStore::fixed(keys), config);
    Server { app: router(state), ledger, _dir: dir }
}

impl Server {
    async fn send(&self, request: Request<Body>) -> (u16, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn flow_count(&self, account: &str) -> u64 {
        match self.ledger.flows(FlowQuery::new(account)).await {
            Ok(page) => page.total_count,
            Err(_) => 0,
        }
    }

    async fn submit(&self, request_id: &str, account: &str, time: &str, action: Action) {
        let mut command = Command::new(request_id, request_id, account, action);
        command.biz_date = Some(Zone::CHINA.parse_local(time).unwrap());
        self.ledger.submit(command).await.unwrap();
    }
}

fn now_ms() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

fn yuan(text: &str) -> Amount {
    Amount::parse(text, purse_core::Scale::CNY).unwrap()
}

// ---- TOP (ALSC) ---------------------------------------------------------------------------

/// A TOP call as the TOP SDK makes it: common parameters plus the request object, signed.
struct TopCall {
    params: Vec<(String, String)>,
    secret: String,
}

impl TopCall {
    fn new(method: &str, object_param: &str, object: &Value) -> TopCall {
        let timestamp = Zone::CHINA.format_local(purse_core::Timestamp(now_ms() / 1000));
        let params = [
            ("method", method.to_owned()),
            ("app_key", TOP_KEY.to_owned()),
            ("timestamp", timestamp),
            ("v", "2.0".to_owned()),
            ("sign_method", "md5".to_owned()),
            ("format", "json".to_owned()),
            (object_param, object.to_string()),
        ];
        TopCall {
            params: params.into_iter().map(|(key, value)| (key.to_owned(), value)).collect(),
            secret: TOP_SECRET.to_owned(),
        }
    }

    fn set(mut self, key: &str, value: &str) -> TopCall {
        self.params.retain(|(name, _)| name != key);
        self.params.push((key.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, key: &str) -> TopCall {
        self.params.retain(|(name, _)| name != key);
        self
    }

    /// TOP's public scheme: parameters but `sign` sorted by name, as name + value.
    fn sign(&self) -> String {
        let mut sorted: Vec<&(String, String)> = self.params.iter().collect();
        sorted.sort();
        let text: String = sorted.iter().map(|(key, value)| format!("{key}{value}")).collect();
        let method = self.params.iter().find(|(key, _)| key == "sign_method").map_or("md5", |(_, value)| value);
        let bytes = match method {
            "hmac" => {
                let mut mac = <Hmac<Md5> as Mac>::new_from_slice(self.secret.as_bytes()).unwrap();
                mac.update(text.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            "hmac-sha256" => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.as_bytes()).unwrap();
                mac.update(text.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            _ => Md5::digest(format!("{}{text}{}", self.secret, self.secret).as_bytes()).to_vec(),
        };
        hex::encode_upper(bytes)
    }

    fn request_with_sign(&self, sign: &str) -> Request<Body> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.params {
            form.append_pair(key, value);
        }
        form.append_pair("sign", sign);
        Request::post("/router/rest")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(Body::from(form.finish()))
            .unwrap()
    }

    fn request(&self) -> Request<Body> {
        self.request_with_sign(&self.sign())
    }
}

const CHARGE: &str = "alibaba.alsc.crm.recharge.charge.update";
const CHARGE_PARAM: &str = "param_recharge_open_req";
const DETAIL: &str = "alibaba.alsc.crm.recharge.account.flowdetail.get";
const DETAIL_PARAM: &str = "param_query_recharge_account_flow_open_req";

/// The charge.update page's Java example, field for field.
fn seed_charge() -> Value {
    json!({
        "biz_date": "2019-01-01 13:12:12",
        "card_id": "76123786153828",
        "charge_type": "CHARGE",
        "gift_value": 30,
        "brand_id": "12335234234",
        "operator_id": "78263467236482",
        "shop_id": "542423412",
        "outer_order_id": "7162356125361426516",
        "pre_value": 100,
        "real_value": 200,
        "remark": "备注",
        "request_id": "12387s76sd6cs8dc",
        "trigger_gift": false,
        "out_pay_id": "12312312",
        "out_shop_id": "12312312",
        "out_brand_id": "1231231",
        "biz_channel": "CS",
        "ext_info": "{\"payModeId\":\"WX\", \"payModeName\":\"微信\"}"
    })
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

fn properties(list: &Value) -> Vec<(String, Value)> {
    list["recharge_account_property_open_info"]
        .as_array()
        .unwrap_or_else(|| panic!("not a wrapped list: {list}"))
        .iter()
        .map(|item| (item["type"].as_str().unwrap().to_owned(), item["value"].clone()))
        .collect()
}

fn four(real: i64, gift: i64, pre: i64) -> Vec<(String, Value)> {
    [("REAL", real), ("GIFT", gift), ("PRE", pre), ("TOTAL", real + gift + pre)]
        .into_iter()
        .map(|(kind, value)| (kind.to_owned(), json!(value)))
        .collect()
}

#[tokio::test]
async fn top_charge_as_the_seed_example_in_json() {
    let server = server().await;
    let (status, text) = server.send(TopCall::new(CHARGE, CHARGE_PARAM, &seed_charge()).request()).await;
    assert_eq!(status, 200, "{text}");
    let answer = parse(&text);
    let result = &answer["alibaba_alsc_crm_recharge_charge_update_response"]["result"];
    assert_eq!(result["biz_success"], json!(true), "{text}");
    assert_eq!(result["result_code"], json!("200"));
    assert_eq!(result["result_desc"], json!("成功"));
    assert!(result["result_view"].is_string());
    let flow = &result["result"];
    assert_eq!(flow["account_id"], json!("76123786153828"), "a new card opens the account named after it");
    assert_eq!(flow["card_id"], json!("76123786153828"));
    assert_eq!(flow["flow_type"], json!("CHARGE"));
    assert!(flow["flow_id"].is_string());
    assert_eq!(flow["order_time"], json!("2019-01-01 13:12:12"));
    assert_eq!(flow["order_value"], json!(330));
    assert_eq!(flow["current_value"], json!(330));
    assert_eq!(flow["outer_order_id"], json!("7162356125361426516"));
    assert_eq!(flow["brand_id"], json!("12335234234"));
    assert_eq!(flow["shop_id"], json!("542423412"));
    assert_eq!(flow["operator"], json!("78263467236482"));
    assert_eq!(flow["remark"], json!("备注"));
    assert_eq!(flow["ext_info"], json!("{\"payModeId\":\"WX\", \"payModeName\":\"微信\"}"));
    assert_eq!(properties(&flow["affected_property_list"]), four(200, 30, 100));
    assert_eq!(properties(&flow["before_property_list"]), four(0, 0, 0));
    assert_eq!(properties(&flow["after_property_list"]), four(200, 30, 100));

    // The same request_id again, signed anew: the first answer, nothing written.
    let (_, again) =
        server.send(TopCall::new(CHARGE, CHARGE_PARAM, &seed_charge()).set("sign_method", "hmac").request()).await;
    let again = parse(&again);
    assert_eq!(
        again["alibaba_alsc_crm_recharge_charge_update_response"]["result"]["result"]["flow_id"],
        flow["flow_id"]
    );
    assert_eq!(server.flow_count("76123786153828").await, 1);
}

/// A tiny XML reader for the tests: (element name, text, children).
#[derive(Debug)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn parse(text: &str) -> Element {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(text);
        let mut stack = vec![Element { name: String::new(), text: String::new(), children: Vec::new() }];
        loop {
            match reader.read_event().unwrap() {
                Event::Start(start) => stack.push(Element {
                    name: String::from_utf8(start.name().as_ref().to_vec()).unwrap(),
                    text: String::new(),
                    children: Vec::new(),
                }),
                Event::Text(text) => stack.last_mut().unwrap().text.push_str(&text.decode().unwrap()),
                Event::GeneralRef(reference) => {
                    let name = reference.decode().unwrap();
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name).unwrap();
                    stack.last_mut().unwrap().text.push_str(resolved);
                }
                Event::End(_) => {
                    let done = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(done);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        stack.pop().unwrap().children.remove(0)
    }

    fn child(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|child| child.name == name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name))
    }

    fn names(&self) -> Vec<&str> {
        self.children.iter().map(|child| child.name.as_str()).collect()
    }
}

#[tokio::test]
async fn top_flow_detail_in_xml_is_shaped_like_the_seed() {
    let server = server().await;
    server.send(TopCall::new(CHARGE, CHARGE_PARAM, &seed_charge()).request()).await;
    // XML is TOP's default format: no `format` parameter.
    let call = TopCall::new(DETAIL, DETAIL_PARAM, &json!({"outer_order_id": "7162356125361426516"})).without("format");
    let (status, text) = server.send(call.request()).await;
    assert_eq!(status, 200);
    let root = Element::parse(&text);
    assert_eq!(root.name, "alibaba_alsc_crm_recharge_account_flowdetail_get_response", "{text}");
    let result = root.child("result");
    assert_eq!(result.names(), ["biz_success", "result", "result_code", "result_desc", "result_view"], "{text}");
    assert_eq!(result.child("biz_success").text, "true");
    assert_eq!(result.child("result_code").text, "0");
    let flow = result.child("result");
    let affected = flow.child("affected_property_list");
    assert_eq!(affected.names(), ["recharge_account_property_open_info"; 4], "{text}");
    let entries: Vec<(String, String)> = affected
        .children
        .iter()
        .map(|entry| (entry.child("type").text.clone(), entry.child("value").text.clone()))
        .collect();
    assert_eq!(
        entries,
        [("REAL", "200"), ("GIFT", "30"), ("PRE", "100"), ("TOTAL", "330")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(flow.child("flow_type").text, "CHARGE");
    assert_eq!(flow.child("order_value").text, "330");
    assert_eq!(
        flow.child("ext_info").text,
        "{\"payModeId\":\"WX\", \"payModeName\":\"微信\"}",
        "escaped and read back"
    );
    for name in ["account_id", "after_property_list", "before_property_list", "brand_id", "current_value", "flow_id"] {
        flow.child(name);
    }
    // By flow_id, with simplify=true: plain arrays.
    let flow_id = flow.child("flow_id").text.clone();
    let call = TopCall::new(DETAIL, DETAIL_PARAM, &json!({"flow_id": flow_id})).set("simplify", "true");
    let (_, text) = server.send(call.request()).await;
    let answer = parse(&text);
    let list =
        &answer["alibaba_alsc_crm_recharge_account_flowdetail_get_response"]["result"]["result"]["after_property_list"];
    assert_eq!(list[3], json!({"type": "TOTAL", "value": 330}), "{text}");
}

fn top_error(text: &str) -> (i64, String) {
    let answer = parse(text);
    let error = &answer["error_response"];
    assert!(error["msg"].is_string() && error["sub_msg"].is_string(), "{text}");
    (error["code"].as_i64().unwrap_or_else(|| panic!("{text}")), error["sub_code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn top_refuses_bad_signatures_stale_times_replays_and_bad_calls() {
    let server = server().await;
    let call = || TopCall::new(CHARGE, CHARGE_PARAM, &seed_charge());
    let check = |expect: (i64, &'static str)| {
        move |(status, text): (u16, String)| {
            assert_eq!(status, 200, "TOP answers 200: {text}");
            let (code, sub_code) = top_error(&text);
            assert_eq!((code, sub_code.as_str()), expect, "{text}");
        }
    };
    check((25, "isv.invalid-signature"))(
        server.send(call().request_with_sign("0123456789ABCDEF0123456789ABCDEF")).await,
    );
    let mut wrong_secret = call();
    wrong_secret.secret = "other".into();
    check((25, "isv.invalid-signature"))(server.send(wrong_secret.request()).await);
    let stale = Zone::CHINA.format_local(purse_core::Timestamp(now_ms() / 1000 - 600));
    check((31, "isv.invalid-timestamp"))(server.send(call().set("timestamp", &stale).request()).await);
    check((31, "isv.invalid-timestamp"))(server.send(call().set("timestamp", "yesterday").request()).await);
    check((29, "isv.appkey-not-exists"))(server.send(call().set("app_key", "nobody").request()).await);
    check((22, "isv.method-not-exist"))(
        server.send(call().set("method", "alibaba.alsc.crm.recharge.nothing").request()).await,
    );
    check((30, "isv.missing-parameter:timestamp"))(server.send(call().without("timestamp").request()).await);
    check((40, "isv.missing-parameter:param_recharge_open_req"))(
        server.send(call().without(CHARGE_PARAM).request()).await,
    );
    check((11, "isv.permission-denied"))(server.send(call().set("app_key", TOP_READER).request()).await);
    let mut missing = seed_charge();
    missing.as_object_mut().unwrap().remove("request_id");
    check((40, "isv.missing-parameter:request_id"))(
        server.send(TopCall::new(CHARGE, CHARGE_PARAM, &missing).request()).await,
    );
    let mut bad = seed_charge();
    bad["real_value"] = json!(2.5);
    check((41, "isv.invalid-parameter:real_value"))(
        server.send(TopCall::new(CHARGE, CHARGE_PARAM, &bad).request()).await,
    );
    let mut typo = seed_charge();
    typo["real_valeu"] = json!(1);
    check((41, "isv.invalid-parameter:real_valeu"))(
        server.send(TopCall::new(CHARGE, CHARGE_PARAM, &typo).request()).await,
    );
    assert_eq!(server.flow_count("76123786153828").await, 0, "no refused call wrote anything");

    // Accepted once; the very same signed request again is a replay.
    let first = call();
    let (_, text) = server.send(first.request()).await;
    assert!(text.contains("\"biz_success\":true"), "{text}");
    check((25, "isv.request-replayed"))(server.send(first.request()).await);
    // The error in XML, as the seed's error example.
    let (_, text) = server.send(call().without("format").set("app_key", "nobody").request()).await;
    let error = Element::parse(&text);
    assert_eq!(error.name, "error_response");
    assert_eq!(error.names(), ["code", "msg", "sub_code", "sub_msg"]);
    assert_eq!(error.child("code").text, "29");
}

#[tokio::test]
async fn top_every_sign_method_and_the_consumption_methods() {
    let server = server().await;
    for (index, method) in ["md5", "hmac", "hmac-sha256"].iter().enumerate() {
        let mut charge = seed_charge();
        charge["request_id"] = json!(format!("r-{index}"));
        charge["outer_order_id"] = json!(format!("o-{index}"));
        let (_, text) =
            server.send(TopCall::new(CHARGE, CHARGE_PARAM, &charge).set("sign_method", method).request()).await;
        assert!(text.contains("\"biz_success\":true"), "{method}: {text}");
    }
    // Balance now 600 / 90 / 300. A DEDUCT of 100 fen: from PRE, which is spent first.
    let card = "76123786153828";
    let deduct = json!({"request_id": "d-1", "outer_order_id": "pos-1", "card_id": card, "value": 100});
    let call = TopCall::new("alibaba.alsc.crm.recharge.dedut.update", "param_recharge_dedut_open_req", &deduct);
    let (_, text) = server.send(call.request()).await;
    let answer = parse(&text);
    let flow = &answer["alibaba_alsc_crm_recharge_dedut_update_response"]["result"]["result"];
    assert_eq!(flow["flow_type"], json!("DEDUCT"), "{text}");
    assert_eq!(flow["order_value"], json!(-100));
    assert_eq!(properties(&flow["affected_property_list"]), four(0, 0, -100));
    // Too much: a CommonResult refusal with the spec code, HTTP 200, nothing written.
    let before = server.flow_count(card).await;
    let greedy = json!({"request_id": "d-2", "outer_order_id": "pos-2", "card_id": card, "value": 100_000});
    let call = TopCall::new("alibaba.alsc.crm.recharge.dedut.update", "param_recharge_dedut_open_req", &greedy);
    let (status, text) = server.send(call.request()).await;
    assert_eq!(status, 200);
    let result = &parse(&text)["alibaba_alsc_crm_recharge_dedut_update_response"]["result"];
    assert_eq!(result["biz_success"], json!(false), "{text}");
    assert_eq!(result["result_code"], json!("INSUFFICIENT_BALANCE"));
    assert!(result["result_desc"].as_str().unwrap().len() > 10);
    assert!(result.get("result").is_none());
    assert_eq!(server.flow_count(card).await, before);
    // UNDEDUCT 50 of pos-1 (no card: the order's account), UNCHARGE o-1.
    let undeduct =
        json!({"request_id": "u-1", "outer_order_id": "pos-1", "new_outer_order_id": "refund-1", "value": 50});
    let call = TopCall::new("alibaba.alsc.crm.recharge.undedut.update", "param_recharge_undedut_open_req", &undeduct);
    let (_, text) = server.send(call.request()).await;
    let flow = &parse(&text)["alibaba_alsc_crm_recharge_undedut_update_response"]["result"]["result"];
    assert_eq!(
        (flow["flow_type"].clone(), flow["outer_order_id"].clone()),
        (json!("UNDEDUCT"), json!("refund-1")),
        "{text}"
    );
    assert_eq!(flow["order_value"], json!(50));
    let uncharge =
        json!({"request_id": "c-1", "outer_order_id": "back-1", "src_outer_order_id": "o-1", "card_id": card});
    let call = TopCall::new("alibaba.alsc.crm.recharge.uncharge.update", "param_recharge_uncharge_open_req", &uncharge);
    let (_, text) = server.send(call.request()).await;
    let flow = &parse(&text)["alibaba_alsc_crm_recharge_uncharge_update_response"]["result"]["result"];
    assert_eq!(flow["order_value"], json!(-330), "{text}");
    // The account, as the ledger holds it.
    let view = server.ledger.account(card).await.unwrap();
    let call = TopCall::new(
        "alibaba.alsc.crm.recharge.account.get",
        "param_query_recharge_account_open_req",
        &json!({"card_id": card}),
    );
    let (_, text) = server.send(call.set("app_key", TOP_READER).request()).await;
    let account = &parse(&text)["alibaba_alsc_crm_recharge_account_get_response"]["result"]["result"];
    assert_eq!(account["real_value"], json!(view.balance.real.minor()), "{text}");
    assert_eq!(account["total_value"], json!(view.balance.total().unwrap().minor()));
    assert_eq!(account["real_value_total"], json!(400), "three charges of 200, one taken back");
    // The flows, oldest first, paged: 6 flows, pages of 4.
    let list = json!({"card_id": card, "page_no": 2, "page_size": 4});
    let call = TopCall::new(
        "alibaba.alsc.crm.recharge.accountflows.get",
        "param_query_recharge_account_flows_open_req",
        &list,
    );
    let (_, text) = server.send(call.request()).await;
    let page = &parse(&text)["alibaba_alsc_crm_recharge_accountflows_get_response"]["result"]["result"];
    assert_eq!(page["total_count"], json!(6), "{text}");
    let rows = page["flow_list"]["recharge_account_flow_open_info"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["flow_type"], json!("UNDEDUCT"));
    assert!(rows[0].get("affected_property_list").is_none(), "listing rows carry no property lists");
    let filtered = json!({"card_id": card, "flow_types": ["DEDUCT"]});
    let call = TopCall::new(
        "alibaba.alsc.crm.recharge.accountflows.get",
        "param_query_recharge_account_flows_open_req",
        &filtered,
    );
    let (_, text) = server.send(call.request()).await;
    assert!(text.contains("\"total_count\":1"), "{text}");
}

// ---- KYBIO --------------------------------------------------------------------------------

/// A KYBIO call: JSON body, `time-stamp` and `data-signature` = uppercase MD5(appKey + body).
fn kybio(path: &str, body: &str, time_stamp: i64, secret: &str) -> Request<Body> {
    let signature = hex::encode_upper(Md5::digest(format!("{}{}", secret.trim(), body.trim()).as_bytes()));
    Request::post(format!("/openapi/v1/customerOpenApi/{path}"))
        .header(header::USER_AGENT, "openApi")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("time-stamp", time_stamp.to_string())
        .header("data-signature", signature)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn kybio_error(text: &str) -> i64 {
    let answer = parse(text);
    assert_eq!(answer["status"], json!("error"), "{text}");
    assert!(answer["messages"].as_array().is_some_and(|messages| !messages.is_empty()), "{text}");
    answer["errorCode"].as_i64().unwrap()
}

#[tokio::test]
async fn kybio_recharge_log_and_balance_updates() {
    let server = server().await;
    let uid = "677793671220529313";
    // Each update names its change with its own dataChangeTime (purse requires one: KYBIO has
    // no idempotency key, and without it a retry could not be told from a second change).
    let changes = std::cell::Cell::new(0u32);
    let update = |increment: &str, extra: &str| {
        let change = changes.get();
        changes.set(change + 1);
        let named = if extra.contains("dataChangeTime") {
            String::new()
        } else {
            format!(r#","dataChangeTime":"2024-01-01 00:{:02}:{:02}""#, change / 60, change % 60)
        };
        format!(r#"{{"appId":"{KYBIO_APP}","customerUid":{uid},"balanceIncrement":{increment}{extra}{named}}}"#)
    };
    let (status, text) =
        server.send(kybio("updateBalancePointByIncrement", &update("100", ""), now_ms(), KYBIO_SECRET)).await;
    assert_eq!(status, 200);
    let answer = parse(&text);
    assert_eq!(answer["status"], json!("success"), "{text}");
    // Exact decimals as JSON numbers (the text, not a float's rendering of it).
    assert!(text.contains(r#""balanceBeforeUpdate":0.00,"balanceAfterUpdate":100.00"#), "{text}");
    assert!(answer["data"]["balanceAfterUpdate"].is_number());
    let (_, text) =
        server.send(kybio("updateBalancePointByIncrement", &update("-30.5", ""), now_ms(), KYBIO_SECRET)).await;
    assert!(text.contains(r#""balanceAfterUpdate":69.50"#), "{text}");

    // The seed's example request (its stray `{ }` aside).
    let body = format!(r#"{{ "appId": "{KYBIO_APP}", "customerUid": {uid} }}"#);
    let (status, text) = server.send(kybio("queryCustomerRechargeLog", &body, now_ms(), KYBIO_SECRET)).await;
    assert_eq!(status, 200);
    let answer = parse(&text);
    assert_eq!(answer["status"], json!("success"), "{text}");
    let records = answer["data"].as_array().unwrap();
    assert_eq!(records.len(), 1, "the log holds recharges only: {text}");
    let record = &records[0];
    for key in ["rechargeStoreAppId", "rechargeStoreAccount", "customerUid", "datetime", "payMethod"] {
        assert!(record[key].is_string(), "{key}: {text}");
    }
    assert_eq!(record["customerUid"], json!(uid));
    assert_eq!(record["rechargeStoreAppId"], json!(KYBIO_APP));
    for key in ["rechargeMoney", "giftMoney", "customerMoneyAfterRecharge"] {
        assert!(record[key].is_number(), "{key}: {text}");
    }
    assert!(text.contains(r#""rechargeMoney":100.00,"giftMoney":0.00"#), "{text}");
    assert!(text.contains(r#""customerMoneyAfterRecharge":100.00"#), "{text}");
    assert_eq!(record["datetime"].as_str().unwrap().len(), "2016-10-28 11:14:03".len());

    // Refusals: nothing written by any.
    let count = server.flow_count(uid).await;
    let body = update("-1", "");
    assert_eq!(
        kybio_error(&server.send(kybio("updateBalancePointByIncrement", &body, now_ms(), "wrong")).await.1),
        1002
    );
    assert_eq!(
        kybio_error(
            &server.send(kybio("updateBalancePointByIncrement", &body, now_ms() - 600_000, KYBIO_SECRET)).await.1
        ),
        1003
    );
    let greedy = update("-1000", "");
    let text = server.send(kybio("updateBalancePointByIncrement", &greedy, now_ms(), KYBIO_SECRET)).await.1;
    assert_eq!(kybio_error(&text), 2002);
    assert!(text.contains("INSUFFICIENT_BALANCE"), "{text}");
    let stranger = body.replace(KYBIO_APP, "stranger");
    assert_eq!(
        kybio_error(&server.send(kybio("updateBalancePointByIncrement", &stranger, now_ms(), KYBIO_SECRET)).await.1),
        1005
    );
    let points = update("-1", r#","pointIncrement":5"#);
    assert_eq!(
        kybio_error(&server.send(kybio("updateBalancePointByIncrement", &points, now_ms(), KYBIO_SECRET)).await.1),
        1001
    );
    assert_eq!(server.flow_count(uid).await, count);

    // A replay (same body, same time-stamp) is refused; the same change sent again with a new
    // time-stamp (a client's retry, signed anew) is the same request: nothing more is written.
    let stamp = now_ms();
    let body = update("-1", "");
    let first = server.send(kybio("updateBalancePointByIncrement", &body, stamp, KYBIO_SECRET)).await.1;
    assert_eq!(parse(&first)["status"], json!("success"), "{first}");
    assert_eq!(
        kybio_error(&server.send(kybio("updateBalancePointByIncrement", &body, stamp, KYBIO_SECRET)).await.1),
        1004
    );
    let retry = server.send(kybio("updateBalancePointByIncrement", &body, stamp + 1, KYBIO_SECRET)).await.1;
    assert_eq!(parse(&first)["data"], parse(&retry)["data"], "{first} {retry}");
    assert_eq!(server.flow_count(uid).await, count + 1);
    // Without dataChangeTime an update is refused: it could not be retried safely.
    let unnamed = format!(r#"{{"appId":"{KYBIO_APP}","customerUid":{uid},"balanceIncrement":-1}}"#);
    let refused = server.send(kybio("updateBalancePointByIncrement", &unnamed, stamp + 2, KYBIO_SECRET)).await.1;
    assert_eq!(kybio_error(&refused), 1001, "{refused}");
    assert!(refused.contains("dataChangeTime"), "{refused}");
    assert_eq!(server.flow_count(uid).await, count + 1);
}

// ---- Zenlayer ----------------------------------------------------------------------------

/// A Zenlayer call signed as the zenlayercloud SDK signs it (ZC2-HMAC-SHA256).
fn zenlayer(action: &str, body: &str, timestamp: i64, secret: &str) -> Request<Body> {
    let (content_type, host) = ("application/json", "console.zenlayer.com");
    let payload = hex::encode(<Sha256 as sha2::Digest>::digest(body.as_bytes()));
    let canonical = format!("POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\ncontent-type;host\n{payload}");
    let to_sign = format!(
        "ZC2-HMAC-SHA256\n{timestamp}\n{}",
        hex::encode(<Sha256 as sha2::Digest>::digest(canonical.as_bytes()))
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    Request::post("/api/v2/zbc")
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, content_type)
        .header("x-zc-action", action)
        .header("x-zc-version", "2022-11-20")
        .header("x-zc-timestamp", timestamp.to_string())
        .header("x-zc-signature-method", "ZC2-HMAC-SHA256")
        .header(
            header::AUTHORIZATION,
            format!("ZC2-HMAC-SHA256 Credential={ZEN_KEY}, SignedHeaders=content-type;host, Signature={signature}"),
        )
        .body(Body::from(body.to_owned()))
        .unwrap()
}

const ZEN_SEED: &str = r#"{
  "endTime": "2023-09-05T14:26:18Z",
  "startTime": "2023-08-05T14:26:18Z",
  "pageSize": 10,
  "pageNum": 1,
  "state":["PAY_SUCCESS"]
}"#;

#[tokio::test]
async fn zenlayer_history_as_the_seed_example() {
    let server = server().await;
    let account = "cccbf4c0-12ab-417a-95ba-0bf8e60a55d1";
    let charge = Action::Charge { real: yuan("100.00"), gift: None, pre: Amount::ZERO, trigger_gift: false };
    server.submit("z-1", account, "2023-08-10 08:00:00", charge).await;
    server.submit("z-2", account, "2023-08-12 08:00:00", Action::Deduct { value: yuan("39.05") }).await;
    let refund = Action::Undeduct { original_outer_order_id: "z-2".into(), value: None };
    server.submit("z-3", account, "2023-08-15 17:47:01", refund).await;
    let outside = Action::Deduct { value: yuan("1.00") };
    server.submit("z-4", account, "2023-10-01 00:00:00", outside).await;

    let now = now_ms() / 1000;
    // As over HTTP/2: the host in the URI's authority, no Host header; the signature still holds.
    let mut h2 = zenlayer("DescribeRechargeRefundHistory", ZEN_SEED, now - 1, ZEN_SECRET);
    h2.headers_mut().remove(header::HOST);
    *h2.uri_mut() = "https://console.zenlayer.com/api/v2/zbc".parse().unwrap();
    let (status, text) = server.send(h2).await;
    assert_eq!(status, 200, "host from the authority: {text}");
    let (status, text) = server.send(zenlayer("DescribeRechargeRefundHistory", ZEN_SEED, now, ZEN_SECRET)).await;
    assert_eq!(status, 200, "{text}");
    let answer = parse(&text);
    assert!(answer["requestId"].is_string());
    assert_eq!(answer["response"]["requestId"], answer["requestId"]);
    assert_eq!(answer["response"]["totalCount"], json!(3), "{text}");
    let records = answer["response"]["dataSet"].as_array().unwrap();
    let kinds: Vec<&str> = records.iter().map(|record| record["transactionType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["RECHARGE", "DEDUCTION", "ORDER_REFUND"]);
    let refund = &records[2];
    assert!(text.contains(r#""amount":39.05,"#), "the exact decimal as a JSON number: {text}");
    assert!(text.contains(r#""amount":100.00,"#), "the scale's digits kept, no float between: {text}");
    assert!(refund["amount"].is_number());
    assert_eq!(refund["state"], json!("PAY_SUCCESS"));
    assert_eq!(refund["transactionTime"], json!("2023-08-15T09:47:01Z"));
    assert_eq!(refund["accountUid"], json!(account));
    assert!(refund["transactionId"].is_string() && refund["paymentMethod"].is_string());

    // Paging: page 2 of size 2 holds the third record.
    let body =
        r#"{"startTime": "2023-08-05T14:26:18Z", "endTime": "2023-09-05T14:26:18Z", "pageSize": 2, "pageNum": 2}"#;
    let (_, text) = server.send(zenlayer("DescribeRechargeRefundHistory", body, now, ZEN_SECRET)).await;
    let answer = parse(&text);
    assert_eq!(answer["response"]["totalCount"], json!(3));
    assert_eq!(answer["response"]["dataSet"].as_array().unwrap().len(), 1, "{text}");
}

fn zen_error(status: u16, text: &str) -> (u16, String) {
    let answer = parse(text);
    assert!(answer["requestId"].is_string() && answer["message"].is_string(), "{text}");
    (status, answer["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn zenlayer_refuses_bad_signatures_stale_times_replays_and_bad_input() {
    let server = server().await;
    let now = now_ms() / 1000;
    let action = "DescribeRechargeRefundHistory";
    let check = |expect: (u16, &str), (status, text): (u16, String)| {
        assert_eq!(zen_error(status, &text), (expect.0, expect.1.to_owned()), "{text}");
    };
    check((401, "SIGNATURE_FAILURE"), server.send(zenlayer(action, ZEN_SEED, now, "wrong")).await);
    check((401, "SIGNATURE_EXPIRED"), server.send(zenlayer(action, ZEN_SEED, now - 3600, ZEN_SECRET)).await);
    check((400, "INVALID_ACTION"), server.send(zenlayer("DescribeInstances", ZEN_SEED, now, ZEN_SECRET)).await);
    let big = ZEN_SEED.replace("\"pageSize\": 10", "\"pageSize\": 5001");
    check((400, "INVALID_PARAMETER"), server.send(zenlayer(action, &big, now, ZEN_SECRET)).await);
    let bad_state = ZEN_SEED.replace("PAY_SUCCESS", "PAID");
    check((400, "INVALID_PARAMETER"), server.send(zenlayer(action, &bad_state, now, ZEN_SECRET)).await);
    let mut unsigned = zenlayer(action, ZEN_SEED, now, ZEN_SECRET);
    unsigned.headers_mut().remove(header::AUTHORIZATION);
    check((401, "INVALID_AUTHORIZATION"), server.send(unsigned).await);
    // The body changed after signing.
    let mut tampered = zenlayer(action, ZEN_SEED, now, ZEN_SECRET);
    *tampered.body_mut() = Body::from(ZEN_SEED.replace("10", "11"));
    check((401, "SIGNATURE_FAILURE"), server.send(tampered).await);
    // Accepted once, refused the second time.
    let (status, text) = server.send(zenlayer(action, ZEN_SEED, now - 1, ZEN_SECRET)).await;
    assert_eq!(status, 200, "{text}");
    check((401, "REQUEST_REPLAYED"), server.send(zenlayer(action, ZEN_SEED, now - 1, ZEN_SECRET)).await);
}

/// The server's own limits answer a dialect client in its provider's shape: TOP's
/// `error_response` and KYBIO's envelope with HTTP 200, Zenlayer's error object with 413.
#[tokio::test]
async fn limits_answer_in_each_dialects_shape() {
    let server = server_with(ServerConfig { body_bytes_max: 1024, ..ServerConfig::default() }).await;
    let big = "x".repeat(4096);
    let top = Request::post("/router/rest?format=json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("remark={big}")))
        .unwrap();
    let (status, text) = server.send(top).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["error_response"]["sub_code"], json!("isv.request-too-large"), "{text}");
    let kybio = Request::post("/openapi/v1/customerOpenApi/queryCustomerRechargeLog")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(format!("{{\"appId\": \"{big}\"}}")))
        .unwrap();
    let (status, text) = server.send(kybio).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(parse(&text)["status"], json!("error"), "{text}");
    let zenlayer = Request::post("/api/v2/zbc")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-zc-action", "DescribeRechargeRefundHistory")
        .body(Body::from(format!("{{\"x\": \"{big}\"}}")))
        .unwrap();
    let (status, text) = server.send(zenlayer).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(parse(&text)["code"], json!("REQUEST_TOO_LARGE"), "{text}");
    assert!(parse(&text)["requestId"].is_string(), "{text}");
}
