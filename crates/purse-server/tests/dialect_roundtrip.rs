//! What each dialect serves reads back through purse-ingest of the same provider to the same
//! flows and balances: random flows are written to a ledger, fetched through the dialect (as a
//! provider's client fetches them, signed), ingested into a fresh ledger, and compared.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use proptest::prelude::*;
use purse_core::{Action, Amount, Buckets, Command, Timestamp, Zone};
use purse_ingest::{Input, Options, Provider, Silent};
use purse_ledger::{FlowQuery, Ledger, LedgerConfig};
use purse_server::keys::Dialect;
use purse_server::{router, AppState, KeyStore, Keys, Scope, ServerConfig};
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

const SECRET: &str = "round-trip-secret";
/// 2024-01-01 00:00:00 +08:00; each operation a minute after the one before.
const START: i64 = 1_704_038_400;

/// One random write. Amounts in fen; `pick` chooses among the earlier orders of its kind.
#[derive(Debug, Clone)]
enum Op {
    Charge { account: usize, real: i64, gift: i64, pre: i64 },
    Deduct { account: usize, value: i64 },
    Undeduct { pick: usize, value: Option<i64> },
    Uncharge { pick: usize },
    Derate { account: usize, value: i64 },
    Hold { account: usize, value: i64 },
    Release { pick: usize },
}

fn ops(accounts: usize, buckets: bool, holds: bool) -> impl Strategy<Value = Vec<Op>> {
    let account = 0..accounts;
    let amount = 1i64..5_000;
    let bonus = move || if buckets { (0i64..2_000).boxed() } else { Just(0i64).boxed() };
    let op = prop_oneof![
        4 => (account.clone(), amount.clone(), bonus(), bonus()).prop_map(|(account, real, gift, pre)| Op::Charge { account, real, gift, pre }),
        3 => (account.clone(), amount.clone()).prop_map(|(account, value)| Op::Deduct { account, value }),
        2 => (any::<usize>(), proptest::option::of(1i64..3_000)).prop_map(|(pick, value)| Op::Undeduct { pick, value }),
        1 => any::<usize>().prop_map(|pick| Op::Uncharge { pick }),
        1 => (account.clone(), amount.clone()).prop_map(|(account, value)| Op::Derate { account, value }),
        (if holds { 2 } else { 0 }) => (account, amount).prop_map(|(account, value)| Op::Hold { account, value }),
        (if holds { 1 } else { 0 }) => any::<usize>().prop_map(|pick| Op::Release { pick }),
    ];
    proptest::collection::vec(op, 1..14)
}

struct Source {
    app: Router,
    ledger: Ledger,
    accounts: Vec<String>,
    _dir: tempfile::TempDir,
}

async fn source(dialect: Dialect, accounts: Vec<String>) -> Source {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(LedgerConfig::new(dir.path().join("source"))).await.unwrap();
    let mut keys = Keys { version: 1, ..Keys::default() };
    keys.add_app(dialect, "app", Some(SECRET), Scope::Read).unwrap();
    let state = AppState::new(ledger.clone(), KeyStore::fixed(keys), ServerConfig::default());
    Source { app: router(state), ledger, accounts, _dir: dir }
}

impl Source {
    /// Writes `ops`; the ones the ledger refuses (too little balance, …) are left out.
    async fn write(&self, ops: &[Op]) {
        let fen = |minor: i64| Amount::from_minor(minor);
        let (mut charges, mut deducts, mut holds) = (Vec::new(), Vec::new(), Vec::new());
        for (index, op) in ops.iter().enumerate() {
            let id = format!("op-{index}");
            let pick = |list: &Vec<(String, String)>, pick: usize| list.get(pick % list.len().max(1)).cloned();
            let (account, action) = match op {
                Op::Charge { account, real, gift, pre } => (
                    self.accounts[*account].clone(),
                    Action::Charge { real: fen(*real), gift: Some(fen(*gift)), pre: fen(*pre), trigger_gift: false },
                ),
                Op::Deduct { account, value } => {
                    (self.accounts[*account].clone(), Action::Deduct { value: fen(*value) })
                }
                Op::Undeduct { pick: at, value } => {
                    let Some((account, order)) = pick(&deducts, *at) else { continue };
                    (account, Action::Undeduct { original_outer_order_id: order, value: value.map(fen) })
                }
                Op::Uncharge { pick: at } => {
                    let Some((account, order)) = pick(&charges, *at) else { continue };
                    (account, Action::Uncharge { src_outer_order_id: order })
                }
                Op::Derate { account, value } => {
                    (self.accounts[*account].clone(), Action::Adjust { real: fen(*value), gift: fen(0), pre: fen(0) })
                }
                Op::Hold { account, value } => {
                    (self.accounts[*account].clone(), Action::Hold { value: fen(*value), expire_time: None })
                }
                Op::Release { pick: at } => {
                    let Some((account, order)) = pick(&holds, *at) else { continue };
                    (account, Action::Release { src_outer_order_id: order })
                }
            };
            let mut command = Command::new(&id, &id, &account, action);
            command.biz_date = Some(Timestamp(START + 60 * index as i64));
            if matches!(op, Op::Derate { .. }) {
                command.remark = Some("credit".into());
            }
            if self.ledger.submit(command).await.is_ok() {
                match op {
                    Op::Charge { .. } => charges.push((account, id)),
                    Op::Deduct { .. } => deducts.push((account, id)),
                    Op::Hold { .. } => holds.push((account, id)),
                    _ => {}
                }
            }
        }
    }

