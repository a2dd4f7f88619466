//! The providers' own API shapes: a client written against a provider's documentation talks
//! to purse by changing its base URL and keys.
//!
//! - [`top`]: Alibaba's TOP gateway, `POST /router/rest`, with the ALSC stored-value methods
//!   of [`alsc`]; signed with `sign_method` md5, hmac or hmac-sha256.
//! - [`kybio`]: KYBIO's (Pospal's) open API under `/openapi/v1/customerOpenApi/`, signed with
//!   `data-signature` = MD5(appKey + body).
//! - [`zenlayer`]: Zenlayer's Cloud API v2 `POST /api/v2/zbc`, signed with ZC2-HMAC-SHA256.
//!
//! Every signed request passes the app key's secret check, then the clock-skew and replay
//! guard ([`crate::replay`]), then its scope, before anything reaches the ledger. docs/dialects.md
//! is the user guide: routes, field mappings, error mapping and the choices made here.
//!
//! **Architecture Invariant:** a dialect only translates. Every write is a `purse_core::Command`
//! submitted to the ledger, as the native API submits it; amounts go from the provider's text
//! to `Amount` and back without a float.

pub(crate) mod alsc;
pub mod kybio;
pub mod top;
pub mod zenlayer;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::value::RawValue;

use crate::AppState;

/// Members of one request object, at most: a provider object has a dozen.
const OBJECT_MEMBERS_MAX: usize = 64;

/// The dialects' paths.
pub(crate) const PATHS: [&str; 4] = [top::PATH, kybio::QUERY_PATH, kybio::UPDATE_PATH, zenlayer::PATH];

/// The answer a dialect client gets when the server's own limits refuse its request before
/// the dialect saw it (408: too slow, 413: too large), in that dialect's shape; `None` for a
/// path that is not a dialect's.
pub(crate) fn limit_error(
    path: &str,
    status: StatusCode,
    message: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response> {
    let mut response = match path {
        top::PATH => top::limit_error(status, message, query),
        kybio::QUERY_PATH | kybio::UPDATE_PATH => kybio::limit_error(message),
        zenlayer::PATH => return Some(zenlayer::limit_error(status, message, headers)),
        _ => return None,
    };
    // Already in the dialect's shape: the router must not rewrite it.
    response.extensions_mut().insert(crate::error::ErrorCodeTag(purse_core::ErrorCode::InvalidArgument));
    Some(response)
}

/// Every dialect's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(top::PATH, post(top::handle))
        .route(kybio::QUERY_PATH, post(kybio::query_recharge_log))
        .route(kybio::UPDATE_PATH, post(kybio::update_balance))
        .route(zenlayer::PATH, post(zenlayer::handle))
}

/// Compares a signature with the one computed, ignoring hex case, in constant time.
pub(crate) fn same_signature(computed: &str, given: &str) -> bool {
    crate::keys::constant_time_eq(&computed.to_ascii_uppercase(), &given.trim().to_ascii_uppercase())
}

/// The request id the router's layer gave this request (`x-request-id`), for answers that
/// carry one.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or("-").to_owned()
}

/// A deterministic id from request content: purse-ingest's, so a record read from a
/// provider's export and the same record served here name the same thing.
pub(crate) use purse_ingest::content_id;

/// An answer with a body already rendered.
pub(crate) fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An exact decimal text as a JSON number (never through a float).
pub(crate) fn json_number(text: String) -> Box<RawValue> {
    // `Amount::format` writes `-?digits(.digits)?`, always a valid JSON number; the fallback
    // is never taken and would still be valid JSON.
    RawValue::from_string(text).unwrap_or_else(|_| RawValue::from_string("0".to_owned()).unwrap_or_default())
}

/// One JSON object of a request, strictly checked (no duplicate keys, no lone surrogates),
/// kept as its members' exact texts: numbers are never read through a float.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    members: Vec<(String, String)>,
}

/// What is wrong with a request object's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldError {
    /// The object is not JSON, or not an object.
    NotAnObject(String),
    /// A required member is absent (or null).
    Missing(&'static str),
    /// A member has a value of the wrong kind, or a key nobody expects.
    Invalid(String, String),
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::NotAnObject(why) => write!(f, "{why}"),
            FieldError::Missing(field) => write!(f, "{field} is required"),
            FieldError::Invalid(field, why) => write!(f, "{field}: {why}"),
        }
    }
}

