//! The operator console at `/console`.

use axum::http::HeaderMap;
use axum::Router;

use crate::AppState;

/// The console's cookie.
pub const COOKIE: &str = "purse_key";

pub fn routes() -> Router<AppState> {
    Router::new()
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
