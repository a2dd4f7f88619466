//! Alibaba's TOP gateway: `POST /router/rest`, the ALSC methods of [`super::alsc`] behind it.
//!
//! Parameters come as a form-urlencoded body, the query string, or both; the common ones are
//! `method`, `app_key`, `timestamp` (`YYYY-MM-DD HH:MM:SS`, GMT+8), `v` (2.0), `sign_method`
//! (`md5`, the default, `hmac` or `hmac-sha256`), `sign`, `format` (`xml`, the default, or
//! `json`) and `simplify`. The signature covers every parameter but `sign`, sorted by name, as
//! name + value: md5 is uppercase hex MD5(secret + that + secret); hmac is HMAC-MD5 and
//! hmac-sha256 HMAC-SHA256, keyed by the secret, over that alone.
//!
//! Every answer is HTTP 200, as TOP's are: `<method_with_underscores>_response` holding the
//! method's `result`, or `error_response` {code, msg, sub_code, sub_msg} for a refusal of the
//! protocol (see [`TopError`]).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use purse_core::Zone;

use super::alsc::Method;
use crate::keys::Dialect;
use crate::replay::{ReplayError, ReplayGuard};
use crate::AppState;

pub const PATH: &str = "/router/rest";

/// Parameters of one request, at most (the common ones and one request object).
const PARAMS_MAX: usize = 32;

/// The zone of every TOP time.
pub(crate) const TOP_ZONE: Zone = Zone::CHINA;

/// The answer's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Xml,
    /// JSON; `simplify`: lists as plain arrays, without the item-type wrapper.
    Json {
        simplify: bool,
    },
}

/// A refusal of the protocol: TOP's public code and message, a `sub_code` (`isv.*`: the
/// caller's fault, `isp.*`: the server's) and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopError {
    pub code: u32,
    pub msg: &'static str,
    pub sub_code: String,
    pub sub_msg: String,
}

impl TopError {
    pub(crate) fn new(
        code: u32,
        msg: &'static str,
        sub_code: impl Into<String>,
        sub_msg: impl Into<String>,
    ) -> TopError {
        TopError { code, msg, sub_code: sub_code.into(), sub_msg: sub_msg.into() }
    }

    pub(crate) fn missing(name: &str) -> TopError {
        TopError::new(
            40,
            "Missing Required Arguments",
            format!("isv.missing-parameter:{name}"),
            format!("{name} is required"),
        )
    }

    pub(crate) fn invalid(name: &str, why: impl std::fmt::Display) -> TopError {
        TopError::new(41, "Invalid Arguments", format!("isv.invalid-parameter:{name}"), format!("{name}: {why}"))
    }

    /// A failure of the server itself (storage).
    pub(crate) fn service(message: impl Into<String>) -> TopError {
        TopError::new(15, "Remote service error", "isp.service-unavailable", message)
    }

    fn document(&self) -> Node {
        Node::Object(vec![
            ("code", Node::Num(self.code.to_string())),
            ("msg", Node::Str(self.msg.to_owned())),
            ("sub_code", Node::Str(self.sub_code.clone())),
            ("sub_msg", Node::Str(self.sub_msg.clone())),
        ])
    }
}

/// An answer document, rendered as TOP renders XML and JSON. Absent values are left out, as
/// TOP leaves them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    Str(String),
    /// A number's exact text.
    Num(String),
    Bool(bool),
    Object(Vec<(&'static str, Node)>),
    /// A list of `item`s: in XML each is an `<item>` element, in JSON `{"item": [...]}`, or a
    /// plain array with `simplify`.
    List {
        item: &'static str,
        items: Vec<Node>,
    },
}

impl Node {
    fn json(&self, out: &mut String, simplify: bool) {
        match self {
            Node::Str(text) => out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())),
            Node::Num(text) => out.push_str(text),
            Node::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Node::Object(members) => {
                out.push('{');
                for (index, (name, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(name);
                    out.push_str("\":");
                    value.json(out, simplify);
                }
                out.push('}');
            }
            Node::List { item, items } => {
                if !simplify {
                    out.push_str("{\"");
                    out.push_str(item);
                    out.push_str("\":");
                }
                out.push('[');
                for (index, value) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    value.json(out, simplify);
                }
                out.push(']');
                if !simplify {
                    out.push('}');
                }
            }
        }
    }

    /// The element's content (its name is written by the caller).
    fn xml(&self, out: &mut String) {
        match self {
            Node::Str(text) => out.push_str(&quick_xml::escape::escape(text.as_str())),
            Node::Num(text) => out.push_str(text),
            Node::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Node::Object(members) => {
                for (name, value) in members {
                    element(out, name, value);
                }
            }
            Node::List { item, items } => {
                for value in items {
                    element(out, item, value);
                }
            }
        }
    }
}