impl Object {
    pub(crate) fn parse(text: &str) -> Result<Object, FieldError> {
        purse_wire::strict_json::check(text)
            .map_err(|error| FieldError::NotAnObject(format!("not valid JSON: {error}")))?;
        let members = serde_json::from_str::<purse_wire::strict_json::Members<'_>>(text)
            .map_err(|_| FieldError::NotAnObject("not a JSON object".to_owned()))?
            .0;
        if members.len() > OBJECT_MEMBERS_MAX {
            return Err(FieldError::NotAnObject(format!("more than {OBJECT_MEMBERS_MAX} members")));
        }
        Ok(Object { members: members.into_iter().map(|(key, value)| (key, value.get().trim().to_owned())).collect() })
    }

    /// Refuses a key outside `known` (a typo must not quietly do something else).
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), FieldError> {
        match self.members.iter().find(|(key, _)| !known.contains(&key.as_str())) {
            Some((key, _)) => {
                Err(FieldError::Invalid(key.clone(), format!("unknown field; expected {}", known.join(", "))))
            }
            None => Ok(()),
        }
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|(name, _)| name == key).map(|(_, raw)| raw.as_str()).filter(|raw| *raw != "null")
    }

    /// A string's text, or a number's exact text; `None` when absent or null.
    pub(crate) fn text(&self, key: &str) -> Result<Option<String>, FieldError> {
        let Some(raw) = self.raw(key) else { return Ok(None) };
        let invalid = |why: &str| FieldError::Invalid(key.to_owned(), why.to_owned());
        match raw.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(raw).map(Some).map_err(|_| invalid("not a valid string")),
            Some(b'-' | b'0'..=b'9') => Ok(Some(raw.to_owned())),
            _ => Err(invalid("expected a text or a number")),
        }
    }

    pub(crate) fn required(&self, key: &'static str) -> Result<String, FieldError> {
        self.text(key)?.filter(|text| !text.is_empty()).ok_or(FieldError::Missing(key))
    }

    /// `true`/`false`, as a JSON boolean or as text.
    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, FieldError> {
        match self.raw(key) {
            None => Ok(None),
            Some("true" | "\"true\"") => Ok(Some(true)),
            Some("false" | "\"false\"") => Ok(Some(false)),
            Some(_) => Err(FieldError::Invalid(key.to_owned(), "expected true or false".to_owned())),
        }
    }

    /// A list of texts: a JSON array of strings, or one comma-separated string.
    pub(crate) fn list(&self, key: &str) -> Result<Vec<String>, FieldError> {
        let Some(raw) = self.raw(key) else { return Ok(Vec::new()) };
        let invalid = || FieldError::Invalid(key.to_owned(), "expected a list of texts".to_owned());
        let items: Vec<String> = if raw.starts_with('[') {
            serde_json::from_str(raw).map_err(|_| invalid())?
        } else if raw.starts_with('"') {
            let text: String = serde_json::from_str(raw).map_err(|_| invalid())?;
            text.split(',').map(|item| item.trim().to_owned()).collect()
        } else {
            return Err(invalid());
        };
        Ok(items.into_iter().filter(|item| !item.is_empty()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_keep_exact_texts() {
        let object =
            Object::parse(r#"{"a": 12.50, "b": "x", "c": true, "d": null, "e": ["P", "Q"], "f": "P, Q"}"#).unwrap();
        assert_eq!(object.text("a"), Ok(Some("12.50".to_owned())));
        assert_eq!(object.text("b"), Ok(Some("x".to_owned())));
        assert!(object.text("c").is_err());
        assert_eq!(object.text("d"), Ok(None));
        assert_eq!(object.required("d"), Err(FieldError::Missing("d")));
        assert_eq!(object.boolean("c"), Ok(Some(true)));
        assert_eq!(object.list("e"), Ok(vec!["P".to_owned(), "Q".to_owned()]));
        assert_eq!(object.list("f"), Ok(vec!["P".to_owned(), "Q".to_owned()]));
        assert!(object.only(&["a", "b"]).is_err());
        assert!(Object::parse(r#"{"a": 1, "a": 2}"#).is_err());
        assert!(Object::parse("[1]").is_err());
    }
}
