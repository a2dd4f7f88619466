//! From records to commands: the providers' time order, opening balances, and the ids that
//! make a second ingestion of the same records add nothing.
//!
//! Every record becomes one `Action::Recorded` command under `request_id` =
//! `outer_order_id` = `"<provider>:<record id>"`, so the ledger's idempotency turns a record
//! seen before into a replay. An opening balance is an IMPORT under
//! `"<provider>:opening:<account>"`, dated at the account's first record.

use std::collections::HashSet;

use purse_core::{Action, Command, FlowType, Source};
use purse_ledger::{FlowKey, Ledger};

use crate::error::Error;
use crate::options::Provider;
use crate::record::{Effect, Item, Record};
use crate::report::Report;

/// What one command of the group stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The opening IMPORT of the account of the record at this item index.
    Opening(usize),
    /// The record at this item index.
    Record(usize),
}

/// The item indices of the records that become flows, in the providers' time order. The sort
/// is stable, so records with the same time keep the order the provider gave them.
pub(crate) fn order(items: &[Item]) -> Vec<usize> {
    let mut order: Vec<(purse_core::Timestamp, usize)> = items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match item {
            Item::Record(record @ Record { effect: Effect::Flow { .. }, .. }) => Some((record.time, index)),
            _ => None,
        })
        .collect();
    order.sort_by_key(|(time, _)| *time);
    order.into_iter().map(|(_, index)| index).collect()
}

/// The accounts whose first record (in `order`) states a balance before it that is not zero:
/// if the ledger does not know them, their opening balance comes first.
pub(crate) fn opening_candidates(items: &[Item], order: &[usize]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut candidates = Vec::new();
    for record in order.iter().filter_map(|index| record(items, *index)) {
        if seen.insert(record.account_id.as_str()) && record.opening.is_some_and(|opening| !opening.is_zero()) {
            candidates.push(record.account_id.clone());
        }
    }
    candidates
}

/// What each command of the group stands for, in order: an opening IMPORT before the first
/// record of each account in `opening`, then the records in `order`. The commands themselves are
/// built a part at a time by [`command`], so a run never holds a million of them.
pub(crate) fn slots(items: &[Item], order: &[usize], opening: &HashSet<String>) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(order.len());
    let mut opened = HashSet::new();
    for &index in order {
        let Some(record) = record(items, index) else { continue };
        if !matches!(record.effect, Effect::Flow { .. }) {
            continue;
        }
        if opening.contains(&record.account_id) && opened.insert(record.account_id.as_str()) && record.opening.is_some()
        {
            slots.push(Slot::Opening(index));
        }
        slots.push(Slot::Record(index));
    }
    slots
}

/// The command of `slot`. A record's `ext_info` and references move into its command; what
/// reconciliation needs stays. `None` only for a slot [`slots`] would not have made.
pub(crate) fn command(provider: Provider, items: &mut [Item], slot: Slot) -> Option<Command> {
    match slot {
        Slot::Opening(index) => {
            let record = record(items, index)?;
            Some(opening_import(provider, record, record.opening?))
        }
        Slot::Record(index) => {
            let Some(Item::Record(record)) = items.get_mut(index) else { return None };
            let Effect::Flow { flow_type, affected } = record.effect else { return None };
            Some(recorded(provider, record, flow_type, affected))
        }
    }
}

fn record(items: &[Item], index: usize) -> Option<&Record> {
    match items.get(index) {
        Some(Item::Record(record)) => Some(record),
        _ => None,
    }
}

/// The order id (and request id) of a provider record in the ledger.
pub(crate) fn order_id(provider: Provider, record_id: &str) -> String {
    format!("{provider}:{record_id}")
}

fn recorded(provider: Provider, record: &mut Record, flow_type: FlowType, affected: purse_core::Buckets) -> Command {
    let id = order_id(provider, &record.record_id);
    let source = Source { provider: provider.as_str().to_owned(), record_id: record.record_id.clone() };
    let action = Action::Recorded { flow_type, affected, source };
    let references = record.references.take().map(|references| *references).unwrap_or_default();
    Command {
        request_id: id.clone(),
        outer_order_id: id,
        account_id: record.account_id.clone(),
        card_id: references.card_id,
        brand_id: references.brand_id,
        shop_id: references.shop_id,
        operator_id: references.operator_id,
        biz_date: Some(record.time),
        remark: references.remark,
        ext_info: record.ext_info.take(),
        action,
    }
}

fn opening_import(provider: Provider, record: &Record, balance: purse_core::Buckets) -> Command {
    let id = format!("{provider}:opening:{}", record.account_id);
    let action = Action::Import { real: balance.real, gift: balance.gift, pre: balance.pre };
    let mut command = Command::new(&id, &id, &record.account_id, action);
    command.biz_date = Some(record.time);
    command.remark = Some(format!("opening balance stated by {provider} record {}", record.record_id));
    if let Some(references) = &record.references {
        command.card_id.clone_from(&references.card_id);
        command.brand_id.clone_from(&references.brand_id);
    }
    command
}

/// ALSC listing rows give no split, so they are never written. A row whose flow has its detail
/// in this run is skipped; one whose flow is already in the ledger is a duplicate (and its
/// `current_value` is reconciled); any other is rejected, with what to fetch instead.
pub(crate) async fn resolve_unsplit(
    ledger: &Ledger,
    items: &[Item],
    provider: Provider,
    report: &mut Report,
) -> Result<(), Error> {
    let unsplit = |item: &Item| matches!(item, Item::Record(Record { effect: Effect::Unsplit { .. }, .. }));
    if !items.iter().any(unsplit) {
        return Ok(());
    }
    let detailed: HashSet<&str> = items
        .iter()
        .filter_map(|item| match item {
            Item::Record(record @ Record { effect: Effect::Flow { .. }, .. }) => Some(record.record_id.as_str()),
            _ => None,
        })
        .collect();
    for (index, item) in items.iter().enumerate() {
        let Item::Record(record @ Record { effect: Effect::Unsplit { .. }, .. }) = item else { continue };
        if detailed.contains(record.record_id.as_str()) {
            report.skip(index, Some(&record.record_id), "a listing row of a flow whose detail this run applies");
            continue;
        }
        match ledger.flow(FlowKey::OuterOrderId(order_id(provider, &record.record_id))).await {
            Ok(flow) => {
                report.duplicates += 1;
                crate::reconcile::row(index, record, &flow, ledger.scale(), report);
            }
            Err(purse_ledger::Error::NotFound(_)) => report.reject(
                index,
                Some(&record.record_id),
                purse_core::ErrorCode::InvalidArgument,
                format!(
                    "flow {:?} is a listing row (accountflows.get) without property lists: its change per \
                     bucket is unknown; ingest its flowdetail.get response instead",
                    record.record_id
                ),
            ),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
