//! `/console/reconcile`: a provider export (pasted into the form) run through purse-ingest as
//! a **dry run** against the ledger, and its report: what would be applied, what was rejected or
//! skipped, and every balance the provider states that differs from the ledger's.
//!
//! The run is `purse ingest --dry-run` (crates/purse-cli/src/ingest.rs) with the same options;
//! it writes nothing. The export is limited by the server's request body limit
//! (`ServerConfig::body_bytes_max`, 1 MiB by default).

use std::collections::BTreeMap;
use std::io::Cursor;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use purse_core::{Amount, Scale, Zone};
use purse_ingest::{AlscUnits, Input, Item, Mode, Options, Provider, Report, Silent};

use super::html::{self, escape, Section};
use crate::error::ApiError;
use crate::AppState;

/// The name the report gives the pasted export.
const INPUT_NAME: &str = "the pasted export";

/// What the form holds, as given (to fill the form in again).
#[derive(Debug, Default)]
struct Form {
    provider: String,
    alsc_units: String,
    provider_time_zone: String,
    opening_balances: bool,
    export: String,
}

impl Form {
    fn blank() -> Form {
        Form {
            provider: "kybio".into(),
            alsc_units: "minor".into(),
            provider_time_zone: "+08:00".into(),
            opening_balances: true,
            export: String::new(),
        }
    }

    fn read(pairs: &[(String, String)]) -> Form {
        let text = |name: &str, default: &str| super::field(pairs, name).unwrap_or(default).to_owned();
        Form {
            provider: text("provider", ""),
            alsc_units: text("alsc_units", "minor"),
            provider_time_zone: text("provider_time_zone", "+08:00"),
            // A checkbox sends its field only when ticked.
            opening_balances: super::field(pairs, "opening_balances").is_some(),
            export: pairs.iter().find(|(name, _)| name == "export").map(|(_, value)| value.clone()).unwrap_or_default(),
        }
    }

    /// The run's options: the CLI's `--dry-run` with the form's provider, units and zone.
    fn options(&self) -> Result<Options, ApiError> {
        let provider = Provider::parse(&self.provider).ok_or_else(|| {
            ApiError::bad_request(format!("provider {:?} is not one of kybio, alsc, zenlayer", self.provider))
        })?;
        let mut options = Options::new(provider);
        options.mode = Mode::DryRun;
        options.opening_balances = self.opening_balances;
        options.alsc_units = match self.alsc_units.as_str() {
            "minor" => AlscUnits::Minor,
            "major" => AlscUnits::Major,
            other => return Err(ApiError::bad_request(format!("alsc_units {other:?} is not minor or major"))),
        };
        options.provider_zone = Zone::parse(&self.provider_time_zone).ok_or_else(|| {
            ApiError::bad_request(format!(
                "provider_time_zone {:?} is not a UTC offset like +08:00, -05:30 or Z",
                self.provider_time_zone
            ))
        })?;
        if self.export.trim().is_empty() {
            return Err(ApiError::bad_request("paste a provider export into the text area"));
        }
        Ok(options)
    }
}

/// `GET /console/reconcile`: the empty form.
pub async fn form(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(response) = super::login_redirect(&state, &headers, &uri) {
        return response;
    }
    html::page(StatusCode::OK, "Reconcile a provider export", Section::Reconcile, &form_html(&Form::blank()))
}

/// `POST /console/reconcile` (a urlencoded form): the dry run and its report.
pub async fn run(State(state): State<AppState>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    if let Some(response) = super::login_redirect(&state, &headers, &uri) {
        return response;
    }
    let form = Form::read(&super::pairs(&body));
    let title = "Reconcile a provider export";
    let (status, report) = match dry_run(&state, &form).await {
        Ok(html) => (StatusCode::OK, html),
        Err(error) => (error.status, html::notice("error", &format!("{}: {}", error.code.as_str(), error.message))),
    };
    let body = format!("{report}{}", form_html(&form));
    html::page(status, title, Section::Reconcile, &body)
}

