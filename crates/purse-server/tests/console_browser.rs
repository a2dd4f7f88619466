//! The operator console in a real browser: a ledger seeded in a temporary directory (charges,
//! deducts, holds, a freeze, a gift with expiry, a second brand), served on 127.0.0.1, and every
//! page read back from headless Chromium's rendered DOM, then saved as a screenshot under
//! `target/console-screenshots/`.
//!
//! The browser test is `#[ignore]`: `cargo test` must pass on a machine with only Rust. CI
//! installs Chromium (`bash .ci/install-chromium`) and runs
//! `cargo test -p purse-server --test console_browser -- --ignored`; without /usr/bin/chromium
//! that run fails, it never passes silently. The login's cookie and redirect rules are also
//! checked in process, without a browser, by the test that is not ignored.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use purse_core::{Timestamp, Zone};
use purse_ledger::{Ledger, LedgerConfig};
use purse_server::{AppState, KeyStore, Keys, Scope, ServerConfig};
use tower::ServiceExt;

const CHROMIUM: &str = "/usr/bin/chromium";
/// A Chromium run that takes longer than this is killed and fails the test.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);
const DAY_SECONDS: i64 = 86_400;
/// The test's own page that posts the reconciliation form (the browser cannot POST from the
/// command line): under /console so that the login may return to it, same origin as the form.
const RECONCILE_SUBMIT_PATH: &str = "/console/test-submit-reconcile";

/// A served ledger: its address, the read key the browser signs in with, and its state.
struct Served {
    base: String,
    read_key: String,
    state: AppState,
}

#[test]
#[ignore = "needs Chromium at /usr/bin/chromium (bash .ci/install-chromium); CI runs it with --ignored"]
fn console_pages_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install it with `bash .ci/install-chromium` (this test needs a real browser)"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let served = runtime.block_on(serve(dir.path()));
    let browser = Browser { profiles: dir.path().join("profiles"), screenshots: screenshot_dir(), runs: 0 };
    let login = |next: &str| format!("{}/console/login?key={}&next={}", served.base, served.read_key, urlencoded(next));
    let mut browser = browser;

    // Without the cookie every page sends the browser to the login form, which returns there.
    let dom = browser.dom(&format!("{}/console/account?account_id=acct-1", served.base));
    assert!(dom.contains("name=\"key\"") && dom.contains("value=\"/console/account?account_id=acct-1\""), "{dom}");
    assert!(!dom.contains("150.00"), "no balance before signing in: {dom}");
    let dom = browser.dom(&format!("{}/console/login?key=pk_000000000000_00&next=/console", served.base));
    assert!(dom.contains("That key is unknown or revoked."), "{dom}");

    let dom = browser.dom(&login("/console"));
    assert!(card(&dom, "liability-total").contains("225.00"), "two accounts, 150.00 and 75.00: {dom}");
    assert!(card(&dom, "liability-held").contains("40.00"), "{dom}");
    assert!(dom.contains("name=\"account_id\"") && dom.contains("name=\"card_id\""), "the search form: {dom}");

    let dom = browser.dom(&login("/console/account?account_id=acct-1"));
    check_account_page(&dom);
    let dom = browser.dom(&login("/console/account?card_id=CARD-1&flow_type=DEDUCT"));
    let flows = section(&dom, "<table class=\"flows\">", "</table>");
    assert!(dom.contains("1 flows match; page 1 of 1."), "{dom}");
    assert!(
        flows.contains("<td>DEDUCT</td>") && flows.contains("-50.00") && !flows.contains("<td>HOLD</td>"),
        "{flows}"
    );
    let dom = browser.dom(&login("/console/account?account_id=acct-1&page_size=3&page_no=2"));
    assert!(dom.contains("7 flows match; page 2 of 3."), "{dom}");
    assert!(dom.contains("rel=\"prev\"") && dom.contains("rel=\"next\""), "{dom}");
    assert_eq!(section(&dom, "<table class=\"flows\">", "</table>").matches("<tr>").count(), 4, "a header and 3 flows");
    let dom = browser.dom(&login("/console/account?account_id=acct-1&start_time=yesterday"));
    assert!(dom.contains("INVALID_ARGUMENT: start_time: \"yesterday\" is not a time"), "{dom}");
    assert!(card(&dom, "account-total").contains("150.00"), "a bad filter leaves the rest of the page: {dom}");

    let dom = browser.dom(&login("/console/liability"));
    let balances = section(&dom, "<table class=\"liability\">", "</table>");
    for expect in ["<td>brand-a</td>", "<td>brand-b</td>", "225.00", "150.00", "75.00", "185.00"] {
        assert!(balances.contains(expect), "{expect} in {balances}");
    }
    let expiring = section(&dom, "<table class=\"expiring\">", "</table>");
    assert!(expiring.contains("17.65"), "the gift left in its lot expires within 30 days: {expiring}");

    let dom = browser.dom(&login("/console/reconcile"));
    assert!(dom.contains("<textarea name=\"export\""), "{dom}");
    let dom = browser.dom_after_script(&login(RECONCILE_SUBMIT_PATH));
    check_reconcile_report(&dom);
    let acct_2 = runtime.block_on(served.state.ledger().account("acct-2")).unwrap();
    assert_eq!(acct_2.balance.total().unwrap().format(served.state.units().scale), "75.00", "a dry run wrote nothing");

    browser.screenshot("login", &format!("{}/console/login", served.base));
    browser.screenshot("overview", &login("/console"));
    browser.screenshot("account", &login("/console/account?account_id=acct-1"));
    browser.screenshot("liability", &login("/console/liability"));
    browser.screenshot("reconcile", &login(RECONCILE_SUBMIT_PATH));
    runtime.block_on(served.state.ledger().clone().close()).unwrap();
}

