//! Reading history and reports (spec §12): the log exported page by page, an account's
//! statement over a time window, the accounts listed, looked up by card, and the liability
//! they add up to.
//!
//! Every read here is a query on the writer thread, so it blocks writes while it runs. Each is
//! bounded: an export reads at most [`EXPORT_PAGE_ENTRIES_MAX`] log entries per query, a
//! statement reads only the account's own flows in its window (through the per-account index),
//! and the account list and the liability read the in-memory projections, never the log.

use std::collections::BTreeMap;

use purse_core::{Account, AccountStatus, Buckets, Entry, Flow, FlowType, Scale, Timestamp};

use crate::block::Block;
use crate::error::Error;
use crate::ledger::{AccountView, Ledger, PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX};
use crate::record::EntryRecord;
use crate::writer::Writer;

/// Log entries one export query reads at most. A query blocks writes while it runs; 4,096
/// entries are 16 to 20 blocks, read and decoded in a few milliseconds.
pub const EXPORT_PAGE_ENTRIES_MAX: u32 = 4096;

/// Which flows an export keeps. Empty `flow_types`: every type; the window is `[start, end)`
/// over order_time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    pub flow_types: Vec<FlowType>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    /// The last log entry to read; `None`: the log's end as each page finds it.
    /// [`Ledger::export`] pins it at the end the export started with.
    pub through_sequence: Option<u64>,
}

impl ExportFilter {
    fn keeps(&self, flow: &Flow) -> bool {
        (self.flow_types.is_empty() || self.flow_types.contains(&flow.flow_type))
            && self.start_time.is_none_or(|start| flow.order_time >= start)
            && self.end_time.is_none_or(|end| flow.order_time < end)
    }
}

/// One page of an export: the flows kept among the entries read, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPage {
    pub flows: Vec<Flow>,
    /// The last log entry this page read, to pass as `after_sequence` for the next page;
    /// `None` when the export has reached its end.
    pub next: Option<u64>,
}

/// An export in progress: pages of [`Ledger::export_page`] up to the log's end as it stood
/// when [`Ledger::export`] began, so that writes during a long export do not prolong it.
#[derive(Debug)]
pub struct ExportStream {
    ledger: Ledger,
    filter: ExportFilter,
    /// The entry to read after; `None` once the end was reached.
    after_sequence: Option<u64>,
    entries_max: u32,
}

impl ExportStream {
    /// The next page's flows (possibly none, if the filter kept none of its entries), or `None`
    /// at the end.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Flow>>, Error> {
        let Some(after_sequence) = self.after_sequence else { return Ok(None) };
        let page = self.ledger.export_page(after_sequence, self.entries_max, &self.filter).await?;
        self.after_sequence = page.next;
        Ok(Some(page.flows))
    }
}

/// An account's statement over `[start_time, end_time)` (spec §12, §13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub account_id: String,
    pub start_time: Timestamp,
    pub end_time: Timestamp,
    /// `closing` − the window's affected.
    pub opening: Buckets,
    /// The balance after the account's last flow, in log order, with order_time < `end_time`.
    pub closing: Buckets,
    /// The window's flows by type, in [`FlowType::ALL`] order; only types that occur.
    pub by_flow_type: Vec<FlowTypeSum>,
    pub flows_count: u64,
    /// The account's flows up to the closing one are not in non-decreasing order_time: then
    /// `opening` may differ from the balance after the last flow before `start_time`.
    pub backdated: bool,
}

/// How many flows of one type a statement's window holds, and what they changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTypeSum {
    pub flow_type: FlowType,
    pub count: u64,
    pub affected: Buckets,
}

/// Which accounts to list, ordered by account_id, one page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountQuery {
    pub brand_id: Option<String>,
    pub status: Option<AccountStatus>,
    /// From 1.
    pub page_no: u32,
    /// 1 to [`PAGE_SIZE_MAX`].
    pub page_size: u32,
}