    async fn send(&self, request: Request<Body>) -> String {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

/// Each account's flows as (type, affected, held, order time), and its balance.
async fn picture(
    ledger: &Ledger,
    accounts: &[String],
) -> Vec<(String, Vec<(String, Buckets, Buckets, i64)>, Option<Buckets>)> {
    let mut out = Vec::new();
    for account in accounts {
        let mut query = FlowQuery::new(account.clone());
        query.page_size = 5000;
        let flows = match ledger.flows(query).await {
            Ok(page) => page.flows,
            Err(_) => Vec::new(),
        };
        let flows = flows
            .iter()
            .map(|flow| (flow.flow_type.as_str().to_owned(), flow.affected, flow.held, flow.order_time.0))
            .collect();
        let balance = ledger.account(account).await.ok().map(|view| view.balance);
        out.push((account.clone(), flows, balance));
    }
    out
}

/// Ingests `texts` as `provider` into a fresh ledger and compares it with `source`.
async fn ingest_and_compare(source: &Source, provider: Provider, texts: Vec<String>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let target = Ledger::open(LedgerConfig::new(dir.path().join("target"))).await.unwrap();
    let inputs = texts
        .iter()
        .enumerate()
        .map(|(index, text)| Input::new(format!("page-{index}"), std::io::Cursor::new(text.clone().into_bytes())))
        .collect();
    let report = purse_ingest::run(&target, inputs, Options::new(provider), &Silent).await.unwrap();
    prop_assert!(report.rejected.is_empty() && report.mismatches.is_empty(), "{report:?}\n{texts:?}");
    let (want, got) = (picture(&source.ledger, &source.accounts).await, picture(&target, &source.accounts).await);
    let written: usize = want.iter().map(|(_, flows, _)| flows.len()).sum();
    prop_assert!(written > 0, "every case writes at least its first charge");
    if std::env::var_os("ROUNDTRIP_DEBUG").is_some() {
        eprintln!("{provider}: {written} flows, {} texts", texts.len());
    }
    prop_assert_eq!(want, got, "{:?}", texts);
    target.close().await.unwrap();
    Ok(())
}

fn now_seconds() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A TOP call of `method` with its request object, md5-signed, JSON or XML.
fn top(method: &str, param: &str, object: &Value, xml: bool) -> Request<Body> {
    let mut params = vec![
        ("method".to_owned(), method.to_owned()),
        ("app_key".to_owned(), "app".to_owned()),
        ("timestamp".to_owned(), Zone::CHINA.format_local(Timestamp(now_seconds()))),
        ("v".to_owned(), "2.0".to_owned()),
        ("sign_method".to_owned(), "md5".to_owned()),
        (param.to_owned(), object.to_string()),
    ];
    if !xml {
        params.push(("format".to_owned(), "json".to_owned()));
    }
    let mut sorted = params.clone();
    sorted.sort();
    let text: String = sorted.iter().map(|(key, value)| format!("{key}{value}")).collect();
    let sign = hex::encode_upper(Md5::digest(format!("{SECRET}{text}{SECRET}").as_bytes()));
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (key, value) in &params {
        form.append_pair(key, value);
    }
    form.append_pair("sign", &sign);
    Request::post("/router/rest")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.finish()))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// ALSC: the account's flows listed (accountflows.get, in pages), each one's detail fetched
    /// (flowdetail.get, JSON and XML in turn), the details ingested.
    #[test]
    fn alsc_flow_details_read_back(ops in ops(2, true, false)) {
        runtime().block_on(async {
            let source = source(Dialect::Top, vec!["card-a".into(), "card-b".into()]).await;
            let first = Op::Charge { account: 0, real: 10_000, gift: 500, pre: 300 };
            source.write(&[vec![first], ops].concat()).await;
            let mut texts = Vec::new();
            for account in &source.accounts {
                let mut flow_ids = Vec::new();
                for page_no in 1.. {
                    let list = json!({"account_id": account, "page_no": page_no, "page_size": 4});
                    let text = source.send(top("alibaba.alsc.crm.recharge.accountflows.get", "param_query_recharge_account_flows_open_req", &list, false)).await;
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    let page = &answer["alibaba_alsc_crm_recharge_accountflows_get_response"]["result"]["result"];
                    let rows = page["flow_list"]["recharge_account_flow_open_info"].as_array().cloned().unwrap_or_default();
                    flow_ids.extend(rows.iter().map(|row| row["flow_id"].as_str().unwrap().to_owned()));
                    if rows.is_empty() || flow_ids.len() as u64 >= page["total_count"].as_u64().unwrap_or(0) {
                        break;
                    }
                }
                for (index, flow_id) in flow_ids.iter().enumerate() {
                    let request = top("alibaba.alsc.crm.recharge.account.flowdetail.get", "param_query_recharge_account_flow_open_req", &json!({"flow_id": flow_id}), index % 2 == 1);
                    texts.push(source.send(request).await);
                }
            }
            ingest_and_compare(&source, Provider::Alsc, texts).await
        })?;
    }

