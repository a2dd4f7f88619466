//! `/console/account?account_id=…` or `?card_id=…`: one account's balances per bucket, held
//! and available value, status, expiring lots, open holds, a chart of its balances, and its
//! flows filtered by type and time and paged (`flow_type`, `start_time`, `end_time`, `page_no`,
//! `page_size`: the fields of `GET /v1/flows`, parsed by the same definition).

use std::collections::HashSet;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use purse_core::{Amount, Bucket, Buckets, Flow, FlowDetail, FlowType, Scale, Zone};
use purse_ledger::{AccountView, FlowQuery, Ledger, PAGE_SIZE_MAX};
use purse_wire::args::{AccountWho, FlowsArgs};

use super::chart::{self, Point};
use super::html::{self, escape, Section};
use crate::error::ApiError;
use crate::AppState;

/// The chart shows the account's latest flows, this many at most.
const CHART_FLOWS_MAX: u64 = 2000;
/// HOLD, CAPTURE and RELEASE flows read to find the open holds, at most.
const HOLD_FLOWS_SCANNED_MAX: u64 = 20_000;
/// The filter fields passed on to the flows query.
const FILTER_FIELDS: [&str; 5] = ["flow_type", "start_time", "end_time", "page_no", "page_size"];

const _: () = assert!(CHART_FLOWS_MAX <= HOLD_FLOWS_SCANNED_MAX);

/// `GET /console/account`
pub async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(response) = super::login_redirect(&state, &headers, &uri) {
        return response;
    }
    let pairs = super::pairs(query.unwrap_or_default().as_bytes());
    match render(&state, &pairs).await {
        Ok((title, body)) => html::page(StatusCode::OK, &title, Section::Account, &body),
        Err(error) => super::failure(&error, Section::Account),
    }
}

