//! The command line as clap sees it (spec §7). Options carry text: amounts and times are only
//! parsed once the ledger is open, because their meaning depends on its scale and time zone.
//!
//! Amount options take any value that starts with a dash (`--real-value -.5`): clap's own
//! negative-number test misses forms the amount parser accepts. A forgotten value followed by
//! another option is taken as that option's name: `--value --shop-id` at the end of the line
//! fails as an amount naming `--value`; `--value --remark x` leaves a stray `x`, a usage error.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use purse_core::{Scale, Zone};
pub use purse_wire::args::*;

/// `purse [--data DIR] COMMAND …`
#[derive(Debug, Parser)]
#[command(name = "purse", version, about = "An event-sourced stored-value ledger.")]
pub struct Cli {
    /// The ledger's data directory, created on first use.
    #[arg(long, env = "PURSE_DATA", default_value = "./purse-data", value_name = "DIR", global = true)]
    pub data: PathBuf,
    /// Currency decimals of a new ledger (default 2); an existing ledger keeps its own.
    #[arg(long, value_name = "N", global = true)]
    pub scale: Option<Scale>,
    /// Business time zone of a new ledger, like +08:00 (the default) or Z.
    #[arg(long, value_name = "OFFSET", value_parser = parse_zone, global = true, allow_hyphen_values = true)]
    pub time_zone: Option<Zone>,
    /// Entries after the newest snapshot that make the ledger take the next one (0: none).
    /// Hidden: the default suits every use; the crash tests lower it so that snapshots are
    /// written, and killed, at random moments.
    #[arg(long, env = "PURSE_SNAPSHOT_EVERY_ENTRIES", value_name = "N", global = true, hide = true)]
    pub snapshot_every_entries: Option<u64>,
    /// Entries the log holds before snapshots move orders, request ids and flow references to
    /// the cold store. Hidden, like the above: tests lower it to exercise the cold store.
    #[arg(long, env = "PURSE_COLD_AFTER_ENTRIES", value_name = "N", global = true, hide = true)]
    pub cold_after_entries: Option<u64>,
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The hidden settings of [`Cli`] that change a [`purse_ledger::LedgerConfig`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    pub snapshot_every_entries: Option<u64>,
    pub cold_after_entries: Option<u64>,
}

impl Tuning {
    pub fn apply(self, config: &mut purse_ledger::LedgerConfig) {
        if let Some(entries) = self.snapshot_every_entries {
            config.snapshot_every_entries = entries;
        }
        if let Some(entries) = self.cold_after_entries {
            config.cold_after_entries = entries;
        }
    }
}

impl Cli {
    pub fn tuning(&self) -> Tuning {
        Tuning { snapshot_every_entries: self.snapshot_every_entries, cold_after_entries: self.cold_after_entries }
    }
}

/// Every command of spec §7.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Recharge: add to REAL, GIFT and PRE.
    Charge(ChargeArgs),
    /// Consume --value: PRE first, then REAL and GIFT by the brand's deduction order.
    Deduct(DeductArgs),
    /// Refund part or all of one DEDUCT.
    Undeduct(UndeductArgs),
    /// Reverse one CHARGE exactly.
    Uncharge(UnchargeArgs),
    /// Migrate an opening balance from another system.
    Import(ImportArgs),
    /// Operator correction with signed amounts; --remark is required.
    Adjust(AdjustArgs),
    /// Reserve --value for a purchase not yet final (an authorization).
    Hold(HoldArgs),
    /// Close a hold and spend --value of it (default: all of it).
    Capture(CaptureArgs),
    /// Close a hold without spending it.
    Release(ReleaseArgs),
    /// Block the account (lost card, dispute); --remark is required.
    Freeze(StatusArgs),
    /// Unblock a frozen account; --remark is required.
    Unfreeze(StatusArgs),
    /// Close the account for good (it must hold nothing); --remark is required.
    Close(StatusArgs),
    /// Move --value (default: all that is available) to --to-account-id, bucket for bucket.
    Transfer(TransferArgs),
    /// Take all that is available in GIFT, PRE or both (--bucket); --remark is required.
    Clear(ClearArgs),
    /// The expiry sweep at --now: release expired holds, expire unheld value of expired lots.
    Expire(ExpireArgs),
    /// Show one flow by its flow id or its outer order id.
    Flow(FlowArgs),
    /// Show one account's balances and lifetime totals, by account id or by card.
    Account(AccountArgs),
    /// List one account's flows, oldest first.
    Flows(FlowsArgs),
    /// List accounts ordered by account id, a page at a time.
    Accounts(AccountsArgs),
    /// One account's opening and closing balance over a time window, and the flows between.
    Statement(StatementArgs),
    /// Every flow in log order, one per line, as JSON lines or CSV.
    Export(ExportArgs),
    /// What the ledger owes: every account's balance and held value, summed, in all and by brand.
    Liability(LiabilityArgs),
    /// Set or show a brand's rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Replay the whole log and check every projection against it.
    Verify,
    /// Write a snapshot of the projections now, so the next open folds only what comes after
    /// it (the ledger also takes them by itself); prints the entry it covers and its size.
    Snapshot,
    /// Apply provider exports (KYBIO, ALSC, Zenlayer) and reconcile the balances they state.
    Ingest(crate::ingest::IngestArgs),
    /// Load-test an embedded ledger in a fresh temporary directory (or an empty --data DIR)
    /// and print one JSON report; exits non-zero if its self-check fails.
    Bench(crate::bench::BenchArgs),
    /// Serve the ledger over HTTP: the native JSON API, the TOP, KYBIO and Zenlayer dialects,
    /// the console at /console. Runs until SIGTERM or SIGINT.
    Serve(crate::serve::ServeArgs),
    /// Manage the server's API keys and dialect app keys (keys.json in the ledger directory).
    #[command(subcommand)]
    Keys(crate::serve::KeysCommand),
    /// A ledger past one machine: partitions on NATS JetStream (init, status).
    #[command(subcommand)]
    Cluster(crate::cluster::ClusterCommand),
}

impl CliCommand {
    /// Whether the command only reads the ledger (and so must not create one).
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            CliCommand::Flow(_)
                | CliCommand::Account(_)
                | CliCommand::Flows(_)
                | CliCommand::Accounts(_)
                | CliCommand::Statement(_)
                | CliCommand::Export(_)
                | CliCommand::Liability(_)
                | CliCommand::Rules(RulesCommand::Get(_))
                | CliCommand::Verify
                // A sweep has nothing to do on a ledger that does not exist.
                | CliCommand::Expire(_)
        )
    }
}

fn parse_zone(text: &str) -> Result<Zone, String> {
    Zone::parse(text).ok_or_else(|| format!("{text:?} is not a UTC offset like +08:00, -05:30 or Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