    /// KYBIO: each customer's recharge log (the log shows recharges only, so only charges of
    /// REAL and GIFT are written).
    #[test]
    fn kybio_recharge_logs_read_back(charges in proptest::collection::vec((0usize..2, 1i64..5_000, 0i64..2_000), 1..10)) {
        runtime().block_on(async {
            let source = source(Dialect::Kybio, vec!["1001".into(), "1002".into()]).await;
            let ops: Vec<Op> = charges.iter().map(|(account, real, gift)| Op::Charge { account: *account, real: *real, gift: *gift, pre: 0 }).collect();
            source.write(&ops).await;
            let mut texts = Vec::new();
            for account in &source.accounts {
                let body = format!(r#"{{"appId":"app","customerUid":{account}}}"#);
                let signature = hex::encode_upper(Md5::digest(format!("{SECRET}{body}").as_bytes()));
                let request = Request::post("/openapi/v1/customerOpenApi/queryCustomerRechargeLog")
                    .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
                    .header("time-stamp", (now_seconds() * 1000).to_string())
                    .header("data-signature", signature)
                    .body(Body::from(body))
                    .unwrap();
                let text = source.send(request).await;
                // An account nobody charged answers an error, which ingest would report.
                if text.contains("\"status\":\"success\"") {
                    texts.push(text);
                }
            }
            ingest_and_compare(&source, Provider::Kybio, texts).await
        })?;
    }

    /// Zenlayer: the whole history in pages (one balance: every flow on REAL), holds included.
    #[test]
    fn zenlayer_history_reads_back(ops in ops(2, false, true)) {
        runtime().block_on(async {
            let source = source(Dialect::Zenlayer, vec!["z-a".into(), "z-b".into()]).await;
            let first = Op::Charge { account: 0, real: 10_000, gift: 0, pre: 0 };
            source.write(&[vec![first], ops].concat()).await;
            let mut texts = Vec::new();
            let mut seen = 0u64;
            for page_num in 1.. {
                let body = json!({"startTime": "2023-12-31T00:00:00Z", "endTime": "2024-02-01T00:00:00Z", "pageSize": 3, "pageNum": page_num}).to_string();
                let timestamp = now_seconds().to_string();
                let payload = hex::encode(<Sha256 as Digest>::digest(body.as_bytes()));
                let canonical = format!("POST\n/\n\ncontent-type:application/json\nhost:localhost\n\ncontent-type;host\n{payload}");
                let to_sign = format!("ZC2-HMAC-SHA256\n{timestamp}\n{}", hex::encode(<Sha256 as Digest>::digest(canonical.as_bytes())));
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
                mac.update(to_sign.as_bytes());
                let signature = hex::encode(mac.finalize().into_bytes());
                let request = Request::post("/api/v2/zbc")
                    .header(header::HOST, "localhost")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("x-zc-action", "DescribeRechargeRefundHistory")
                    .header("x-zc-timestamp", &timestamp)
                    .header(header::AUTHORIZATION, format!("ZC2-HMAC-SHA256 Credential=app, SignedHeaders=content-type;host, Signature={signature}"))
                    .body(Body::from(body))
                    .unwrap();
                let text = source.send(request).await;
                let answer: Value = serde_json::from_str(&text).unwrap();
                let count = answer["response"]["dataSet"].as_array().map_or(0, Vec::len) as u64;
                seen += count;
                if count > 0 {
                    texts.push(text);
                }
                if count == 0 || seen >= answer["response"]["totalCount"].as_u64().unwrap_or(0) {
                    break;
                }
            }
            ingest_and_compare(&source, Provider::Zenlayer, texts).await
        })?;
    }
}