/// Runs the export through purse-ingest in dry-run mode and renders the report.
async fn dry_run(state: &AppState, form: &Form) -> Result<String, ApiError> {
    let options = form.options()?;
    let ledger = state.ledger();
    let export = Bytes::from(form.export.clone().into_bytes());
    // Read once more on its own for the accounts the export names: the report counts records.
    let items = purse_ingest::read_items(
        options.clone(),
        ledger.scale(),
        vec![Input::new(INPUT_NAME, Cursor::new(export.clone()))],
    )
    .map_err(ingest_error)?;
    let report = purse_ingest::run(ledger, vec![Input::new(INPUT_NAME, Cursor::new(export))], options, &Silent)
        .await
        .map_err(ingest_error)?;
    Ok(report_html(&report, &items, ledger.scale()))
}

fn ingest_error(error: purse_ingest::Error) -> ApiError {
    match error {
        purse_ingest::Error::Ledger(error) => ApiError::from(error),
        other => ApiError::new(other.code(), other.to_string()),
    }
}

fn form_html(form: &Form) -> String {
    let option = |value: &str, label: &str, chosen: &str| {
        let selected = if value == chosen { " selected" } else { "" };
        format!("<option value=\"{value}\"{selected}>{label}</option>")
    };
    let providers: String =
        [("kybio", "KYBIO recharge log"), ("alsc", "ALSC flow detail"), ("zenlayer", "Zenlayer history")]
            .iter()
            .map(|(value, label)| option(value, label, &form.provider))
            .collect();
    let units: String = [("minor", "minor (fen)"), ("major", "major (yuan)")]
        .iter()
        .map(|(value, label)| option(value, label, &form.alsc_units))
        .collect();
    let opening = if form.opening_balances { " checked" } else { "" };
    format!(
        "<h2>Provider export</h2>\n\
         <p class=\"muted\">A dry run: purse-ingest reads the export, decides every record against the ledger \
         and compares the balances it states, and writes nothing.</p>\n\
         <form method=\"post\" action=\"/console/reconcile\">\n<div class=\"inline\">\n\
         <label>Provider <select name=\"provider\">{providers}</select></label>\n\
         <label>ALSC amounts <select name=\"alsc_units\">{units}</select></label>\n\
         <label>Provider time zone <input type=\"text\" name=\"provider_time_zone\" size=\"8\" value=\"{}\"></label>\n\
         <label><span><input type=\"checkbox\" name=\"opening_balances\" value=\"on\"{opening}> \
         opening balance for accounts new to the ledger</span></label>\n</div>\n\
         <label>Export (JSON, JSON lines, or ALSC XML)<textarea name=\"export\" spellcheck=\"false\">{}</textarea></label>\n\
         <p><button type=\"submit\">Run the dry run</button></p>\n</form>\n",
        escape(&form.provider_time_zone),
        escape(&form.export),
    )
}