/// The page's title and body.
async fn render(state: &AppState, pairs: &[(String, String)]) -> Result<(String, String), ApiError> {
    let ledger = state.ledger();
    let units = state.units();
    let who = AccountWho {
        account_id: super::field(pairs, "account_id").map(str::to_owned),
        card_id: super::field(pairs, "card_id").map(str::to_owned),
    };
    if who.account_id.is_none() && who.card_id.is_none() {
        return Err(ApiError::bad_request("give an account id or a card id"));
    }
    let account_id = purse_wire::command::account_id(ledger, &who)
        .await
        .map_err(|error| state.definitions().get("account").api_error(error))?;
    let view = ledger.account(&account_id).await?;
    let holds = open_holds(ledger, &account_id).await?;
    let (chart_flows, flows_count) = latest_flows(ledger, &account_id, CHART_FLOWS_MAX).await?;
    let points = chart_flows
        .iter()
        .map(|flow| {
            let after = flow.after().ok_or_else(|| corrupt(flow))?;
            Ok(Point { flow_id: flow.flow_id, time: units.zone.format_local(flow.order_time), after })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let chart_note = if flows_count > CHART_FLOWS_MAX {
        html::notice("note", &format!("The chart shows the latest {CHART_FLOWS_MAX} of {flows_count} flows."))
    } else {
        String::new()
    };
    let body = format!(
        "{}<h2>Balances</h2>\n{}{}<h2>Open holds</h2>\n{}<h2>Balance over its flows</h2>\n{chart_note}{}{}",
        summary(&view, units.scale)?,
        balances(&view, units.scale)?,
        expiring(&view, units.scale, units.zone),
        holds_section(&holds, &view, ledger, units.zone)?,
        chart::balance_chart(&points, units.scale),
        flows_section(state, &account_id, pairs).await,
    );
    Ok((format!("Account {account_id}"), body))
}

fn corrupt(flow: &Flow) -> ApiError {
    ApiError::from(purse_ledger::Error::Corruption(format!("flow {} has amounts out of range", flow.flow_id)))
}

/// Who the account is, its status, and the headline figures.
fn summary(view: &AccountView, scale: Scale) -> Result<String, ApiError> {
    let balance = total(&view.balance)?;
    let held = total(&view.held)?;
    let available = total(&available_of(view)?)?;
    let card = |id: &str, label: &str, value: String| {
        format!("<div class=\"card\" id=\"{id}\"><div class=\"label\">{label}</div><div class=\"value\">{value}</div></div>")
    };
    let status = view.status.as_str();
    Ok(format!(
        "<table class=\"who\"><tbody>\
         <tr><th>Account id</th><td>{}</td></tr><tr><th>Card id</th><td>{}</td></tr>\
         <tr><th>Brand id</th><td>{}</td></tr>\
         <tr><th>Status</th><td><span class=\"status {status}\" id=\"account-status\">{status}</span></td></tr>\
         </tbody></table>\n<div class=\"cards\">{}{}{}</div>\n",
        escape(&view.account_id),
        html::optional(view.card_id.as_deref()),
        html::optional(view.brand_id.as_deref()),
        card("account-total", "TOTAL", balance.format(scale)),
        card("account-held", "held", held.format(scale)),
        card("account-available", "available", available.format(scale)),
    ))
}

fn total(buckets: &Buckets) -> Result<Amount, ApiError> {
    buckets
        .total()
        .ok_or_else(|| ApiError::from(purse_ledger::Error::Corruption("an account's TOTAL leaves i64".into())))
}

/// Available = balance − held, per bucket (spec §8); held never exceeds the balance.
fn available_of(view: &AccountView) -> Result<Buckets, ApiError> {
    view.balance.checked_sub(&view.held).ok_or_else(|| {
        ApiError::from(purse_ledger::Error::Corruption(format!("account {} holds more than it has", view.account_id)))
    })
}

/// Balance, held, available and lifetime amount per bucket, and their TOTAL.
fn balances(view: &AccountView, scale: Scale) -> Result<String, ApiError> {
    let available = available_of(view)?;
    let columns = [view.balance, view.held, available, view.lifetime];
    let mut rows: Vec<Vec<String>> = Bucket::ALL
        .iter()
        .map(|bucket| {
            let mut row = vec![bucket.as_str().to_owned()];
            row.extend(columns.iter().map(|buckets| buckets.get(*bucket).format(scale)));
            row
        })
        .collect();
    let mut total_row = vec!["TOTAL".to_owned()];
    for buckets in &columns {
        total_row.push(total(buckets)?.format(scale));
    }
    rows.push(total_row);
    Ok(html::table(
        "balances",
        &["Bucket", "Balance", "Held", "Available", "Lifetime in"],
        &[false, true, true, true, true],
        &rows,
    ))
}

/// spec §11 `expiring`: the lots with an expiry and value left, soonest first.
fn expiring(view: &AccountView, scale: Scale, zone: Zone) -> String {
    if view.expiring.is_empty() {
        return "<p class=\"muted\">No value in lots that expire.</p>\n".to_owned();
    }
    let rows: Vec<Vec<String>> = view
        .expiring
        .iter()
        .map(|lot| {
            vec![
                lot.bucket.as_str().to_owned(),
                lot.value.format(scale),
                escape(&zone.format_local(lot.expire_time)).to_string(),
            ]
        })
        .collect();
    format!(
        "<h2>Expiring value</h2>\n{}",
        html::table("expiring", &["Bucket", "Value", "Expires"], &[false, true, false], &rows)
    )
}

/// The holds found open, and whether every HOLD, CAPTURE and RELEASE flow was read.
#[derive(Debug)]
struct Holds {
    open: Vec<Flow>,
    complete: bool,
}

/// Open holds, from the flows: a HOLD that no later CAPTURE or RELEASE names as its source.
async fn open_holds(ledger: &Ledger, account_id: &str) -> Result<Holds, ApiError> {
    let mut query = FlowQuery::new(account_id);
    query.flow_types = vec![FlowType::Hold, FlowType::Capture, FlowType::Release];
    query.page_size = PAGE_SIZE_MAX;
    let mut flows = Vec::new();
    let mut total_count = 0;
    while (flows.len() as u64) < HOLD_FLOWS_SCANNED_MAX {
        let page = ledger.flows(query.clone()).await?;
        total_count = page.total_count;
        if page.flows.is_empty() {
            break;
        }
        flows.extend(page.flows);
        query.page_no += 1;
    }
    let closed: HashSet<&str> = flows
        .iter()
        .filter(|flow| flow.flow_type != FlowType::Hold)
        .filter_map(|flow| flow.source_order_id.as_deref())
        .collect();
    let open = flows
        .iter()
        .filter(|flow| flow.flow_type == FlowType::Hold && !closed.contains(flow.outer_order_id.as_str()))
        .cloned()
        .collect();
    Ok(Holds { open, complete: flows.len() as u64 >= total_count })
}

fn holds_section(holds: &Holds, view: &AccountView, ledger: &Ledger, zone: Zone) -> Result<String, ApiError> {
    let scale = ledger.scale();
    let mut out = String::new();
    if !holds.complete {
        out.push_str(&html::notice(
            "note",
            &format!("Only the first {HOLD_FLOWS_SCANNED_MAX} hold flows were read; more holds may be open."),
        ));
    }
    // The open holds reserve exactly the account's held value; if they do not, say so.
    let reserved = holds.open.iter().try_fold(Buckets::ZERO, |sum, hold| sum.checked_add(&hold.held));
    if holds.complete && reserved != Some(view.held) {
        out.push_str(&html::notice(
            "note",
            "The open holds listed do not add up to the held value (a flow came in while reading).",
        ));
    }
    if holds.open.is_empty() {
        out.push_str("<p class=\"muted\">No open holds.</p>\n");
        return Ok(out);
    }
    let mut rows = Vec::new();
    for hold in &holds.open {
        let detail = ledger.detail(hold)?;
        let mut row = vec![
            escape(&detail.outer_order_id).to_string(),
            escape(&detail.flow_id).to_string(),
            escape(&detail.order_time).to_string(),
        ];
        row.extend(Bucket::ALL.iter().map(|bucket| hold.held.get(*bucket).format(scale)));
        row.push(total(&hold.held)?.format(scale));
        row.push(html::optional(hold.expire_time.map(|time| zone.format_local(time)).as_deref()));
        rows.push(row);
    }
    out.push_str(&html::table(
        "holds",
        &["Hold order", "Flow id", "Time", "Held REAL", "Held GIFT", "Held PRE", "Held TOTAL", "Expires"],
        &[false, true, false, true, true, true, true, false],
        &rows,
    ));
    Ok(out)
}

/// The account's latest `flows_max` flows, oldest first, and how many it has in all.
async fn latest_flows(ledger: &Ledger, account_id: &str, flows_max: u64) -> Result<(Vec<Flow>, u64), ApiError> {
    let mut query = FlowQuery::new(account_id);
    query.page_size = 1;
    let count = ledger.flows(query.clone()).await?.total_count;
    let skip = count.saturating_sub(flows_max);
    query.page_size = PAGE_SIZE_MAX;
    let page_size = u64::from(PAGE_SIZE_MAX);
    let mut position = skip / page_size * page_size;
    query.page_no = u32::try_from(skip / page_size + 1).unwrap_or(u32::MAX);
    let mut flows = Vec::new();
    // At most the pages that hold `flows_max` flows, and one more for a page boundary.
    for _ in 0..flows_max.div_ceil(page_size) + 1 {
        let page = ledger.flows(query.clone()).await?;
        if page.flows.is_empty() {
            break;
        }
        for flow in page.flows {
            if position >= skip {
                flows.push(flow);
            }
            position += 1;
        }
        if position >= count {
            break;
        }
        query.page_no += 1;
    }
    Ok((flows, count))
}

/// The filter form, the page of flows and the pager; a filter that cannot be read is a notice
/// here, and the rest of the page still shows.
async fn flows_section(state: &AppState, account_id: &str, pairs: &[(String, String)]) -> String {
    let filters: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, value)| FILTER_FIELDS.contains(&name.as_str()) && !value.trim().is_empty())
        .map(|(name, value)| (name.clone(), value.trim().to_owned()))
        .collect();
    let mut out = format!("<h2>Flows</h2>\n{}", filter_form(account_id, &filters));
    match flow_page(state, account_id, &filters).await {
        Ok(page) => out.push_str(&page),
        Err(error) => out.push_str(&html::notice("error", &format!("{}: {}", error.code.as_str(), error.message))),
    }
    out
}

