//! The options of every ledger command, as text (spec §7): amounts and times are only parsed
//! once the ledger is open, because their meaning depends on its scale and time zone.
//!
//! The command line parses them with clap; the server (`purse-server`) fills the same structs
//! from a JSON body whose keys are the options' ids (the spec's snake_case field names), so the
//! two edges can never disagree on what a command accepts.
//!
//! Amount options take any value that starts with a dash (`--real-value -.5`): clap's own
//! negative-number test misses forms the amount parser accepts.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The fields every write carries besides its order ids (spec §2).
#[derive(Debug, Args)]
pub struct WriteOptions {
    /// Idempotency key: the same request again returns the first answer.
    #[arg(long)]
    pub request_id: String,
    #[arg(long)]
    pub account_id: String,
    #[arg(long)]
    pub card_id: Option<String>,
    #[arg(long)]
    pub brand_id: Option<String>,
    #[arg(long)]
    pub shop_id: Option<String>,
    #[arg(long)]
    pub operator_id: Option<String>,
    /// Business time, "YYYY-MM-DD HH:MM:SS" in the ledger's time zone (default: now).
    #[arg(long, value_name = "TIME")]
    pub biz_date: Option<String>,
    // A remark is free text and may well start with a dash ("-5 for the broken cup").
    #[arg(long, allow_hyphen_values = true)]
    pub remark: Option<String>,
    /// A JSON text, stored exactly as given.
    #[arg(long, value_name = "JSON")]
    pub ext_info: Option<String>,
}

/// `charge`
#[derive(Debug, Args)]
pub struct ChargeArgs {
    /// This recharge's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// Paid principal (default 0).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub real_value: Option<String>,
    /// Bonus given explicitly; not allowed with --trigger-gift.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub gift_value: Option<String>,
    /// Promotional pre-stored value (default 0).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub pre_value: Option<String>,
    /// Take the gift from the brand's rule (`--trigger-gift`, or `--trigger-gift true|false`).
    #[arg(long, num_args = 0..=1, default_value_t = false, default_missing_value = "true",
          action = clap::ArgAction::Set, value_name = "BOOL")]
    pub trigger_gift: bool,
    #[command(flatten)]
    pub expiry: ExpiryOptions,
}

/// When the GIFT and PRE a `charge` or `import` credits expire (spec §11).
#[derive(Debug, Args)]
pub struct ExpiryOptions {
    /// When this credit's GIFT expires, "YYYY-MM-DD HH:MM:SS" (a charge without it: the brand's
    /// gift_valid_days, if any).
    #[arg(long, value_name = "TIME")]
    pub gift_expire_time: Option<String>,
    /// When this credit's PRE expires.
    #[arg(long, value_name = "TIME")]
    pub pre_expire_time: Option<String>,
}

/// `clear`
#[derive(Debug, Args)]
pub struct ClearArgs {
    /// This clearing's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// GIFT, PRE or ALL (both). REAL cannot be cleared.
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
}

/// `expire --now TIME [--account-id ID]`
#[derive(Debug, Args)]
pub struct ExpireArgs {
    /// The sweep's time, "YYYY-MM-DD HH:MM:SS": lots and holds expired at or before it.
    #[arg(long, value_name = "TIME")]
    pub now: String,
    /// Sweep only this account.
    #[arg(long)]
    pub account_id: Option<String>,
}

/// `deduct`
#[derive(Debug, Args)]
pub struct DeductArgs {
    /// This consumption's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The amount to take.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub value: String,
}

/// `undeduct`, with the ALSC naming: `--outer-order-id` is the refunded DEDUCT's.
#[derive(Debug, Args)]
pub struct UndeductArgs {
    /// The order id of the DEDUCT being refunded.
    #[arg(long)]
    pub outer_order_id: String,
    /// This refund's own order id, unique in the ledger.
    #[arg(long)]
    pub new_outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The amount to give back (default: all that is not yet refunded).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub value: Option<String>,
}

/// `uncharge`
#[derive(Debug, Args)]
pub struct UnchargeArgs {
    /// This reversal's own order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    /// The order id of the CHARGE being reversed.
    #[arg(long)]
    pub src_outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
}

/// `import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// This import's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The original order time, another name for --biz-date.
    #[arg(long, value_name = "TIME", conflicts_with = "biz_date")]
    pub order_time: Option<String>,
    #[command(flatten)]
    pub values: BucketValues,
    #[command(flatten)]
    pub expiry: ExpiryOptions,
}

/// `adjust`
#[derive(Debug, Args)]
pub struct AdjustArgs {
    /// This correction's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// Signed changes of each bucket.
    #[command(flatten)]
    pub values: BucketValues,
}

/// `hold`
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// This hold's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The amount to reserve.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub value: String,
    /// When the hold expires, "YYYY-MM-DD HH:MM:SS": a capture at or after it is refused.
    #[arg(long, value_name = "TIME")]
    pub expire_time: Option<String>,
}

/// `capture`
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// This capture's own order id (a consumption order UNDEDUCT can refund).
    #[arg(long)]
    pub outer_order_id: String,
    /// The order id of the HOLD being captured.
    #[arg(long)]
    pub src_outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The amount to spend (default: all that is held).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub value: Option<String>,
}

