//! Reconciliation: every balance a record states, compared with the ledger's balance at that
//! point (the flow's before and after, as the ledger decided or had written it).

use purse_core::{Amount, Buckets, Flow, Property, Scale};
use purse_ledger::GroupItem;

use crate::plan::Slot;
use crate::record::{Item, Record, Stated};
use crate::report::{Mismatch, Report};

/// Counts what became of each command and compares the balances of each record's flow.
pub(crate) fn outcome(items: &[Item], slots: &[Slot], outcome: &[GroupItem], scale: Scale, report: &mut Report) {
    debug_assert_eq!(slots.len(), outcome.len(), "one outcome per command");
    for (slot, result) in slots.iter().zip(outcome) {
        let (index, opening) = match *slot {
            Slot::Opening(index) => (index, true),
            Slot::Record(index) => (index, false),
        };
        let Some(Item::Record(record)) = items.get(index) else {
            debug_assert!(false, "slot {slot:?} names no record");
            continue;
        };
        match (result, opening) {
            (GroupItem::Rejected(error), true) => {
                report.reject_error(index, Some(&record.record_id), &error.clone().into(), "opening balance IMPORT: ");
            }
            (GroupItem::Rejected(error), false) => {
                report.reject_error(index, Some(&record.record_id), &error.clone().into(), "");
            }
            (GroupItem::Written(_), true) => report.opening_balances += 1,
            // Brought in by an earlier run: counted then.
            (GroupItem::Replayed(_), true) => {}
            // The writer found the account already there: its balance is the ledger's own.
            (GroupItem::Skipped(why), true) => {
                report.skip(index, Some(&record.record_id), &format!("opening balance: {why}"))
            }
            (GroupItem::Skipped(why), false) => report.skip(index, Some(&record.record_id), &why.to_string()),
            (GroupItem::Written(summary), false) => {
                report.applied += 1;
                compare(index, record, "before", &record.before, &summary.before, scale, report);
                compare(index, record, "after", &record.after, &summary.after, scale, report);
            }
            (GroupItem::Replayed(summary), false) => {
                report.duplicates += 1;
                compare(index, record, "before", &record.before, &summary.before, scale, report);
                compare(index, record, "after", &record.after, &summary.after, scale, report);
            }
        }
    }
}

/// A listing row whose flow the ledger already holds: its `current_value` against that flow's.
pub(crate) fn row(index: usize, record: &Record, flow: &Flow, scale: Scale, report: &mut Report) {
    let (Some(stated), Some(ledger)) = (record.after.total, flow.after().and_then(|after| after.total())) else {
        return;
    };
    if stated != ledger {
        report.mismatches.push(mismatch(index, record, "after", Property::Total, stated, ledger, scale));
    }
}

fn compare(
    index: usize,
    record: &Record,
    side: &'static str,
    stated: &Stated,
    ledger: &Buckets,
    scale: Scale,
    report: &mut Report,
) {
    if stated.is_empty() {
        return;
    }
    let Some(properties) = ledger.properties() else { return };
    for (property, held) in properties {
        if let Some(said) = stated.get(property) {
            if said != held {
                report.mismatches.push(mismatch(index, record, side, property, said, held, scale));
            }
        }
    }
}

fn mismatch(
    index: usize,
    record: &Record,
    side: &'static str,
    property: Property,
    said: Amount,
    held: Amount,
    scale: Scale,
) -> Mismatch {
    Mismatch {
        index: index as u64,
        record_id: record.record_id.clone(),
        account_id: record.account_id.clone(),
        balance: side,
        bucket: property.as_str(),
        provider: said.format(scale),
        ledger: held.format(scale),
    }
}
