//! `/console` (what the ledger owes now, and the account search) and `/console/liability` (the
//! same in all and by brand, with the expiring windows, now or as it stood at a time).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use purse_core::{Amount, Bucket, Scale};
use purse_ledger::{Liability, LiabilityAt, LiabilitySum, WideBuckets, EXPIRY_WINDOWS_DAYS};
use purse_wire::args::LiabilityArgs;

use super::html::{self, escape, Section};
use crate::error::ApiError;
use crate::AppState;

/// `GET /console`
pub async fn overview(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(response) = super::login_redirect(&state, &headers, &uri) {
        return response;
    }
    let liability = match state.ledger().liability(LiabilityAt::Now(super::now())).await {
        Ok(liability) => liability,
        Err(error) => return super::failure(&ApiError::from(error), Section::Overview),
    };
    let units = state.units();
    let total = &liability.total;
    let body = format!(
        "<h2>Find an account</h2>\n{}\
         <h2>What the ledger owes now</h2>\n<p class=\"muted\">As of {} ({}), over {} accounts.</p>\n{}\
         <p><a href=\"/console/liability\">Liability by brand and expiring value</a></p>\n",
        search_form(),
        escape(&units.zone.format_local(liability.windows_from)),
        escape(&units.zone.format()),
        total.accounts,
        cards(total, units.scale),
    );
    html::page(StatusCode::OK, "Overview", Section::Overview, &body)
}

/// The search: an account id or a card id, whichever is filled in.
fn search_form() -> String {
    "<form method=\"get\" action=\"/console/account\" class=\"inline\" role=\"search\">\n\
     <label>Account id <input type=\"search\" name=\"account_id\" size=\"32\"></label>\n\
     <label>or card id <input type=\"search\" name=\"card_id\" size=\"24\"></label>\n\
     <button type=\"submit\">Show account</button>\n</form>\n"
        .to_owned()
}

/// The headline figures of a sum as cards: TOTAL first, then each bucket and the held value.
fn cards(sum: &LiabilitySum, scale: Scale) -> String {
    let card = |id: &str, label: &str, minor: i128| {
        format!(
            "<div class=\"card\" id=\"{id}\"><div class=\"label\">{label}</div><div class=\"value\">{}</div></div>",
            Amount::format_wide(minor, scale)
        )
    };
    let balance = &sum.balance;
    format!(
        "<div class=\"cards\">{}{}{}{}{}</div>\n",
        card("liability-total", "TOTAL", balance.total()),
        card("liability-real", "REAL", balance.real),
        card("liability-gift", "GIFT", balance.gift),
        card("liability-pre", "PRE", balance.pre),
        card("liability-held", "held", sum.held.total()),
    )
}

/// `GET /console/liability[?at=YYYY-MM-DD HH:MM:SS]`
pub async fn liability(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = super::login_redirect(&state, &headers, &uri) {
        return response;
    }
    let pairs = super::pairs(query.unwrap_or_default().as_bytes());
    let at_text = super::field(&pairs, "at");
    let units = state.units();
    let args = LiabilityArgs { at: at_text.map(str::to_owned) };
    let at = purse_wire::command::liability_at(&args, units.zone)
        .map_err(|error| state.definitions().get("liability").api_error(error));
    let liability = match at {
        Ok(at) => state.ledger().liability(at).await.map_err(ApiError::from),
        Err(error) => Err(error),
    };
    let liability = match liability {
        Ok(liability) => liability,
        Err(error) => return super::failure(&error, Section::Liability),
    };
    let body =
        format!("{}{}{}", at_form(at_text), stood(&liability, &state), liability_tables(&liability, units.scale));
    html::page(StatusCode::OK, "Liability", Section::Liability, &body)
}

fn at_form(at: Option<&str>) -> String {
    format!(
        "<form method=\"get\" action=\"/console/liability\" class=\"inline\">\n\
         <label>As it stood at (YYYY-MM-DD HH:MM:SS) <input type=\"text\" name=\"at\" size=\"20\" value=\"{}\" \
         placeholder=\"now\"></label>\n<button type=\"submit\">Show</button>\n</form>\n",
        escape(at.unwrap_or_default())
    )
}

/// When the figures stand, and from when the expiring windows count.
fn stood(liability: &Liability, state: &AppState) -> String {
    let zone = state.units().zone;
    let when = match liability.at {
        None => format!("Now ({})", escape(&zone.format_local(liability.windows_from))),
        Some(at) => format!("As it stood at {}", escape(&zone.format_local(at))),
    };
    format!("<p class=\"muted\">{when}, time zone {}.</p>\n", escape(&zone.format()))
}

/// The balances table (all, then each brand) and the expiring table.
fn liability_tables(liability: &Liability, scale: Scale) -> String {
    let text = |minor: i128| Amount::format_wide(minor, scale);
    let rows_of = |label: String, sum: &LiabilitySum| {
        vec![
            label,
            sum.accounts.to_string(),
            text(sum.balance.real),
            text(sum.balance.gift),
            text(sum.balance.pre),
            text(sum.balance.total()),
            text(sum.held.total()),
            text(sum.balance.total() - sum.held.total()),
        ]
    };
    let brand_label = |brand: Option<&str>| match brand {
        Some(brand) => escape(brand).to_string(),
        None => "<span class=\"muted\">(no brand)</span>".to_owned(),
    };
    let mut balances = vec![rows_of("<strong>All brands</strong>".to_owned(), &liability.total)];
    balances.extend(liability.by_brand.iter().map(|brand| rows_of(brand_label(brand.brand_id.as_deref()), &brand.sum)));
    let balance_table = html::table(
        "liability",
        &["Brand", "Accounts", "REAL", "GIFT", "PRE", "TOTAL", "Held", "Available"],
        &[false, true, true, true, true, true, true, true],
        &balances,
    );

    let mut headings = vec!["Brand".to_owned(), "Bucket".to_owned(), "Expired, not swept".to_owned()];
    headings.extend(EXPIRY_WINDOWS_DAYS.iter().map(|days| format!("Within {days} days")));
    let headings: Vec<&str> = headings.iter().map(String::as_str).collect();
    let mut expiring = Vec::new();
    let mut expiring_rows = |label: String, sum: &LiabilitySum| {
        for bucket in [Bucket::Gift, Bucket::Pre] {
            let mut row = vec![label.clone(), bucket.as_str().to_owned(), text(wide(&sum.expired_unswept, bucket))];
            row.extend(sum.expiring.iter().map(|window| text(wide(window, bucket))));
            expiring.push(row);
        }
    };
    expiring_rows("<strong>All brands</strong>".to_owned(), &liability.total);
    for brand in &liability.by_brand {
        expiring_rows(brand_label(brand.brand_id.as_deref()), &brand.sum);
    }
    let expiring_table = html::table("expiring", &headings, &[false, false, true, true, true, true], &expiring);
    format!(
        "<h2>Balances</h2>\n{balance_table}<h2>Expiring GIFT and PRE</h2>\n\
         <p class=\"muted\">Value left in lots (held value included) whose expiry falls within each window; \
         expired lots stay spendable until the expiry sweep takes them.</p>\n{expiring_table}"
    )
}

/// One bucket of a wide sum (only GIFT and PRE expire, but the sum has all three).
fn wide(buckets: &WideBuckets, bucket: Bucket) -> i128 {
    match bucket {
        Bucket::Real => buckets.real,
        Bucket::Gift => buckets.gift,
        Bucket::Pre => buckets.pre,
    }
}
