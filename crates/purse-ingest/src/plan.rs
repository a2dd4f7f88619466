//! From records to commands: the providers' time order, opening balances, the holds a release
//! closes, and the ids that make a second ingestion of the same records add nothing.
//!
//! Every record becomes one command under `request_id` = `"<provider>:<record id>"`, so the
//! ledger's idempotency turns a record seen before into a replay; its `outer_order_id` is the
//! business order id the record states (ALSC `outer_order_id`), else the same
//! `"<provider>:<record id>"`. A money record is an `Action::Recorded`, a Zenlayer
//! `ORDER_FROZEN` an `Action::Hold` and an `ORDER_UNFROZEN` the `Action::Release` of the hold
//! [`match_releases`] finds for it. An opening balance is an `Action::Open` under
//! `"<provider>:open:<account>"`, dated at the account's first record: the writer applies it
//! only if the account does not exist when the group reaches it, and skips it otherwise.

use std::collections::{HashMap, HashSet, VecDeque};

use purse_core::{Action, Amount, Command, FlowType, Source};
use purse_ledger::{FlowKey, FlowQuery, Ledger};

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
            Item::Record(record) if record.effect.is_command() => Some((record.time, index)),
            _ => None,
        })
        .collect();
    order.sort_by_key(|(time, _)| *time);
    order.into_iter().map(|(_, index)| index).collect()
}