async fn flow_page(state: &AppState, account_id: &str, filters: &[(String, String)]) -> Result<String, ApiError> {
    let units = state.units();
    let definition = state.definitions().get("flows");
    let mut fields = vec![("account_id".to_owned(), account_id.to_owned())];
    fields.extend(filters.iter().cloned());
    let args: FlowsArgs = definition.parse(&fields)?;
    let query = purse_wire::command::flow_query(&args, units.zone).map_err(|error| definition.api_error(error))?;
    let page = state.ledger().flows(query).await?;
    let details = page.flows.iter().map(|flow| state.ledger().detail(flow)).collect::<Result<Vec<_>, _>>()?;
    let pages = page.total_count.div_ceil(u64::from(page.page_size)).max(1);
    let mut out = format!(
        "<p class=\"muted\" id=\"flows-count\">{} flows match; page {} of {pages}.</p>\n",
        page.total_count, page.page_no
    );
    if details.is_empty() {
        out.push_str("<p class=\"muted\">No flows on this page.</p>\n");
    } else {
        out.push_str(&flows_table(&details));
    }
    out.push_str(&pager(account_id, filters, page.page_no, pages));
    Ok(out)
}

fn filter_form(account_id: &str, filters: &[(String, String)]) -> String {
    let value = |name: &str| filters.iter().find(|(field, _)| field == name).map_or("", |(_, value)| value.as_str());
    let chosen = value("flow_type").to_ascii_uppercase();
    let mut options = String::from("<option value=\"\">all types</option>");
    for flow_type in FlowType::ALL {
        let name = flow_type.as_str();
        let selected = if name == chosen { " selected" } else { "" };
        options.push_str(&format!("<option value=\"{name}\"{selected}>{name}</option>"));
    }
    format!(
        "<form method=\"get\" action=\"/console/account\" class=\"inline\">\n\
         <input type=\"hidden\" name=\"account_id\" value=\"{}\">\n\
         <label>Flow type <select name=\"flow_type\">{options}</select></label>\n\
         <label>From (YYYY-MM-DD HH:MM:SS) <input type=\"text\" name=\"start_time\" size=\"19\" value=\"{}\"></label>\n\
         <label>Until, exclusive <input type=\"text\" name=\"end_time\" size=\"19\" value=\"{}\"></label>\n\
         <label>Per page <input type=\"number\" name=\"page_size\" min=\"1\" max=\"{PAGE_SIZE_MAX}\" value=\"{}\"></label>\n\
         <button type=\"submit\">Filter</button>\n</form>\n",
        escape(account_id),
        escape(value("start_time")),
        escape(value("end_time")),
        escape(if value("page_size").is_empty() { "20" } else { value("page_size") }),
    )
}