fn check_account_page(dom: &str) {
    assert!(card(dom, "account-total").contains("150.00"), "{dom}");
    assert!(card(dom, "account-held").contains("40.00"), "{dom}");
    assert!(card(dom, "account-available").contains("110.00"), "{dom}");
    assert!(dom.contains("id=\"account-status\">FROZEN</span>"), "{dom}");
    let balances = section(dom, "<table class=\"balances\">", "</table>");
    for expect in [
        "<td>REAL</td><td class=\"num\">132.35</td>",
        "<td>GIFT</td><td class=\"num\">17.65</td>",
        "<td>TOTAL</td><td class=\"num\">150.00</td>",
    ] {
        assert!(balances.contains(expect), "{expect} in {balances}");
    }
    let holds = section(dom, "<table class=\"holds\">", "</table>");
    assert!(holds.contains("<td>h-1</td>") && holds.contains("40.00"), "the open hold: {holds}");
    assert!(!holds.contains("h-2"), "the released hold is not open: {holds}");
    let expiring = section(dom, "<table class=\"expiring\">", "</table>");
    assert!(expiring.contains("<td>GIFT</td><td class=\"num\">17.65</td>"), "{expiring}");
    let chart = section(dom, "<svg class=\"chart\"", "</svg>");
    for bucket in ["REAL", "GIFT", "PRE", "TOTAL"] {
        assert_eq!(chart.matches(&format!("<polyline data-bucket=\"{bucket}\"")).count(), 1, "{bucket}: {chart}");
    }
    assert!(chart.contains(">150.00<") && chart.contains("TOTAL after flow 7: 150.00"), "{chart}");
    let flows = section(dom, "<table class=\"flows\">", "</table>");
    for flow_type in ["CHARGE", "DEDUCT", "HOLD", "RELEASE", "FREEZE"] {
        assert!(flows.contains(&format!("<td>{flow_type}</td>")), "{flow_type} in {flows}");
    }
    assert!(dom.contains("7 flows match; page 1 of 1."), "{dom}");
    assert!(flows.contains("<td>lost card</td>"), "{flows}");
}

fn check_reconcile_report(dom: &str) {
    assert!(card(dom, "report-records").contains(">2<"), "{dom}");
    assert!(card(dom, "report-mismatches").contains(">1<"), "{dom}");
    assert!(dom.contains("Written to the ledger: no (dry run)."), "{dom}");
    let accounts = section(dom, "<table class=\"accounts\">", "</table>");
    assert!(accounts.contains(">acct-2</a>") && accounts.contains(">kb-new</a>"), "{accounts}");
    let mismatches = section(dom, "<table class=\"mismatches\">", "</table>");
    for expect in ["acct-2", "<td>after</td>", "<td>TOTAL</td>", "120.00", "100.00", "20.00"] {
        assert!(mismatches.contains(expect), "{expect} in {mismatches}");
    }
}