/// `release`
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// This release's own order id.
    #[arg(long)]
    pub outer_order_id: String,
    /// The order id of the HOLD being released.
    #[arg(long)]
    pub src_outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
}

/// `freeze`, `unfreeze`, `close`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// This change's order id, unique in the ledger.
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
}

/// `transfer`
#[derive(Debug, Args)]
pub struct TransferArgs {
    /// The transfer's order id (its TRANSFER_OUT is found by it).
    #[arg(long)]
    pub outer_order_id: String,
    #[command(flatten)]
    pub write: WriteOptions,
    /// The destination account (opened with the source's brand if new; --card-id is its card).
    #[arg(long)]
    pub to_account_id: String,
    /// The amount to move (default: everything available, a merge).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub value: Option<String>,
}

/// The three bucket amounts of `import` and `adjust`, each 0 when left out.
#[derive(Debug, Args)]
pub struct BucketValues {
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub real_value: Option<String>,
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub gift_value: Option<String>,
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true)]
    pub pre_value: Option<String>,
}

/// `flow (--flow-id ID | --outer-order-id ID)`
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct FlowArgs {
    #[arg(long, value_name = "ID")]
    pub flow_id: Option<u64>,
    #[arg(long, value_name = "ID")]
    pub outer_order_id: Option<String>,
}

/// `account (--account-id ID | --card-id C) [--as-of-flow-id N | --at TIME]`
#[derive(Debug, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub who: AccountWho,
    /// The account exactly as it stood after log entry N.
    #[arg(long, value_name = "N", conflicts_with = "at")]
    pub as_of_flow_id: Option<u64>,
    /// The account as it stood after its last flow (in log order) whose order_time ≤ TIME.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// Which account: exactly one of its id and its card.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AccountWho {
    #[arg(long)]
    pub account_id: Option<String>,
    /// The account opened with this card; refused, listing them, when several were.
    #[arg(long)]
    pub card_id: Option<String>,
}

/// `accounts [--brand-id B] [--status S] [--page-no N] [--page-size N]`
#[derive(Debug, Args)]
pub struct AccountsArgs {
    /// Only accounts of this brand.
    #[arg(long)]
    pub brand_id: Option<String>,
    /// Only accounts in this status: ACTIVE, FROZEN or CLOSED.
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page_no: u32,
    #[arg(long, value_name = "N", default_value_t = purse_ledger::PAGE_SIZE_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(purse_ledger::PAGE_SIZE_MAX)))]
    pub page_size: u32,
}

/// `statement --account-id ID --start-time T1 --end-time T2`
#[derive(Debug, Args)]
pub struct StatementArgs {
    #[arg(long)]
    pub account_id: String,
    /// Window start, inclusive, "YYYY-MM-DD HH:MM:SS" in the ledger's time zone.
    #[arg(long, value_name = "TIME")]
    pub start_time: String,
    /// Window end, exclusive; after the start.
    #[arg(long, value_name = "TIME")]
    pub end_time: String,
}

/// `export [--format jsonl|csv] [--start-time T] [--end-time T] [--flow-type T]…`
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Only flows of these types (repeat, or separate with commas).
    #[arg(long, value_name = "TYPE", value_delimiter = ',')]
    pub flow_type: Vec<String>,
    /// Window start over order_time, inclusive.
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
    /// Window end, exclusive.
    #[arg(long, value_name = "TIME")]
    pub end_time: Option<String>,
}

/// How `export` writes each flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The flow detail of `purse flow`, one JSON object per line.
    Jsonl,
    /// RFC 4180: a header row, then one row per flow, CRLF line ends.
    Csv,
}

/// `liability [--at TIME]`
#[derive(Debug, Args)]
pub struct LiabilityArgs {
    /// The liability as it stood then: each account after its last flow whose order_time ≤ TIME.
    /// Without it: now, and the expiring windows count from the wall clock.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

/// `flows --account-id ID [--flow-type T]… [--start-time T] [--end-time T] [--page-no N] [--page-size N]`
#[derive(Debug, Args)]
pub struct FlowsArgs {
    #[arg(long)]
    pub account_id: String,
    /// Only flows of these types (repeat, or separate with commas).
    #[arg(long, value_name = "TYPE", value_delimiter = ',')]
    pub flow_type: Vec<String>,
    /// Window start, inclusive, "YYYY-MM-DD HH:MM:SS" in the ledger's time zone.
    #[arg(long, value_name = "TIME")]
    pub start_time: Option<String>,
    /// Window end, exclusive.
    #[arg(long, value_name = "TIME")]
    pub end_time: Option<String>,
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub page_no: u32,
    #[arg(long, value_name = "N", default_value_t = purse_ledger::PAGE_SIZE_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(purse_ledger::PAGE_SIZE_MAX)))]
    pub page_size: u32,
}

/// `rules set|get`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Replace the rules of a brand (or the ledger default) with those in FILE.
    Set(RulesSetArgs),
    /// Show the rules in force for a brand (or the ledger default).
    Get(RulesGetArgs),
}

#[derive(Debug, Args)]
pub struct RulesSetArgs {
    /// The brand; without it, the ledger-wide default.
    #[arg(long)]
    pub brand_id: Option<String>,
    /// A rules JSON file (spec §4), or - for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RulesGetArgs {
    #[arg(long)]
    pub brand_id: Option<String>,
}
