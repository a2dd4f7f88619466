//! The console's HTML: the one escape helper, the page frame (inline CSS, the navigation) and
//! the small pieces every page repeats.
//!
//! **Invariant:** every value that did not come from a literal in this module's callers goes
//! into the page through [`escape`] (text and attribute values alike) or, inside a link's query
//! string, through [`query_value`] and then [`escape`]. The pages carry a Content-Security-Policy
//! that runs no script at all, so a value that slipped through could still not execute.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ErrorCodeTag;

/// Text made safe for HTML text and for quoted attribute values: `&`, `<`, `>`, `"` and `'`
/// become character references. Writes straight into the formatter, allocating nothing.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(&'a str);

/// `text` escaped for HTML (see [`Escaped`]).
pub fn escape(text: &str) -> Escaped<'_> {
    Escaped(text)
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// `text` percent-encoded as one value of a query string (`application/x-www-form-urlencoded`).
/// The result is ASCII without `&`, `<`, `"`: it still goes through [`escape`] like any value.
pub fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A query string (`?a=1&b=2`) of `pairs`, values encoded; empty for no pairs.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

/// The console's sections, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Account,
    Liability,
    Reconcile,
    /// The login page: no navigation at all.
    Login,
}

/// What every console answer carries: no caching of balances, no framing, no script.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
];

/// A whole page: `body` (already HTML) inside the frame, with `status`. An error status is
/// tagged with its spec §6 code, so the service's error layer counts it and leaves the HTML be.
pub fn page(status: StatusCode, title: &str, section: Section, body: &str) -> Response {
    let html = frame(title, section, body);
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if status.is_client_error() || status.is_server_error() {
        let code = if status.is_server_error() {
            purse_core::ErrorCode::Storage
        } else {
            purse_core::ErrorCode::InvalidArgument
        };
        response.extensions_mut().insert(ErrorCodeTag(code));
    }
    response
}

/// The frame of every page: head with the style sheet, the navigation, the main part.
fn frame(title: &str, section: Section, body: &str) -> String {
    let nav = if section == Section::Login { String::new() } else { navigation(section) };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · purse console</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{nav}\
         <main>\n<h1>{}</h1>\n{body}</main>\n</body>\n</html>\n",
        escape(title),
        escape(title),
    )
}

fn navigation(section: Section) -> String {
    let link = |target: Section, href: &str, label: &str| {
        let current = if target == section { " aria-current=\"page\"" } else { "" };
        format!("<a href=\"{href}\"{current}>{label}</a>")
    };
    format!(
        "<header><nav><span class=\"brand\">purse console</span>{}{}{}\
         <form method=\"post\" action=\"/console/logout\" class=\"logout\"><button type=\"submit\">Log out</button></form>\
         </nav></header>\n",
        link(Section::Overview, "/console", "Overview"),
        link(Section::Liability, "/console/liability", "Liability"),
        link(Section::Reconcile, "/console/reconcile", "Reconcile"),
    )
}

/// A notice above a page's content: `kind` is `error` or `note`.
pub fn notice(kind: &str, message: &str) -> String {
    format!("<p class=\"notice {kind}\" role=\"status\">{}</p>\n", escape(message))
}