/// The login's cookie and redirect rules, in process (no browser needed).
#[test]
fn login_sets_a_strict_cookie_and_refuses_open_redirects() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let served = serve(dir.path()).await;
        let app = purse_server::router(served.state.clone());
        let send = |request: Request<Body>| app.clone().oneshot(request);
        let get = |uri: String| Request::get(uri).body(Body::empty()).unwrap();

        let response = send(get("/console/liability".into())).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/console/login?next=%2Fconsole%2Fliability");

        for (next, location) in
            [("//evil.example/", "/console"), ("/console/account?card_id=C", "/console/account?card_id=C")]
        {
            let uri = format!("/console/login?key={}&next={}", served.read_key, urlencoded(next));
            let response = send(get(uri)).await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "next {next}");
            assert_eq!(response.headers()[header::LOCATION], location, "next {next}");
            let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
            assert_eq!(cookie, format!("purse_key={}; Path=/console; HttpOnly; SameSite=Strict", served.read_key));
        }

        let form = format!("key={}&next=%2Fconsole%2Freconcile", served.read_key);
        let post = Request::post("/console/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let response = send(post).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/console/reconcile");

        let wrong = send(get("/console/login?key=pk_0_0&next=/console".into())).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
        let body = axum::body::to_bytes(wrong.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("That key is unknown or revoked.") && !body.contains("pk_0_0"), "{body}");

        let cookie = format!("purse_key={}", served.read_key);
        let page =
            send(Request::get("/console").header(header::COOKIE, &cookie).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'none'"));
        let missing = send(
            Request::get("/console/account?account_id=nobody")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "an unknown account is the ledger's 404, as HTML");
        assert_eq!(missing.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");

        let logout =
            send(Request::post("/console/logout").header(header::COOKIE, &cookie).body(Body::empty()).unwrap())
                .await
                .unwrap();
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            logout.headers()[header::SET_COOKIE],
            "purse_key=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"
        );
        served.state.ledger().clone().close().await.unwrap();
    });
}