impl Default for AccountQuery {
    fn default() -> AccountQuery {
        AccountQuery { brand_id: None, status: None, page_no: 1, page_size: PAGE_SIZE_DEFAULT }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPage {
    pub total_count: u64,
    pub page_no: u32,
    pub page_size: u32,
    pub accounts: Vec<AccountView>,
}

impl Ledger {
    /// Starts an export of every flow `filter` keeps, in log order, up to the log's end as it
    /// is now. Each [`ExportStream::next_page`] is one short query of at most
    /// [`EXPORT_PAGE_ENTRIES_MAX`] entries, so writes go on between pages and memory holds one
    /// page, whatever the log's length.
    pub async fn export(&self, mut filter: ExportFilter) -> Result<ExportStream, Error> {
        let end = self.query(|writer| Ok(writer.projections.state.last_sequence())).await?;
        filter.through_sequence = Some(filter.through_sequence.map_or(end, |through| through.min(end)));
        Ok(ExportStream { ledger: self.clone(), filter, after_sequence: Some(0), entries_max: EXPORT_PAGE_ENTRIES_MAX })
    }

    /// The flows `filter` keeps among the next `entries_max` log entries after `after_sequence`
    /// (rules changes take positions but are not flows: they are skipped).
    /// `entries_max` is 1 to [`EXPORT_PAGE_ENTRIES_MAX`].
    pub async fn export_page(
        &self,
        after_sequence: u64,
        entries_max: u32,
        filter: &ExportFilter,
    ) -> Result<ExportPage, Error> {
        if entries_max == 0 || entries_max > EXPORT_PAGE_ENTRIES_MAX {
            return Err(Error::InvalidArgument(format!("entries_max must be 1 to {EXPORT_PAGE_ENTRIES_MAX}")));
        }
        check_window(filter.start_time, filter.end_time, |start, end| start > end)?;
        let filter = filter.clone();
        self.query(move |writer| export_on(writer, after_sequence, entries_max, &filter)).await
    }

    /// The statement of `account_id` over `[start_time, end_time)` (spec §12, §13). The window
    /// must not be empty; an unknown account is `ACCOUNT_NOT_FOUND`. Reads only this account's
    /// flows, the window's and the closing one.
    pub async fn statement(
        &self,
        account_id: &str,
        start_time: Timestamp,
        end_time: Timestamp,
    ) -> Result<Statement, Error> {
        check_window(Some(start_time), Some(end_time), |start, end| start >= end)?;
        let account_id = account_id.to_owned();
        self.query(move |writer| statement_on(writer, account_id, start_time, end_time)).await
    }

    /// One page of the accounts `query` selects, ordered by account_id (byte order).
    pub async fn accounts(&self, query: AccountQuery) -> Result<AccountPage, Error> {
        if query.page_no == 0 {
            return Err(Error::InvalidArgument("page_no starts at 1".into()));
        }
        if query.page_size == 0 || query.page_size > PAGE_SIZE_MAX {
            return Err(Error::InvalidArgument(format!("page_size must be 1 to {PAGE_SIZE_MAX}")));
        }
        self.query(move |writer| {
            let mut selected: Vec<&Account> = writer
                .projections
                .state
                .accounts()
                .filter(|account| query.brand_id.is_none() || account.brand_id == query.brand_id)
                .filter(|account| query.status.is_none_or(|status| account.status == status))
                .collect();
            let skip = (u64::from(query.page_no) - 1).saturating_mul(u64::from(query.page_size));
            let skip = usize::try_from(skip).unwrap_or(usize::MAX).min(selected.len());
            let end = skip.saturating_add(query.page_size as usize).min(selected.len());
            // Only the page itself is sorted: two selections (linear) put the accounts before it
            // in front and the page's own next, so a late page costs what the first does.
            let by_id = |a: &&Account, b: &&Account| a.account_id.cmp(&b.account_id);
            if skip < end {
                if skip > 0 {
                    selected.select_nth_unstable_by(skip, by_id);
                }
                let rest = &mut selected[skip..];
                if end - skip < rest.len() {
                    rest.select_nth_unstable_by(end - skip, by_id);
                }
                rest[..end - skip].sort_unstable_by(by_id);
            }
            Ok(AccountPage {
                total_count: selected.len() as u64,
                page_no: query.page_no,
                page_size: query.page_size,
                accounts: selected[skip..end].iter().map(|account| AccountView::of(account)).collect(),
            })
        })
        .await
    }

    /// Every account opened with `card_id`, oldest first (a card is not unique, spec §2); empty
    /// for a card no account has.
    pub async fn accounts_by_card(&self, card_id: &str) -> Result<Vec<AccountView>, Error> {
        let card_id = card_id.to_owned();
        self.query(move |writer| {
            let state = &writer.projections.state;
            writer
                .projections
                .cards
                .accounts(&card_id)
                .into_iter()
                .map(|account_id| {
                    state.account(account_id).map(AccountView::of).ok_or_else(|| {
                        Error::Corruption(format!("the card index names account {account_id:?}, which does not exist"))
                    })
                })
                .collect()
        })
        .await
    }
}

/// `INVALID_ARGUMENT` for a window `empty` calls empty.
fn check_window(
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    empty: impl Fn(Timestamp, Timestamp) -> bool,
) -> Result<(), Error> {
    match (start, end) {
        (Some(start), Some(end)) if empty(start, end) => {
            Err(Error::InvalidArgument("start_time must be before end_time: the window [start, end) is empty".into()))
        }
        _ => Ok(()),
    }
}

fn export_on(
    writer: &Writer,
    after_sequence: u64,
    entries_max: u32,
    filter: &ExportFilter,
) -> Result<ExportPage, Error> {
    let log_end = writer.projections.state.last_sequence();
    let end = filter.through_sequence.map_or(log_end, |through| through.min(log_end));
    let first = after_sequence.saturating_add(1);
    if first > end {
        return Ok(ExportPage { flows: Vec::new(), next: None });
    }
    let last = end.min(after_sequence.saturating_add(u64::from(entries_max)));
    let mut flows = Vec::new();
    let mut sequence = first;
    while sequence <= last {
        let (key, bytes) = writer
            .store()
            .block_containing(sequence)?
            .ok_or_else(|| Error::Corruption(format!("entry {sequence} is missing from the log")))?;
        let block = Block::parse(key, &bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
        if block.last_sequence() < sequence {
            return Err(Error::Corruption(format!("entry {sequence} is missing from the log")));
        }
        for at in sequence..=block.last_sequence().min(last) {
            if let Entry::Flow(flow) = decode(&block, at)? {
                if filter.keeps(&flow) {
                    flows.push(flow);
                }
            }
        }
        sequence = block.last_sequence() + 1;
    }
    Ok(ExportPage { flows, next: (last < end).then_some(last) })
}

fn decode(block: &Block<'_>, sequence: u64) -> Result<Entry, Error> {
    let (entry, _) = block.entry(sequence).and_then(EntryRecord::into_entry).map_err(Error::Corruption)?;
    Ok(entry)
}

/// Reads the flows with `sequences` (ascending), each block once however many it holds.
pub(crate) fn read_flows(
    writer: &Writer,
    sequences: &[u64],
    mut each: impl FnMut(Flow) -> Result<(), Error>,
) -> Result<(), Error> {
    debug_assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]), "sequences ascend");
    let mut index = 0;
    while let Some(&sequence) = sequences.get(index) {
        let missing = || Error::Corruption(format!("flow {sequence} is missing from the log"));
        let (key, bytes) = writer.store().block_containing(sequence)?.ok_or_else(missing)?;
        let block = Block::parse(key, &bytes).map_err(|reason| Error::Corruption(format!("log block: {reason}")))?;
        if block.last_sequence() < sequence {
            return Err(missing());
        }
        while let Some(&sequence) = sequences.get(index).filter(|&&sequence| sequence <= block.last_sequence()) {
            match decode(&block, sequence)? {
                Entry::Flow(flow) => each(flow)?,
                Entry::Rules(_) => {
                    return Err(Error::Corruption(format!("the index names {sequence}, a rules change")))
                }
            }
            index += 1;
        }
    }
    Ok(())
}