fn element(out: &mut String, name: &str, value: &Node) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    value.xml(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `root` holding `body`, as a TOP answer in `format`.
pub(crate) fn render(format: Format, root: &str, body: &Node) -> Response {
    match format {
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\" ?>");
            element(&mut out, root, body);
            super::answer(StatusCode::OK, "text/xml;charset=utf-8", out)
        }
        Format::Json { simplify } => {
            let mut out = String::from("{\"");
            out.push_str(root);
            out.push_str("\":");
            body.json(&mut out, simplify);
            out.push('}');
            super::answer(StatusCode::OK, "application/json;charset=utf-8", out)
        }
    }
}

/// The request's parameters, query string and form body together.
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn read(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, TopError> {
        let mut pairs: Vec<(String, String)> =
            query.map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect()).unwrap_or_default();
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
        let kind = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if !body.is_empty() {
            if kind != "application/x-www-form-urlencoded" && !kind.is_empty() {
                return Err(TopError::invalid(
                    "Content-Type",
                    format!("{content_type:?}: send the parameters as application/x-www-form-urlencoded"),
                ));
            }
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if pairs.len() > PARAMS_MAX {
            return Err(TopError::invalid("parameters", format!("more than {PARAMS_MAX} parameters")));
        }
        for (index, (name, _)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(other, _)| other == name) {
                return Err(TopError::invalid(name, "given more than once"));
            }
        }
        Ok(Params { pairs })
    }

    /// A parameter's value; an empty one counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// The names of the request-object parameters (`param_*`).
    pub(crate) fn objects(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .filter(|(key, _)| key.starts_with("param_"))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    fn required(&self, name: &str, code: u32, msg: &'static str) -> Result<&str, TopError> {
        self.get(name).ok_or_else(|| {
            TopError::new(code, msg, format!("isv.missing-parameter:{name}"), format!("{name} is required"))
        })
    }

    /// What the signature covers: every parameter but `sign`, sorted by name, as name + value.
    fn signed_text(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self.pairs.iter().filter(|(name, _)| name != "sign").collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.iter().map(|(name, value)| format!("{name}{value}")).collect()
    }

    fn format(&self) -> Result<Format, TopError> {
        let simplify = matches!(self.get("simplify"), Some("true" | "1"));
        match self.get("format") {
            None | Some("xml") => Ok(Format::Xml),
            Some("json") => Ok(Format::Json { simplify }),
            Some(other) => Err(TopError::invalid("format", format!("{other:?}: use xml or json"))),
        }
    }
}

/// TOP's signature methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMethod {
    Md5,
    HmacMd5,
    HmacSha256,
}

impl SignMethod {
    pub fn parse(text: &str) -> Option<SignMethod> {
        match text.to_ascii_lowercase().as_str() {
            "md5" => Some(SignMethod::Md5),
            "hmac" => Some(SignMethod::HmacMd5),
            "hmac-sha256" => Some(SignMethod::HmacSha256),
            _ => None,
        }
    }
}

/// The uppercase hex signature of `signed` (the sorted name + value text) under `secret`.
pub fn signature(method: SignMethod, secret: &str, signed: &str) -> String {
    let bytes = match method {
        SignMethod::Md5 => {
            let mut hasher = Md5::new();
            hasher.update(secret.as_bytes());
            hasher.update(signed.as_bytes());
            hasher.update(secret.as_bytes());
            hasher.finalize().to_vec()
        }
        SignMethod::HmacMd5 => hmac_bytes::<Hmac<Md5>>(secret, signed),
        SignMethod::HmacSha256 => hmac_bytes::<Hmac<sha2::Sha256>>(secret, signed),
    };
    hex::encode_upper(bytes)
}

fn hmac_bytes<M: Mac + hmac::digest::KeyInit>(secret: &str, signed: &str) -> Vec<u8> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    match <M as hmac::digest::KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `POST /router/rest`.
pub async fn handle(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Before the parameters are read (or when they cannot be), the query string may still
    // say which format the caller wants its error in.
    let asked = format_asked(query.as_deref());
    let params = match Params::read(query.as_deref(), &headers, &body) {
        Ok(params) => params,
        Err(error) => return render(asked, "error_response", &error.document()),
    };
    let format = match params.format() {
        Ok(format) => format,
        Err(error) => return render(asked, "error_response", &error.document()),
    };
    match serve(&state, &params).await {
        Ok((method, body)) => render(format, &method.response_root(), &body),
        Err(error) => render(format, "error_response", &error.document()),
    }
}

/// The format a raw query string asks for (`format=json`, `simplify=true`); XML, TOP's
/// default, otherwise.
pub(crate) fn format_asked(query: Option<&str>) -> Format {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let value = |name: &str| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    match value("format") {
        Some(format) if format.eq_ignore_ascii_case("json") => {
            Format::Json { simplify: value("simplify").is_some_and(|simplify| simplify.eq_ignore_ascii_case("true")) }
        }
        _ => Format::Xml,
    }
}