/// The flows of a page in the spec §5 text of each: the signed change per bucket, the change
/// of held value, and the TOTAL after.
fn flows_table(details: &[FlowDetail]) -> String {
    let rows: Vec<Vec<String>> = details
        .iter()
        .map(|detail| {
            let affected = |name: &str| property(&detail.affected_property_list, name);
            vec![
                escape(&detail.flow_id).to_string(),
                escape(&detail.order_time).to_string(),
                escape(detail.flow_type).to_string(),
                escape(&detail.outer_order_id).to_string(),
                html::optional(detail.src_outer_order_id.as_deref()),
                affected("REAL"),
                affected("GIFT"),
                affected("PRE"),
                escape(&detail.order_value).to_string(),
                property(&detail.held_property_list, "TOTAL"),
                escape(&detail.current_value).to_string(),
                html::optional(detail.remark.as_deref()),
            ]
        })
        .collect();
    html::table(
        "flows",
        &[
            "Flow id",
            "Time",
            "Type",
            "Order",
            "Source order",
            "REAL",
            "GIFT",
            "PRE",
            "Change",
            "Held",
            "TOTAL after",
            "Remark",
        ],
        &[true, false, false, false, false, true, true, true, true, true, true, false],
        &rows,
    )
}

/// One entry of a spec §5 property list, escaped (the lists always hold all four).
fn property(list: &[(&'static str, String)], name: &str) -> String {
    list.iter().find(|(entry, _)| *entry == name).map_or_else(String::new, |(_, value)| escape(value).to_string())
}

/// Links to the pages before and after, keeping the filters.
fn pager(account_id: &str, filters: &[(String, String)], page_no: u32, pages: u64) -> String {
    let link = |page_no: u32, label: &str| {
        let page_text = page_no.to_string();
        let mut fields: Vec<(&str, &str)> = vec![("account_id", account_id)];
        fields.extend(
            filters.iter().filter(|(name, _)| name != "page_no").map(|(name, value)| (name.as_str(), value.as_str())),
        );
        fields.push(("page_no", &page_text));
        format!("<a href=\"/console/account{}\" rel=\"{label}\">{label}</a>", escape(&html::query_string(fields)))
    };
    let previous = if page_no > 1 { link(page_no - 1, "prev") } else { "<span class=\"muted\">prev</span>".to_owned() };
    let next = if u64::from(page_no) < pages {
        link(page_no + 1, "next")
    } else {
        "<span class=\"muted\">next</span>".to_owned()
    };
    format!("<p class=\"pager\">{previous} {next}</p>\n")
}