/// The report: the figures, the accounts, then the mismatches, rejections and skips.
fn report_html(report: &Report, items: &[Item], scale: Scale) -> String {
    let card = |id: &str, label: &str, value: String| {
        format!("<div class=\"card\" id=\"{id}\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div></div>")
    };
    let verdict = if report.clean() {
        html::notice("note", "Clean: every record would be accepted and every stated balance matches the ledger.")
    } else {
        html::notice("error", "Findings: records were rejected, or stated balances differ from the ledger's.")
    };
    let written = if report.committed { "yes" } else { "no (dry run)" };
    let mut out = format!(
        "<h2>Report: {}</h2>\n{verdict}<div class=\"cards\">{}{}{}{}{}{}</div>\n\
         <p class=\"muted\">Written to the ledger: {written}.</p>\n",
        escape(report.provider),
        card("report-records", "records", report.records.to_string()),
        card("report-applied", "would apply", report.applied.to_string()),
        card("report-duplicates", "already in ledger", report.duplicates.to_string()),
        card("report-opening", "opening balances", report.opening_balances.to_string()),
        card("report-rejected", "rejected", report.rejected.len().to_string()),
        card("report-mismatches", "mismatches", report.mismatches.len().to_string()),
    );
    out.push_str(&accounts_html(report, items));
    if !report.mismatches.is_empty() {
        let rows: Vec<Vec<String>> = report
            .mismatches
            .iter()
            .map(|mismatch| {
                vec![
                    mismatch.index.to_string(),
                    escape(&mismatch.record_id).to_string(),
                    html::account_link(&mismatch.account_id),
                    escape(mismatch.balance).to_string(),
                    escape(mismatch.bucket).to_string(),
                    escape(&mismatch.provider).to_string(),
                    escape(&mismatch.ledger).to_string(),
                    difference(&mismatch.provider, &mismatch.ledger, scale),
                ]
            })
            .collect();
        out.push_str("<h2>Mismatches</h2>\n");
        out.push_str(&html::table(
            "mismatches",
            &["Record", "Record id", "Account", "Balance", "Bucket", "Provider says", "Ledger has", "Difference"],
            &[true, false, false, false, false, true, true, true],
            &rows,
        ));
    }
    if !report.rejected.is_empty() {
        let rows: Vec<Vec<String>> = report
            .rejected
            .iter()
            .map(|rejected| {
                vec![
                    rejected.index.to_string(),
                    html::optional(rejected.record_id.as_deref()),
                    escape(rejected.code).to_string(),
                    escape(&rejected.message).to_string(),
                ]
            })
            .collect();
        out.push_str("<h2>Rejected records</h2>\n");
        out.push_str(&html::table(
            "rejected",
            &["Record", "Record id", "Code", "Why"],
            &[true, false, false, false],
            &rows,
        ));
    }
    if !report.skipped.is_empty() {
        let rows: Vec<Vec<String>> = report
            .skipped
            .iter()
            .map(|skipped| {
                vec![
                    skipped.index.to_string(),
                    html::optional(skipped.record_id.as_deref()),
                    escape(&skipped.reason).to_string(),
                ]
            })
            .collect();
        out.push_str("<h2>Skipped records</h2>\n");
        out.push_str(&html::table("skipped", &["Record", "Record id", "Why"], &[true, false, false], &rows));
    }
    out
}

/// The accounts the export names: its records and mismatches for each.
fn accounts_html(report: &Report, items: &[Item]) -> String {
    let mut accounts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for item in items {
        if let Item::Record(record) = item {
            accounts.entry(record.account_id.as_str()).or_default().0 += 1;
        }
    }
    for mismatch in &report.mismatches {
        accounts.entry(mismatch.account_id.as_str()).or_default().1 += 1;
    }
    if accounts.is_empty() {
        return "<p class=\"muted\">The export names no account.</p>\n".to_owned();
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|(account_id, (records, mismatches))| {
            vec![html::account_link(account_id), records.to_string(), mismatches.to_string()]
        })
        .collect();
    format!(
        "<h2>Accounts ({})</h2>\n{}",
        accounts.len(),
        html::table("accounts", &["Account", "Records", "Mismatches"], &[false, true, true], &rows)
    )
}

/// Provider − ledger, when both are amounts at the ledger's scale (the report writes them so).
fn difference(provider: &str, ledger: &str, scale: Scale) -> String {
    match (Amount::parse(provider, scale), Amount::parse(ledger, scale)) {
        (Ok(provider), Ok(ledger)) => {
            Amount::format_wide(i128::from(provider.minor()) - i128::from(ledger.minor()), scale)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_dry_run_options_or_a_reason() {
        let pairs = |text: &str| super::super::pairs(text.as_bytes());
        let options = Form::read(&pairs("provider=zenlayer&alsc_units=major&export=%5B%5D")).options().unwrap();
        assert_eq!(
            (options.provider, options.mode, options.alsc_units),
            (Provider::Zenlayer, Mode::DryRun, AlscUnits::Major)
        );
        assert!(!options.opening_balances, "an unticked checkbox sends nothing");
        let message = |text: &str| Form::read(&pairs(text)).options().unwrap_err().message;
        assert!(message("provider=square&export=x").contains("\"square\" is not one of"));
        assert!(message("provider=kybio&export=+").contains("paste a provider export"));
        assert!(message("provider=alsc&alsc_units=cents&export=x").contains("minor or major"));
        assert!(message("provider=alsc&provider_time_zone=CET&export=x").contains("UTC offset"));
        assert_eq!(difference("200.00", "250.00", Scale::CNY), "-50.00");
        assert_eq!(difference("n/a", "250.00", Scale::CNY), "");
    }
}