/// A refusal by the server's own limits (408: too slow, 413: too large), in TOP's
/// `error_response`, HTTP 200 as every TOP answer.
pub(crate) fn limit_error(status: StatusCode, message: &str, query: Option<&str>) -> Response {
    let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
        TopError::new(41, "Invalid Arguments", "isv.request-too-large", message)
    } else {
        TopError::new(15, "Remote service error", "isp.request-timeout", message)
    };
    render(format_asked(query), "error_response", &error.document())
}

/// The protocol's checks in order (arguments, method, app key, signature, time and replay,
/// scope), then the method.
async fn serve(state: &AppState, params: &Params) -> Result<(Method, Node), TopError> {
    let method_name = params.required("method", 21, "Missing Method")?;
    let app_key = params.required("app_key", 28, "Missing App Key")?;
    let sign = params.required("sign", 24, "Missing Signature")?;
    let timestamp = params.required("timestamp", 30, "Missing Timestamp")?;
    let version = params.required("v", 32, "Missing Version")?;
    if version != "2.0" {
        return Err(TopError::new(34, "Unsupported Version", "isv.invalid-parameter:v", "v must be 2.0"));
    }
    let method = Method::parse(method_name).ok_or_else(|| {
        TopError::new(
            22,
            "Invalid Method",
            "isv.method-not-exist",
            format!("{method_name:?} is not a method of this gateway"),
        )
    })?;
    let keys = state.keys().current();
    let app = keys.app(Dialect::Top, app_key).ok_or_else(|| {
        TopError::new(29, "Invalid App Key", "isv.appkey-not-exists", "the app_key is unknown or revoked")
    })?;
    let sign_method = params.get("sign_method").unwrap_or("md5");
    let sign_method = SignMethod::parse(sign_method)
        .ok_or_else(|| TopError::invalid("sign_method", format!("{sign_method:?}: use md5, hmac or hmac-sha256")))?;
    let computed = signature(sign_method, &app.secret, &params.signed_text());
    if !super::same_signature(&computed, sign) {
        return Err(TopError::new(
            25,
            "Invalid Signature",
            "isv.invalid-signature",
            "the sign does not match the parameters and the app secret",
        ));
    }
    let signed_at = TOP_ZONE.parse_local(timestamp).ok_or_else(|| {
        TopError::new(
            31,
            "Invalid Timestamp",
            "isv.invalid-timestamp",
            "timestamp must be YYYY-MM-DD HH:MM:SS in GMT+8",
        )
    })?;
    let signed_at_ms = signed_at.0.saturating_mul(1000);
    state.replay().check(Dialect::Top, app_key, &computed, signed_at_ms, ReplayGuard::now_ms()).map_err(|error| {
        match error {
            ReplayError::Skewed { .. } => {
                TopError::new(31, "Invalid Timestamp", "isv.invalid-timestamp", error.to_string())
            }
            ReplayError::Replayed => TopError::new(25, "Invalid Signature", "isv.request-replayed", error.to_string()),
            ReplayError::Full => {
                TopError::new(7, "App Call Limited", "isp.too-many-signed-requests", error.to_string())
            }
        }
    })?;
    if app.scope < method.scope() {
        return Err(TopError::new(
            11,
            "Insufficient ISV Permissions",
            "isv.permission-denied",
            format!(
                "the app_key has scope {}; {} needs {}",
                app.scope.as_str(),
                method.name(),
                method.scope().as_str()
            ),
        ));
    }
    let body = super::alsc::call(state, method, params).await?;
    Ok((method, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_of_each_method() {
        let signed = "app_key12345methodalibaba.alsc.crm.recharge.charge.update";
        // MD5("s" + signed + "s"), HMAC-MD5 and HMAC-SHA256 keyed "s": 32 and 64 hex digits, uppercase.
        let md5 = signature(SignMethod::Md5, "s", signed);
        assert_eq!(md5.len(), 32);
        assert_eq!(md5, md5.to_ascii_uppercase());
        assert_ne!(md5, signature(SignMethod::HmacMd5, "s", signed));
        assert_eq!(signature(SignMethod::HmacSha256, "s", signed).len(), 64);
        // RFC 2104's test case 2 for HMAC-MD5.
        assert_eq!(
            signature(SignMethod::HmacMd5, "Jefe", "what do ya want for nothing?"),
            "750C783E6AB0B503EAA86E310A5DB738"
        );
    }

    #[test]
    fn documents_render_in_both_formats() {
        let body = Node::Object(vec![
            ("a", Node::Str("x<y".to_owned())),
            ("b", Node::List { item: "i", items: vec![Node::Object(vec![("v", Node::Num("2".to_owned()))])] }),
        ]);
        let mut json = String::new();
        body.json(&mut json, false);
        assert_eq!(json, r#"{"a":"x<y","b":{"i":[{"v":2}]}}"#);
        let mut simple = String::new();
        body.json(&mut simple, true);
        assert_eq!(simple, r#"{"a":"x<y","b":[{"v":2}]}"#);
        let mut xml = String::new();
        element(&mut xml, "r", &body);
        assert_eq!(xml, "<r><a>x&lt;y</a><b><i><v>2</v></i></b></r>");
    }
}