/// Opens a ledger in `dir`, seeds it, and serves the console (and the test's reconcile page)
/// on 127.0.0.1 on a free port.
async fn serve(dir: &Path) -> Served {
    let ledger = Ledger::open(LedgerConfig::new(dir.join("ledger"))).await.unwrap();
    let mut keys = Keys::load(&dir.join("keys")).unwrap();
    let (_, read_key) = keys.add_key("console", Scope::Read).unwrap();
    let (_, write_key) = keys.add_key("seed", Scope::Write).unwrap();
    let state = AppState::new(ledger, KeyStore::fixed(keys), ServerConfig::default());
    let app = purse_server::router(state.clone());
    seed(&app, &write_key).await;
    let app = app.merge(Router::new().route(RECONCILE_SUBMIT_PATH, get(|| async { Html(reconcile_submit_page()) })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Served { base, read_key, state }
}

/// Two accounts of two brands. acct-1 (brand-a, card CARD-1): CHARGE 100.00 + gift 20.00 that
/// expires in 20 days, CHARGE 50.00 + PRE 30.00, DEDUCT 50.00 (PRE 30.00 first, then 20.00 split
/// 17.65 REAL / 2.35 GIFT), HOLD 40.00 (open), HOLD 10.00 and its RELEASE, FREEZE: REAL 132.35,
/// GIFT 17.65, TOTAL 150.00, held 40.00, FROZEN. acct-2 (brand-b): CHARGE 80.00, DEDUCT 5.00.
async fn seed(app: &Router, write_key: &str) {
    let now = unix_now();
    let time = |days: i64| Zone::CHINA.format_local(Timestamp(now + days * DAY_SECONDS));
    let acct_1 = |request: &str, order: &str, days: i64| serde_json::json!({"request_id": request, "outer_order_id": order, "account_id": "acct-1", "biz_date": time(days)});
    let with = |mut base: serde_json::Value, more: serde_json::Value| {
        base.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        base
    };
    let writes = [
        (
            "charge",
            with(
                acct_1("r-1", "c-1", -10),
                serde_json::json!({"card_id": "CARD-1", "brand_id": "brand-a", "real_value": "100.00", "gift_value": "20.00", "gift_expire_time": time(20)}),
            ),
        ),
        ("charge", with(acct_1("r-2", "c-2", -9), serde_json::json!({"real_value": "50.00", "pre_value": "30.00"}))),
        ("deduct", with(acct_1("r-3", "d-1", -8), serde_json::json!({"value": "50.00"}))),
        ("hold", with(acct_1("r-4", "h-1", -7), serde_json::json!({"value": "40.00", "expire_time": time(30)}))),
        ("hold", with(acct_1("r-5", "h-2", -6), serde_json::json!({"value": "10.00"}))),
        ("release", with(acct_1("r-6", "h-2-release", -5), serde_json::json!({"src_outer_order_id": "h-2"}))),
        ("freeze", with(acct_1("r-7", "f-1", -4), serde_json::json!({"remark": "lost card"}))),
        (
            "charge",
            serde_json::json!({"request_id": "r-8", "outer_order_id": "c-3", "account_id": "acct-2", "card_id": "CARD-2", "brand_id": "brand-b", "real_value": "80.00", "biz_date": time(-3)}),
        ),
        (
            "deduct",
            serde_json::json!({"request_id": "r-9", "outer_order_id": "d-2", "account_id": "acct-2", "value": "5.00", "biz_date": time(-2)}),
        ),
    ];
    for (command, body) in writes {
        let request = Request::post(format!("/v1/{command}"))
            .header(header::AUTHORIZATION, format!("Bearer {write_key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let text = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{command} {body}: {}", String::from_utf8_lossy(&text));
    }
}

/// A page that posts a KYBIO export to the reconcile form as soon as it loads: a recharge of
/// 25.00 on acct-2 that states 120.00 after it (the ledger would have 100.00: one mismatch),
/// and one of 10.00 on an account new to the ledger that states its balance right.
fn reconcile_submit_page() -> String {
    let time = Zone::CHINA.format_local(Timestamp(unix_now() - DAY_SECONDS));
    let export = serde_json::json!({"status": "success", "data": [
        {"customerUid": "acct-2", "rechargeMoney": "25", "giftMoney": 0, "datetime": time, "payMethod": "Cash", "customerMoneyAfterRecharge": "120.00"},
        {"customerUid": "kb-new", "rechargeMoney": "10", "giftMoney": 0, "datetime": time, "payMethod": "Cash", "customerMoneyAfterRecharge": "10.00"},
    ]});
    let export = export.to_string().replace('&', "&amp;").replace('<', "&lt;");
    format!(
        "<!DOCTYPE html><html><body><form id=\"reconcile\" method=\"post\" action=\"/console/reconcile\">\
         <input name=\"provider\" value=\"kybio\"><input name=\"opening_balances\" value=\"on\">\
         <textarea name=\"export\">{export}</textarea></form>\
         <script>document.getElementById('reconcile').submit();</script></body></html>"
    )
}

/// Headless Chromium runs, each with a fresh profile.
struct Browser {
    profiles: PathBuf,
    screenshots: PathBuf,
    runs: u32,
}

impl Browser {
    /// The DOM of `url` once it loaded (redirects followed, the cookie they set kept).
    fn dom(&mut self, url: &str) -> String {
        self.run(&["--dump-dom", url])
    }

    /// The DOM once the page's own script has navigated on (the reconcile form's submission).
    fn dom_after_script(&mut self, url: &str) -> String {
        self.run(&["--virtual-time-budget=10000", "--dump-dom", url])
    }

    fn screenshot(&mut self, name: &str, url: &str) {
        let path = self.screenshots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        let argument = format!("--screenshot={}", path.display());
        self.run(&["--virtual-time-budget=10000", &argument, "--window-size=1280,1600", url]);
        let bytes = std::fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or(0);
        assert!(bytes > 0, "no screenshot at {} for {name}", path.display());
    }

    /// Runs Chromium with `arguments` and answers its stdout; killed after [`BROWSER_TIMEOUT`].
    fn run(&mut self, arguments: &[&str]) -> String {
        self.runs += 1;
        let profile = self.profiles.join(format!("run-{}", self.runs));
        std::fs::create_dir_all(&profile).unwrap();
        let stdout_path = profile.with_extension("stdout");
        let stderr_path = profile.with_extension("stderr");
        let mut child = Command::new(CHROMIUM)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {CHROMIUM}: {error}"));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > BROWSER_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{CHROMIUM} {arguments:?} took over {BROWSER_TIMEOUT:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        assert!(status.success(), "{CHROMIUM} {arguments:?}: {status}\n{stderr}");
        std::fs::read_to_string(&stdout_path).unwrap()
    }
}

/// `target/console-screenshots/` of the workspace: CARGO_TARGET_DIR, or the manifest's
/// ../../target.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text from `start` up to and including the next `end`; fails the test when absent.
fn section<'a>(dom: &'a str, start: &str, end: &str) -> &'a str {
    let from = dom.find(start).unwrap_or_else(|| panic!("{start} is not in the page: {dom}"));
    let to = dom[from..].find(end).unwrap_or_else(|| panic!("{start} has no {end}")) + from + end.len();
    &dom[from..to]
}

/// One headline card of a page, by its id.
fn card<'a>(dom: &'a str, id: &str) -> &'a str {
    section(dom, &format!("<div class=\"card\" id=\"{id}\">"), "</div></div>")
}

fn urlencoded(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn unix_now() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}