/// A table: a header row of `headings` and `rows` of cells (already HTML). Numeric columns
/// (`numeric[i]`) are right-aligned.
pub fn table(class: &str, headings: &[&str], numeric: &[bool], rows: &[Vec<String>]) -> String {
    let align = |index: usize| if numeric.get(index).copied().unwrap_or(false) { " class=\"num\"" } else { "" };
    let mut out = format!("<table class=\"{class}\">\n<thead><tr>");
    for (index, heading) in headings.iter().enumerate() {
        out.push_str(&format!("<th{}>{}</th>", align(index), escape(heading)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (index, cell) in row.iter().enumerate() {
            out.push_str(&format!("<td{}>{cell}</td>", align(index)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// An optional text as a cell: escaped, or a dash.
pub fn optional(text: Option<&str>) -> String {
    match text {
        Some(text) if !text.is_empty() => escape(text).to_string(),
        _ => "<span class=\"muted\">—</span>".to_owned(),
    }
}

/// The link to an account's page.
pub fn account_link(account_id: &str) -> String {
    format!("<a href=\"/console/account?account_id={}\">{}</a>", escape(&query_value(account_id)), escape(account_id))
}

/// Plain and readable: system fonts, one accent colour, tables with tabular figures.
const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1d2733;background:#f5f7fa}
header{background:#1d2733;color:#fff}
nav{display:flex;align-items:center;gap:20px;max-width:1200px;margin:0 auto;padding:10px 24px}
nav a{color:#cfd8e3;text-decoration:none;padding:4px 0;border-bottom:2px solid transparent}
nav a[aria-current=page]{color:#fff;border-bottom-color:#5aa0e6}
nav .brand{font-weight:600;margin-right:12px}
nav .logout{margin-left:auto}
main{max-width:1200px;margin:0 auto;padding:8px 24px 48px}
h1{font-size:24px;margin:18px 0 12px}
h2{font-size:18px;margin:28px 0 8px}
a{color:#1f62a8}
.muted{color:#6b7785}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0}
.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:10px 16px;min-width:150px}
.card .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#6b7785}
.card .value{font-size:22px;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;background:#fff;border:1px solid #dde3ea;margin:6px 0 12px}
th,td{padding:5px 10px;border-bottom:1px solid #e8edf2;text-align:left;vertical-align:top}
th{background:#eef2f6;font-weight:600;font-size:13px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.status{display:inline-block;padding:1px 10px;border-radius:10px;font-size:13px;font-weight:600}
.status.ACTIVE{background:#dff3e4;color:#1c6b34}
.status.FROZEN{background:#dbe9fb;color:#1f4f8a}
.status.CLOSED{background:#e6e6e6;color:#444}
.notice{padding:8px 12px;border-radius:4px;margin:8px 0}
.notice.error{background:#fde8e8;border:1px solid #f1b5b5;color:#8a1f1f}
.notice.note{background:#fff7e0;border:1px solid #f0d88a}
.inline{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;margin:8px 0;background:#fff;border:1px solid #dde3ea;padding:10px 12px;border-radius:6px}
textarea{margin-top:3px}
label{display:flex;flex-direction:column;font-size:13px;color:#4a5663;gap:3px}
input,select,textarea,button{font:inherit}
input,select{padding:4px 6px;border:1px solid #b9c3ce;border-radius:4px}
textarea{width:100%;min-height:220px;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px;padding:6px}
button{padding:5px 14px;border:1px solid #1f62a8;background:#1f62a8;color:#fff;border-radius:4px;cursor:pointer}
nav button{background:transparent;border-color:#5f6f80;color:#cfd8e3}
.pager{display:flex;gap:16px;align-items:center}
svg.chart{background:#fff;border:1px solid #dde3ea;border-radius:6px}
svg.chart text{font-size:12px;fill:#4a5663}
";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        assert_eq!(escape(input).to_string(), expect, "escape({input:?})");
    }

    #[test]
    fn escape_replaces_every_markup_character() {
        check("", "");
        check("plain 150.00", "plain 150.00");
        check("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
        check("a & b", "a &amp; b");
        check("&amp;", "&amp;amp;");
        check("\" onmouseover=\"x", "&quot; onmouseover=&quot;x");
        check("it's", "it&#39;s");
        check("<<>>", "&lt;&lt;&gt;&gt;");
        check("卡号 <1>", "卡号 &lt;1&gt;");
        check("end&", "end&amp;");
    }

    #[test]
    fn query_values_are_encoded_before_escaping() {
        assert_eq!(query_value("a b&c=d/\"<"), "a+b%26c%3Dd%2F%22%3C");
        assert_eq!(query_string([("account_id", "x&y"), ("page_no", "2")]), "?account_id=x%26y&page_no=2");
        assert_eq!(query_string([]), "");
        assert_eq!(account_link("<b>&"), "<a href=\"/console/account?account_id=%3Cb%3E%26\">&lt;b&gt;&amp;</a>");
    }
}