fn statement_on(
    writer: &Writer,
    account_id: String,
    start_time: Timestamp,
    end_time: Timestamp,
) -> Result<Statement, Error> {
    let flows = writer.projections.flow_refs(&account_id)?.ok_or_else(|| Error::AccountNotFound(account_id.clone()))?;
    let mut statement = Statement {
        account_id,
        start_time,
        end_time,
        opening: Buckets::ZERO,
        closing: Buckets::ZERO,
        by_flow_type: Vec::new(),
        flows_count: 0,
        backdated: false,
    };
    // The closing flow: the last in log order before end_time. Every window flow is at or
    // before it, since it too is before end_time.
    let Some(closing_index) = flows.iter().rposition(|flow| flow.order_time < end_time) else {
        return Ok(statement);
    };
    let upto = &flows[..=closing_index];
    statement.backdated = upto.windows(2).any(|pair| pair[1].order_time < pair[0].order_time);
    // The window: start_time ≤ order_time < end_time. Before the closing flow in log order there
    // may be flows dated at or after end_time (the closing flow was backdated): not in it.
    let in_window = |flow: &&crate::projection::FlowRef| flow.order_time >= start_time && flow.order_time < end_time;
    let mut sequences: Vec<u64> = upto.iter().filter(in_window).map(|flow| flow.sequence).collect();
    let closing_sequence = upto[closing_index].sequence;
    let closing_in_window = sequences.last() == Some(&closing_sequence);
    if !closing_in_window {
        sequences.push(closing_sequence);
    }
    let overflow =
        |what: &str| Error::Corruption(format!("{}: {what} leaves the range of an amount", statement.account_id));
    // Keyed by the type's place in FlowType::ALL, then the type itself, so no two types share
    // a key even if one were missing from ALL.
    let mut sums: BTreeMap<(usize, FlowType), FlowTypeSum> = BTreeMap::new();
    let mut affected_total = Buckets::ZERO;
    let mut closing = None;
    read_flows(writer, &sequences, |flow| {
        if flow.flow_id == closing_sequence {
            closing = Some(flow.after().ok_or_else(|| overflow("the closing balance"))?);
            if !closing_in_window {
                return Ok(());
            }
        }
        let position = FlowType::ALL.iter().position(|flow_type| *flow_type == flow.flow_type).unwrap_or(usize::MAX);
        let sum = sums.entry((position, flow.flow_type)).or_insert(FlowTypeSum {
            flow_type: flow.flow_type,
            count: 0,
            affected: Buckets::ZERO,
        });
        sum.count += 1;
        sum.affected = sum.affected.checked_add(&flow.affected).ok_or_else(|| overflow("the affected sum"))?;
        affected_total = affected_total.checked_add(&flow.affected).ok_or_else(|| overflow("the affected sum"))?;
        Ok(())
    })?;
    statement.closing = closing.ok_or_else(|| overflow("the closing flow was not read; it"))?;
    statement.opening =
        statement.closing.checked_sub(&affected_total).ok_or_else(|| overflow("the opening balance"))?;
    statement.by_flow_type = sums.into_values().collect();
    statement.flows_count = statement.by_flow_type.iter().map(|sum| sum.count).sum();
    check_statement(&statement, writer.projections.state.config().scale)?;
    Ok(statement)
}

