//! An account as it stood at a point of its history (spec §12): `account --as-of-flow-id N`
//! and `account --at TIME`.
//!
//! Not a fold of the whole log: the per-account index says which log entries are the
//! account's, and only those are read and folded, alone, in a [`State::for_one_account`]. The
//! cost is one fold step per flow of that account up to the point, and one read of each log block
//! holding any of them (none for any other account's); no checkpoints are kept
//! (docs/performance.md has the figures).

use purse_core::{Account, State, Timestamp};

use crate::error::Error;
use crate::ledger::{AccountView, Ledger};
use crate::writer::Writer;

/// Which point of an account's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After log entry N (rules changes take positions too).
    Entry(u64),
    /// After the account's last flow, in log order, whose order_time ≤ TIME.
    Time(Timestamp),
}

impl Ledger {
    /// The account view of `account_id` as it stood at `point`; an account that did not exist
    /// yet is `ACCOUNT_NOT_FOUND`.
    pub async fn account_as_of(&self, account_id: &str, point: AsOf) -> Result<AccountView, Error> {
        let account_id = account_id.to_owned();
        self.query(move |writer| account_as_of(writer, &account_id, point)).await
    }
}

fn account_as_of(writer: &Writer, account_id: &str, point: AsOf) -> Result<AccountView, Error> {
    let last_sequence = writer.projections.state.last_sequence();
    if let AsOf::Entry(entry) = point {
        if entry > last_sequence {
            return Err(Error::InvalidArgument(format!(
                "as_of_flow_id {entry} is past the end of the log (its last entry is {last_sequence})"
            )));
        }
    }
    let account = account_at(writer, account_id, point, last_sequence)?;
    account.as_ref().map(AccountView::of).ok_or_else(|| Error::AccountNotFound(account_id.to_owned()))
}

/// The account `account_id` at `point`, looking only at log entries up to `through`; `None` if it
/// did not exist yet (or does not exist at all).
pub(crate) fn account_at(
    writer: &Writer,
    account_id: &str,
    point: AsOf,
    through: u64,
) -> Result<Option<Account>, Error> {
    let Some(flows) = writer.projections.flow_refs(account_id)? else { return Ok(None) };
    let flows = &flows[..flows.partition_point(|flow| flow.sequence <= through)];
    let upto = match point {
        AsOf::Entry(entry) => flows.partition_point(|flow| flow.sequence <= entry),
        AsOf::Time(time) => flows.iter().rposition(|flow| flow.order_time <= time).map_or(0, |last| last + 1),
    };
    if upto == 0 {
        return Ok(None);
    }
    let mut state = State::for_one_account(writer.projections.state.config());
    let sequences: Vec<u64> = flows[..upto].iter().map(|flow| flow.sequence).collect();
    crate::history::read_flows(writer, &sequences, |flow| {
        purse_core::apply(&mut state, &flow)
            .map_err(|error| Error::Corruption(format!("refolding account {account_id:?}: {error}")))
    })?;
    state.check_lots().map_err(|reason| Error::Corruption(format!("refolding account {account_id:?}: {reason}")))?;
    Ok(state.account(account_id).cloned())
}
