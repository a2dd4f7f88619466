//! The operator console at `/console`: pages for the people who run the ledger, made on the
//! server from the ledger's own reads. No script and no build step: HTML with inline CSS, and
//! charts as inline SVG, every value escaped through one helper (`console/html.rs`).
//!
//! - `/console`: what the ledger owes now, and a search by account id or card id;
//! - `/console/account?account_id=…` (or `?card_id=…`): balances, held and available value,
//!   status, expiring lots, open holds, a chart of the balances, the flows filtered and paged;
//! - `/console/liability[?at=…]`: the liability in all and by brand, with its expiring windows;
//! - `/console/reconcile`: a provider export run through purse-ingest as a dry run, and its
//!   report (what would be applied, what was rejected, every stated balance that differs).
//!
//! Access is by the API's own keys, scope `read`. `/console/login` takes a key (the form, or a
//! link `?key=…&next=/console/…`) and keeps it in an HttpOnly, SameSite=Strict cookie scoped to
//! `/console`, which [`AppState::authorize`] accepts like any API key ([`cookie_key`]). Any other
//! page without a valid key answers 303 to the login page, which afterwards returns to the page
//! asked for: only ever a `/console` path of this server ([`safe_next`]). The key is never
//! logged and never written into a page.
//!
//! **Architecture Invariant:** the console decides nothing and writes nothing. It reads through
//! the same `Ledger` calls as the native API, and reconciliation is purse-ingest's dry run.

mod account;
mod chart;
mod html;
mod overview;
mod reconcile;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use purse_core::Timestamp;

use crate::error::{ApiError, ErrorCodeTag};
use crate::{AppState, Scope};
use html::{escape, Section};

/// The console's cookie.
pub const COOKIE: &str = "purse_key";
/// The cookie goes with console pages only; the API takes its key in a header.
const COOKIE_PATH: &str = "/console";
const LOGIN_PATH: &str = "/console/login";
/// Where a login goes when it was given no `next`, or one that is not followed.
const HOME_PATH: &str = "/console";
/// A `next` longer than this is not followed: it is a page of the console, not a payload.
const NEXT_BYTES_MAX: usize = 2048;
/// A key longer than this is not one of ours (`pk_` + 12 + `_` + 40 characters).
const KEY_BYTES_MAX: usize = 128;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::overview))
        .route("/console/login", get(login_get).post(login_post))
        .route("/console/logout", post(logout))
        .route("/console/account", get(account::account))
        .route("/console/liability", get(overview::liability))
        .route("/console/reconcile", get(reconcile::form).post(reconcile::run))
}

/// The API key in the console's cookie, if any.
pub fn cookie_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `next` if it is a path of the console that a login may send the browser to, else the
/// console's home. Refused: anything that is not `/console`, `/console/…` or `/console?…`
/// (another host as `//host`, a scheme, a backslash that some browsers read as a slash), dot
/// segments that would climb out of `/console`, and anything but visible ASCII (a browser sends
/// the path percent-encoded, so a space or a control character is not a link it made).
pub fn safe_next(next: Option<&str>) -> &str {
    let Some(next) = next else { return HOME_PATH };
    let Some(rest) = next.strip_prefix(HOME_PATH) else { return HOME_PATH };
    let under_console = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    let visible = next.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'\\');
    let path = next.split(['?', '#']).next().unwrap_or(next);
    let climbs = path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    });
    if next.len() <= NEXT_BYTES_MAX && under_console && visible && !climbs {
        next
    } else {
        HOME_PATH
    }
}

/// `None` when the request carries a key that may read; otherwise the answer to send instead:
/// 303 to the login page, which comes back to this page once a key is given.
fn login_redirect(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    state.authorize(headers, Scope::Read).err().map(|_| {
        let next = uri.path_and_query().map_or(HOME_PATH, |path| path.as_str());
        let location = format!("{LOGIN_PATH}{}", html::query_string([("next", safe_next(Some(next)))]));
        redirect(&location, None)
    })
}

/// 303 See Other to `location` (a path of this server), setting `cookie` if given.
fn redirect(location: &str, cookie: Option<&str>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    } else {
        headers.insert(header::LOCATION, HeaderValue::from_static(HOME_PATH));
    }
    if let Some(cookie) = cookie.and_then(|cookie| HeaderValue::from_str(cookie).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The pairs of a query string or of a form body, in order.
fn pairs(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text).into_owned().collect()
}

/// The first value of `name`, trimmed, if it is not empty (an empty form field is no field).
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim()).filter(|value| !value.is_empty())
}