/// The statement's own arithmetic, checked from its parts: opening + Σ affected by type =
/// closing in every bucket, no opening bucket negative, and the counts add up.
fn check_statement(statement: &Statement, scale: Scale) -> Result<(), Error> {
    let corrupt = |what: String| Err(Error::Corruption(format!("statement of {:?}: {what}", statement.account_id)));
    let mut balance = statement.opening;
    for sum in &statement.by_flow_type {
        match balance.checked_add(&sum.affected) {
            Some(next) => balance = next,
            None => return corrupt("opening + affected leaves the range of an amount".into()),
        }
    }
    if balance != statement.closing {
        return corrupt(format!(
            "opening {:?} + affected is {balance:?}, not the closing {:?}",
            statement.opening, statement.closing
        ));
    }
    // In log order the opening is a balance the account really had (after its last flow before
    // start_time), never negative. With backdated flows it is only closing − the window's
    // affected (spec §13), which may be: flows dated after the window credited what the
    // window's flows took, and they are not in it.
    if let Some(bucket) = statement.opening.negative_bucket().filter(|_| !statement.backdated) {
        return corrupt(format!(
            "the opening {bucket} is negative ({}): the window's flows took more than was there",
            statement.opening.get(bucket).format(scale)
        ));
    }
    if statement.opening.total().is_none() || statement.closing.total().is_none() {
        return corrupt("a TOTAL leaves the range of an amount".into());
    }
    Ok(())
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
