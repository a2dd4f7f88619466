//! The expiry sweep (spec §11): `Ledger::expire(now, scope)`.
//!
//! The domain has no clock, so expiry happens only when someone sweeps: for each account with
//! unheld value in lots expired at `now`, or with open holds expired at `now`, the sweep writes
//! a RELEASE of each such hold, then one EXPIRE. Their ids are fixed by `now` and the account
//! (or hold), so a second sweep at the same `now` is answered as a replay and writes nothing.
//!
//! It runs in groups of at most [`SWEEP_GROUP_ACCOUNTS`] accounts and [`SWEEP_GROUP_COMMANDS`]
//! commands, each group one commit: a
//! sweep over a million accounts never holds the writer for long nor builds one huge commit, and
//! other requests are served between its groups.

use purse_core::{Command, ErrorCode, Flow, Timestamp};

use crate::error::Error;
use crate::ledger::Ledger;
use crate::writer::{GroupItem, GroupMode};

/// Accounts per commit of a sweep at most.
pub const SWEEP_GROUP_ACCOUNTS: usize = 512;
/// Commands (RELEASEs and EXPIREs) per commit of a sweep at most.
pub const SWEEP_GROUP_COMMANDS: usize = 4096;

/// Which accounts a sweep looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepScope {
    All,
    /// One account; unknown: `ACCOUNT_NOT_FOUND`.
    Account(String),
}

/// One account the sweep has work for: its expired open holds, in the order they were made.
#[derive(Debug, Clone)]
struct Due {
    account_id: String,
    holds: Vec<String>,
}

impl Ledger {
    /// Sweeps at `now` (spec §11) and returns the flows it wrote, in log order: for each account,
    /// the RELEASEs of its expired holds, then its EXPIRE. Nothing due: an empty list.
    pub async fn expire(&self, now: Timestamp, scope: SweepScope) -> Result<Vec<Flow>, Error> {
        let due = self.query(move |writer| due(&writer.projections.state, now, &scope)).await?;
        let zone = self.zone();
        // In log order: per account its RELEASEs, then its EXPIRE. Cut into commits of at most
        // SWEEP_GROUP_ACCOUNTS accounts and SWEEP_GROUP_COMMANDS commands (an account with very
        // many expired holds spans several; its EXPIRE still comes after all of them).
        let mut flows = Vec::new();
        let mut commands = Vec::new();
        let mut accounts = 0;
        for account in &due {
            for hold in &account.holds {
                commands.push(Command::expire_hold(&account.account_id, hold, now, zone));
                if commands.len() >= SWEEP_GROUP_COMMANDS {
                    flows.extend(self.sweep_group(std::mem::take(&mut commands)).await?);
                    accounts = 0;
                }
            }
            commands.push(Command::expire(&account.account_id, now, zone));
            accounts += 1;
            if accounts >= SWEEP_GROUP_ACCOUNTS || commands.len() >= SWEEP_GROUP_COMMANDS {
                flows.extend(self.sweep_group(std::mem::take(&mut commands)).await?);
                accounts = 0;
            }
        }
        if !commands.is_empty() {
            flows.extend(self.sweep_group(commands).await?);
        }
        Ok(flows)
    }

    /// One commit of a sweep; the flows it wrote, read back.
    async fn sweep_group(&self, commands: Vec<Command>) -> Result<Vec<Flow>, Error> {
        let outcome = self.submit_group(commands, GroupMode::Partial).await?;
        let mut written = Vec::new();
        for item in outcome.items {
            match item {
                GroupItem::Written(summary) => written.push(summary.flow_id),
                // Swept at this `now` before, or nothing left to expire after the releases.
                GroupItem::Replayed(_) | GroupItem::Skipped(_) => {}
                // Captured or released since the sweep looked: nothing left for it to do.
                GroupItem::Rejected(error) if error.code() == ErrorCode::AlreadyReversed => {}
                GroupItem::Rejected(error) => return Err(error),
            }
        }
        // Read back group by group (one read of every flow would hold the writer as long), each
        // block once: a group's flows sit in a few consecutive blocks.
        self.query(move |writer| {
            let mut flows = Vec::with_capacity(written.len());
            crate::history::read_flows(writer, &written, |flow| {
                flows.push(flow);
                Ok(())
            })?;
            Ok(flows)
        })
        .await
    }
}

/// The accounts in `scope` with work at `now`, in the order the accounts were opened.
fn due(state: &purse_core::State, now: Timestamp, scope: &SweepScope) -> Result<Vec<Due>, Error> {
    let mut holds_of: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    for (account_id, hold) in state.expired_holds(now) {
        holds_of.entry(account_id).or_default().push(hold);
    }
    let wanted =
        |account: &purse_core::Account| account.lots.has_expirable(now) || holds_of.contains_key(&account.account_id);
    let accounts: Vec<&purse_core::Account> = match scope {
        SweepScope::All => state.accounts().filter(|account| wanted(account)).collect(),
        SweepScope::Account(account_id) => {
            let account = state.account(account_id).ok_or_else(|| Error::AccountNotFound(account_id.clone()))?;
            if wanted(account) {
                vec![account]
            } else {
                Vec::new()
            }
        }
    };
    Ok(accounts
        .into_iter()
        .map(|account| Due {
            account_id: account.account_id.clone(),
            holds: holds_of.remove(&account.account_id).unwrap_or_default(),
        })
        .collect())
}