/// Now by the wall clock, for the expiring windows: the ledger keeps no clock of its own.
fn now() -> Timestamp {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// A page that could not be made: the error's status, code and message, in the frame.
fn failure(error: &ApiError, section: Section) -> Response {
    let body = format!(
        "{}<p><a href=\"{HOME_PATH}\">Back to the overview</a></p>\n",
        html::notice("error", &format!("{}: {}", error.code.as_str(), error.message))
    );
    let mut response = html::page(error.status, "Cannot show this page", section, &body);
    response.extensions_mut().insert(ErrorCodeTag(error.code));
    response
}

/// `GET /console/login`: the form, or, with `key`, the login itself (a link that signs in).
async fn login_get(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let pairs = pairs(query.unwrap_or_default().as_bytes());
    let next = safe_next(field(&pairs, "next"));
    match field(&pairs, "key") {
        Some(key) => sign_in(&state, key, next),
        None => login_form(next, None),
    }
}

/// `POST /console/login` with the form's `key` and `next`.
async fn login_post(State(state): State<AppState>, body: Bytes) -> Response {
    let pairs = pairs(&body);
    let next = safe_next(field(&pairs, "next"));
    match field(&pairs, "key") {
        Some(key) => sign_in(&state, key, next),
        None => login_form(next, Some("Enter an API key.")),
    }
}

/// Checks `key` and, when it is a live key, keeps it in the cookie and goes to `next` (already
/// checked by [`safe_next`]). Every scope may read, so any live key signs in.
fn sign_in(state: &AppState, key: &str, next: &str) -> Response {
    let known = key.len() <= KEY_BYTES_MAX && state.keys().current().authorize(key).is_some();
    // A key of ours is `pk_`, hex and `_`: safe as a cookie value as it is.
    let cookie_safe = key.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !(known && cookie_safe) {
        return login_form(next, Some("That key is unknown or revoked."));
    }
    let cookie = format!("{COOKIE}={key}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict");
    redirect(next, Some(&cookie))
}

/// The login form, with `problem` (401) or without it (200). The key given is never echoed.
fn login_form(next: &str, problem: Option<&str>) -> Response {
    let status = if problem.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let notice = problem.map(|problem| html::notice("error", problem)).unwrap_or_default();
    let body = format!(
        "{notice}<p>Sign in with a purse API key (any scope; make one with <code>purse keys add</code>).</p>\n\
         <form method=\"post\" action=\"{LOGIN_PATH}\" class=\"inline\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <label>API key <input type=\"password\" name=\"key\" size=\"60\" autocomplete=\"off\" required autofocus></label>\n\
         <button type=\"submit\">Sign in</button>\n</form>\n",
        escape(next)
    );
    html::page(status, "Sign in", Section::Login, &body)
}

/// `POST /console/logout`: forgets the cookie.
async fn logout() -> Response {
    let cookie = format!("{COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict");
    redirect(LOGIN_PATH, Some(&cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(next: Option<&str>, expect: &str) {
        assert_eq!(safe_next(next), expect, "safe_next({next:?})");
    }

    #[test]
    fn a_login_only_returns_to_console_paths() {
        check(None, "/console");
        check(Some("/console"), "/console");
        check(Some("/console/account?account_id=a-1&page_no=2"), "/console/account?account_id=a-1&page_no=2");
        check(Some("/console?x=1"), "/console?x=1");
        check(Some("/console/account%3Faccount_id"), "/console/account%3Faccount_id");
        // Other hosts, schemes and paths.
        check(Some("https://evil.example/console"), "/console");
        check(Some("//evil.example/console"), "/console");
        check(Some("/\\evil.example"), "/console");
        check(Some("/console\\@evil.example"), "/console");
        check(Some("/consolex"), "/console");
        check(Some("/v1/export"), "/console");
        check(Some("console/account"), "/console");
        check(Some(""), "/console");
        // Climbing out of /console, plainly or percent-encoded.
        check(Some("/console/../v1/export"), "/console");
        check(Some("/console/%2e%2E/v1/export"), "/console");
        check(Some("/console/.%2e"), "/console");
        check(Some("/console/account?next=../x"), "/console/account?next=../x");
        // Not a link a browser made.
        check(Some("/console/a b"), "/console");
        check(Some("/console/\r\nSet-Cookie: x=1"), "/console");
        check(Some("/console/卡"), "/console");
        let long = format!("/console/{}", "a".repeat(NEXT_BYTES_MAX));
        check(Some(&long), "/console");
    }

    #[test]
    fn form_fields_are_trimmed_and_empty_ones_absent() {
        let pairs = pairs(b"account_id=+a%26b+&card_id=&flow_type=HOLD&flow_type=DEDUCT");
        assert_eq!(field(&pairs, "account_id"), Some("a&b"));
        assert_eq!(field(&pairs, "card_id"), None);
        assert_eq!(field(&pairs, "flow_type"), Some("HOLD"));
        assert_eq!(field(&pairs, "missing"), None);
    }
}