/// What each command of the group stands for, in order: with `opening_balances`, an opening
/// balance before the first record (in `order`) of each account when that record states a
/// balance before it that is not zero; then the records in `order`. Whether the account is new
/// is not asked here: the writer decides it ([`Action::Open`]). The commands themselves are
/// built a part at a time by [`command`], so a run never holds a million of them.
pub(crate) fn slots(items: &[Item], order: &[usize], opening_balances: bool) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(order.len());
    let mut seen = HashSet::new();
    for &index in order {
        let Some(record) = record(items, index) else { continue };
        if !record.effect.is_command() {
            continue;
        }
        if seen.insert(record.account_id.as_str())
            && opening_balances
            && record.opening.is_some_and(|opening| !opening.is_zero())
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
            let action = match &record.effect {
                Effect::Flow { flow_type, affected } => {
                    let source = Source { provider: provider.as_str().to_owned(), record_id: record.record_id.clone() };
                    Action::Recorded { flow_type: *flow_type, affected: *affected, source }
                }
                Effect::Hold { value } => Action::Hold { value: *value, expire_time: None },
                Effect::Release { hold: Some(hold), .. } => Action::Release { src_outer_order_id: hold.to_string() },
                Effect::Release { hold: None, .. } | Effect::Skip { .. } | Effect::Unsplit { .. } => return None,
            };
            Some(record_command(provider, record, action))
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

fn record_command(provider: Provider, record: &mut Record, action: Action) -> Command {
    let request_id = order_id(provider, &record.record_id);
    let references = record.references.take().map(|references| *references).unwrap_or_default();
    Command {
        gift_expire_time: None,
        pre_expire_time: None,
        outer_order_id: references.order_id.unwrap_or_else(|| request_id.clone()),
        request_id,
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
    let id = opening_id(provider, &record.account_id, &record.record_id);
    let action = Action::Open { real: balance.real, gift: balance.gift, pre: balance.pre };
    let mut command = Command::new(&id, &id, &record.account_id, action);
    command.biz_date = Some(record.time);
    command.remark = Some(format!("opening balance stated by {provider} record {}", record.record_id));
    if let Some(references) = &record.references {
        command.card_id.clone_from(&references.card_id);
        command.brand_id.clone_from(&references.brand_id);
    }
    command
}

/// The request and order id of the opening balance stated by `record_id`, the first record of
/// `account` in a run: `"<provider>:open:<account>:<record id>"` (the record id as a content
/// hash if that would pass the id limit). Named after the record as well as the account, so a
/// later run that starts the account at another record sends another request, which the writer
/// skips, instead of reusing this one for a different balance (an IDEMPOTENCY_CONFLICT); and
/// not `opening:`, the ids of the plain IMPORTs written before the writer decided this.
pub(crate) fn opening_id(provider: Provider, account: &str, record_id: &str) -> String {
    let id = format!("{provider}:open:{account}:{record_id}");
    if id.chars().count() <= purse_core::REQUEST_ID_CHARS_MAX.min(purse_core::ORDER_ID_CHARS_MAX) {
        id
    } else {
        format!("{provider}:open:{account}:{}", crate::kybio::content_id(&[record_id]))
    }
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
        match written(ledger, provider, record).await? {
            Some(flow) => {
                report.duplicates += 1;
                crate::reconcile::row(index, record, &flow, ledger.scale(), report);
            }
            None => report.reject(
                index,
                Some(&record.record_id),
                purse_core::ErrorCode::InvalidArgument,
                format!(
                    "flow {:?} is a listing row (accountflows.get) without property lists: its change per \
                     bucket is unknown; ingest its flowdetail.get response instead",
                    record.record_id
                ),
            ),
        }
    }
    Ok(())
}

/// The flow the ledger holds for `record`, from this or an earlier run: under the order id it
/// states (if it was written for this record) or under its own id.
async fn written(ledger: &Ledger, provider: Provider, record: &Record) -> Result<Option<purse_core::Flow>, Error> {
    let own = order_id(provider, &record.record_id);
    let stated = record.references.as_ref().and_then(|references| references.order_id.as_ref());
    for key in stated.into_iter().chain(std::iter::once(&own)) {
        match ledger.flow(FlowKey::OuterOrderId(key.clone())).await {
            Ok(flow) if flow.request_id == own => return Ok(Some(flow)),
            Ok(_) | Err(purse_ledger::Error::NotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(None)
}

/// Finds the hold each release (Zenlayer `ORDER_UNFROZEN`) closes. Zenlayer's records name no
/// order, so a release is matched as Zenlayer's own balance sees it: by account and amount, to
/// the earliest hold of that account and amount still open at its time. First among the holds of
/// this run before it in time order; then, for a release already in the ledger (a second
/// ingestion), the hold it released then; then among this provider's holds the ledger holds
/// open. A release with none is rejected (`ORDER_NOT_FOUND`): nothing it could release is known.
pub(crate) async fn match_releases(
    ledger: &Ledger,
    items: &mut [Item],
    provider: Provider,
    report: &mut Report,
) -> Result<(), Error> {
    if !items.iter().any(|item| matches!(item, Item::Record(Record { effect: Effect::Release { .. }, .. }))) {
        return Ok(());
    }
    // In this run: every hold in time order, queued per account and amount.
    let mut open: HashMap<(String, Amount), VecDeque<String>> = HashMap::new();
    let mut unmatched = Vec::new();
    for index in order(items) {
        let Some(Item::Record(record)) = items.get_mut(index) else { continue };
        match &mut record.effect {
            Effect::Hold { value } => open
                .entry((record.account_id.clone(), *value))
                .or_default()
                .push_back(order_id(provider, &record.record_id)),
            Effect::Release { value, hold } => {
                *hold = open
                    .get_mut(&(record.account_id.clone(), *value))
                    .and_then(VecDeque::pop_front)
                    .map(String::into_boxed_str);
                if hold.is_none() {
                    unmatched.push(index);
                }
            }
            _ => {}
        }
    }
    // Earlier runs: the ledger's open holds of this provider, per account, taken in order.
    let mut ledger_holds: HashMap<String, Vec<(String, Amount)>> = HashMap::new();
    for index in unmatched {
        let Some(Item::Record(record)) = items.get(index) else { continue };
        let Effect::Release { value, .. } = record.effect else { continue };
        let found = match written(ledger, provider, record).await? {
            Some(flow) if flow.flow_type == FlowType::Release => flow.source_order_id,
            _ => {
                if !ledger_holds.contains_key(&record.account_id) {
                    let holds = open_holds(ledger, provider, &record.account_id).await?;
                    ledger_holds.insert(record.account_id.clone(), holds);
                }
                let holds = ledger_holds.get_mut(&record.account_id).expect("filled above");
                holds.iter().position(|(_, held)| *held == value).map(|at| holds.remove(at).0)
            }
        };
        match found {
            Some(hold) => {
                if let Some(Item::Record(Record { effect: Effect::Release { hold: slot, .. }, .. })) =
                    items.get_mut(index)
                {
                    *slot = Some(hold.into_boxed_str());
                }
            }
            None => {
                let scale = ledger.scale();
                let message = format!(
                    "ORDER_UNFROZEN {:?} releases {} on account {:?}, and no ORDER_FROZEN hold of that amount on \
                     that account is open, in this run before it or in the ledger: ingest the records that hold \
                     its ORDER_FROZEN with it",
                    record.record_id,
                    value.format(scale),
                    record.account_id
                );
                let record_id = record.record_id.clone();
                let error = Error::Unmatched { message };
                report.reject_error(index, Some(&record_id), &error, "");
                items[index] = Item::Rejected(crate::record::Rejection { record_id: Some(record_id), error });
            }
        }
    }
    Ok(())
}

/// The open HOLDs of `account` that this provider's records placed, oldest first, with the
/// value each holds.
async fn open_holds(ledger: &Ledger, provider: Provider, account: &str) -> Result<Vec<(String, Amount)>, Error> {
    let mut holds = Vec::new();
    let mut closed = HashSet::new();
    let mut query = FlowQuery::new(account);
    query.flow_types = vec![FlowType::Hold, FlowType::Capture, FlowType::Release];
    query.page_size = purse_ledger::PAGE_SIZE_MAX;
    loop {
        let page = match ledger.flows(query.clone()).await {
            Ok(page) => page,
            Err(purse_ledger::Error::AccountNotFound(_)) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        for flow in &page.flows {
            if flow.flow_type == FlowType::Hold {
                if flow.request_id.starts_with(&format!("{provider}:")) {
                    if let Some(value) = flow.held.total() {
                        holds.push((flow.outer_order_id.clone(), value));
                    }
                }
            } else if let Some(hold) = &flow.source_order_id {
                closed.insert(hold.clone());
            }
        }
        if u64::from(query.page_no) * u64::from(query.page_size) >= page.total_count {
            break;
        }
        query.page_no += 1;
    }
    holds.retain(|(hold, _)| !closed.contains(hold));
    Ok(holds)
}

#[cfg(test)]
mod tests {
    use purse_core::{Action, Amount, Command};
    use purse_ledger::{GroupItem, GroupMode, Ledger, LedgerConfig};

    use super::{command, order, slots};
    use crate::options::Provider;
    use crate::test_support::{items, options};

    /// The race a probe before the group lost: the run is planned while the account is unknown,
    /// then a plain charge opens it, then the group runs. The writer skips the opening balance.
    #[tokio::test]
    async fn an_account_opened_after_planning_gets_no_second_opening_balance() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(LedgerConfig::new(dir.path())).await.unwrap();
        let list = |real: i64| {
            format!(r#"[{{"type":"REAL","value":{real}}},{{"type":"GIFT","value":0}},{{"type":"PRE","value":0}}]"#)
        };
        let record = format!(
            r#"{{"result":{{"biz_success":true,"result":{{"account_id":"b-1","flow_id":"f1","flow_type":"DEDUCT","order_time":"2024-01-02 10:00:00","outer_order_id":"pos-1","before_property_list":{},"after_property_list":{}}}}}}}"#,
            list(5000),
            list(4000)
        );
        let mut items = items(&options(Provider::Alsc), &record);
        let order = order(&items);
        let slots = slots(&items, &order, true);
        let commands: Vec<Command> =
            slots.iter().map(|slot| command(Provider::Alsc, &mut items, *slot).unwrap()).collect();
        assert_eq!(commands.len(), 2, "planned: an opening balance, then the record");
        assert!(matches!(commands[0].action, Action::Open { .. }), "{commands:?}");
        assert_eq!(commands[0].request_id, "alsc:open:b-1:f1");
        assert_eq!((commands[1].request_id.as_str(), commands[1].outer_order_id.as_str()), ("alsc:f1", "pos-1"));

        let real = Amount::from_minor(20_000);
        let charge = Action::Charge { real, gift: None, pre: Amount::ZERO, trigger_gift: false };
        ledger.submit(Command::new("c-1", "c-1", "b-1", charge)).await.unwrap();
        let outcome = ledger.submit_group(commands.clone(), GroupMode::AllOrNothing).await.unwrap();
        assert!(outcome.committed);
        assert!(matches!(outcome.items[..], [GroupItem::Skipped(_), GroupItem::Written(_)]), "{outcome:?}");
        let balance = |view: purse_ledger::AccountView| view.balance.real.minor();
        assert_eq!(balance(ledger.account("b-1").await.unwrap()), 19_000, "200.00 charged, 10.00 spent, no 50.00");
        // Again: still no opening balance, and the record is a replay.
        let again = ledger.submit_group(commands, GroupMode::AllOrNothing).await.unwrap();
        assert!(matches!(again.items[..], [GroupItem::Skipped(_), GroupItem::Replayed(_)]), "{again:?}");
        assert_eq!(balance(ledger.account("b-1").await.unwrap()), 19_000);
        ledger.close().await.unwrap();
    }
}
