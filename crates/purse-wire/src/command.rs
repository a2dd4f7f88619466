//! From parsed options to ledger requests: amounts at the ledger's scale, times in its zone.
//!
//! Only text is checked here (amount syntax and precision, time format, strict JSON, flow type
//! names). Every business rule (positive amounts, lengths, the ADJUST remark) is left to
//! `purse_core::decide`, so the CLI never disagrees with the ledger about what is allowed.

use purse_core::{AccountStatus, Action, Amount, ClearBuckets, Command, FlowType, Scale, Timestamp, Zone};
use purse_ledger::{AccountQuery, AsOf, ExportFilter, FlowKey, FlowQuery, LiabilityAt, SweepScope};

use crate::args::{
    AccountArgs, AccountWho, AccountsArgs, AdjustArgs, BucketValues, CaptureArgs, ChargeArgs, ClearArgs, DeductArgs,
    ExpireArgs, ExpiryOptions, ExportArgs, FlowArgs, FlowsArgs, HoldArgs, ImportArgs, LiabilityArgs, ReleaseArgs,
    StatementArgs, StatusArgs, TransferArgs, UnchargeArgs, UndeductArgs, WriteOptions,
};
use crate::error::WireError;
use crate::strict_json::{self, JsonError};

/// What text means in one ledger: its currency scale and business time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    pub scale: Scale,
    pub zone: Zone,
}

/// A write command's options, turned into the core's command.
pub trait ToCommand {
    /// Parses amounts, times and JSON; `INVALID_AMOUNT` / `INVALID_ARGUMENT` naming the option.
    fn to_command(&self, units: Units) -> Result<Command, WireError>;
}

impl ToCommand for ChargeArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Charge {
            real: amount_or_zero("--real-value", self.real_value.as_deref(), units)?,
            gift: self.gift_value.as_deref().map(|text| amount("--gift-value", text, units)).transpose()?,
            pre: amount_or_zero("--pre-value", self.pre_value.as_deref(), units)?,
            trigger_gift: self.trigger_gift,
        };
        let mut command = command(&self.outer_order_id, &self.write, units, action)?;
        expiry(&mut command, &self.expiry, units)?;
        Ok(command)
    }
}

/// `--gift-expire-time` and `--pre-expire-time` of `charge` and `import`.
fn expiry(command: &mut Command, options: &ExpiryOptions, units: Units) -> Result<(), WireError> {
    let parse =
        |option: &str, text: &Option<String>| text.as_deref().map(|text| time(option, text, units.zone)).transpose();
    command.gift_expire_time = parse("--gift-expire-time", &options.gift_expire_time)?;
    command.pre_expire_time = parse("--pre-expire-time", &options.pre_expire_time)?;
    Ok(())
}

impl ToCommand for ClearArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let buckets = ClearBuckets::parse(&self.bucket.to_ascii_uppercase()).ok_or_else(|| {
            let why = if self.bucket.eq_ignore_ascii_case("REAL") {
                "REAL cannot be cleared: principal leaves by uncharge or adjust"
            } else {
                "it is not one of GIFT, PRE, ALL"
            };
            WireError::invalid_argument(format!("--bucket {:?}: {why}", self.bucket))
        })?;
        command(&self.outer_order_id, &self.write, units, Action::Clear { buckets })
    }
}

/// `expire`: the sweep's time and scope.
pub fn sweep(args: &ExpireArgs, zone: Zone) -> Result<(Timestamp, SweepScope), WireError> {
    let now = time("--now", &args.now, zone)?;
    let scope = args.account_id.clone().map_or(SweepScope::All, SweepScope::Account);
    Ok((now, scope))
}

/// `liability`: at `--at`, or now by the wall clock (the ledger keeps no clock of its own).
pub fn liability_at(args: &LiabilityArgs, zone: Zone) -> Result<LiabilityAt, WireError> {
    match &args.at {
        Some(text) => Ok(LiabilityAt::Time(time("--at", text, zone)?)),
        None => {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|error| WireError::System(format!("the clock is before 1970: {error}")))?
                .as_secs();
            Ok(LiabilityAt::Now(Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))))
        }
    }
}

/// `account`: now, or at a point of its history.
pub fn as_of(args: &AccountArgs, zone: Zone) -> Result<Option<AsOf>, WireError> {
    match (args.as_of_flow_id, &args.at) {
        (Some(entry), _) => Ok(Some(AsOf::Entry(entry))),
        (None, Some(text)) => Ok(Some(AsOf::Time(time("--at", text, zone)?))),
        (None, None) => Ok(None),
    }
}

impl ToCommand for DeductArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Deduct { value: amount("--value", &self.value, units)? };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for UndeductArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        // ALSC naming: on the command line --outer-order-id is the refunded DEDUCT and
        // --new-outer-order-id the refund's own; in the core the command's own id comes first.
        let action = Action::Undeduct {
            original_outer_order_id: self.outer_order_id.clone(),
            value: self.value.as_deref().map(|text| amount("--value", text, units)).transpose()?,
        };
        command(&self.new_outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for UnchargeArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Uncharge { src_outer_order_id: self.src_outer_order_id.clone() };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for ImportArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let (real, gift, pre) = bucket_values(&self.values, units)?;
        let action = Action::Import { real, gift, pre };
        let mut command = command(&self.outer_order_id, &self.write, units, action)?;
        expiry(&mut command, &self.expiry, units)?;
        // clap already refuses --order-time together with --biz-date.
        if let Some(text) = &self.order_time {
            command.biz_date = Some(time("--order-time", text, units.zone)?);
        }
        Ok(command)
    }
}

impl ToCommand for AdjustArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let (real, gift, pre) = bucket_values(&self.values, units)?;
        command(&self.outer_order_id, &self.write, units, Action::Adjust { real, gift, pre })
    }
}

impl ToCommand for HoldArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Hold {
            value: amount("--value", &self.value, units)?,
            expire_time: self.expire_time.as_deref().map(|text| time("--expire-time", text, units.zone)).transpose()?,
        };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for CaptureArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Capture {
            src_outer_order_id: self.src_outer_order_id.clone(),
            value: self.value.as_deref().map(|text| amount("--value", text, units)).transpose()?,
        };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for ReleaseArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Release { src_outer_order_id: self.src_outer_order_id.clone() };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

impl ToCommand for TransferArgs {
    fn to_command(&self, units: Units) -> Result<Command, WireError> {
        let action = Action::Transfer {
            to_account_id: self.to_account_id.clone(),
            value: self.value.as_deref().map(|text| amount("--value", text, units)).transpose()?,
        };
        command(&self.outer_order_id, &self.write, units, action)
    }
}

/// `freeze`, `unfreeze` and `close` share their options; `action` says which.
pub fn status_command(args: &StatusArgs, units: Units, action: Action) -> Result<Command, WireError> {
    command(&args.outer_order_id, &args.write, units, action)
}

/// `flow`: clap guarantees exactly one of the two options.
pub fn flow_key(args: &FlowArgs) -> Result<FlowKey, WireError> {
    match (args.flow_id, &args.outer_order_id) {
        (Some(flow_id), None) => Ok(FlowKey::Id(flow_id)),
        (None, Some(outer_order_id)) => Ok(FlowKey::OuterOrderId(outer_order_id.clone())),
        _ => Err(WireError::invalid_argument("give exactly one of --flow-id and --outer-order-id")),
    }
}

/// `flows`: flow type names (case-insensitive) and the `[start, end)` window.
pub fn flow_query(args: &FlowsArgs, zone: Zone) -> Result<FlowQuery, WireError> {
    let (start_time, end_time) = window(args.start_time.as_deref(), args.end_time.as_deref(), zone)?;
    Ok(FlowQuery {
        account_id: args.account_id.clone(),
        flow_types: flow_types(&args.flow_type)?,
        start_time,
        end_time,
        page_no: args.page_no,
        page_size: args.page_size,
    })
}

/// `export`: like `flows`' filter, over the whole log.
pub fn export_filter(args: &ExportArgs, zone: Zone) -> Result<ExportFilter, WireError> {
    let (start_time, end_time) = window(args.start_time.as_deref(), args.end_time.as_deref(), zone)?;
    Ok(ExportFilter { flow_types: flow_types(&args.flow_type)?, start_time, end_time, through_sequence: None })
}

/// `statement`: the window `[start, end)`, which must not be empty.
pub fn statement_window(args: &StatementArgs, zone: Zone) -> Result<(Timestamp, Timestamp), WireError> {
    let start = time("--start-time", &args.start_time, zone)?;
    let end = time("--end-time", &args.end_time, zone)?;
    if start >= end {
        return Err(WireError::invalid_argument(format!(
            "--start-time ({}) must be before --end-time ({}): the window [start, end) is empty",
            args.start_time, args.end_time
        )));
    }
    Ok((start, end))
}

/// `accounts`: the status by name (case-insensitive); clap has checked the page.
pub fn account_query(args: &AccountsArgs) -> Result<AccountQuery, WireError> {
    let status = args
        .status
        .as_deref()
        .map(|name| {
            let statuses = [AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed];
            statuses.into_iter().find(|status| status.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
                WireError::invalid_argument(format!("--status: {name:?} is not one of ACTIVE, FROZEN, CLOSED"))
            })
        })
        .transpose()?;
    Ok(AccountQuery { brand_id: args.brand_id.clone(), status, page_no: args.page_no, page_size: args.page_size })
}

/// Flow type names, case-insensitive, each kept once.
fn flow_types(names: &[String]) -> Result<Vec<FlowType>, WireError> {
    let mut flow_types = Vec::with_capacity(names.len());
    for name in names {
        let flow_type = FlowType::parse(&name.to_ascii_uppercase()).ok_or_else(|| {
            let names: Vec<&str> = FlowType::ALL.iter().map(|flow_type| flow_type.as_str()).collect();
            WireError::invalid_argument(format!("--flow-type: {name:?} is not one of {}", names.join(", ")))
        })?;
        if !flow_types.contains(&flow_type) {
            flow_types.push(flow_type);
        }
    }
    Ok(flow_types)
}

/// `--start-time` and `--end-time`, each optional.
fn window(
    start: Option<&str>,
    end: Option<&str>,
    zone: Zone,
) -> Result<(Option<Timestamp>, Option<Timestamp>), WireError> {
    Ok((
        start.map(|text| time("--start-time", text, zone)).transpose()?,
        end.map(|text| time("--end-time", text, zone)).transpose()?,
    ))
}

/// The fields every write carries, around its `action`.
fn command(outer_order_id: &str, write: &WriteOptions, units: Units, action: Action) -> Result<Command, WireError> {
    let biz_date = write.biz_date.as_deref().map(|text| time("--biz-date", text, units.zone)).transpose()?;
    if let Some(text) = &write.ext_info {
        check_json("--ext-info", text)?;
    }
    Ok(Command {
        gift_expire_time: None,
        pre_expire_time: None,
        request_id: write.request_id.clone(),
        outer_order_id: outer_order_id.to_owned(),
        account_id: write.account_id.clone(),
        card_id: write.card_id.clone(),
        brand_id: write.brand_id.clone(),
        shop_id: write.shop_id.clone(),
        operator_id: write.operator_id.clone(),
        biz_date,
        remark: write.remark.clone(),
        ext_info: write.ext_info.clone(),
        action,
    })
}

fn bucket_values(values: &BucketValues, units: Units) -> Result<(Amount, Amount, Amount), WireError> {
    Ok((
        amount_or_zero("--real-value", values.real_value.as_deref(), units)?,
        amount_or_zero("--gift-value", values.gift_value.as_deref(), units)?,
        amount_or_zero("--pre-value", values.pre_value.as_deref(), units)?,
    ))
}

fn amount_or_zero(option: &str, text: Option<&str>, units: Units) -> Result<Amount, WireError> {
    text.map_or(Ok(Amount::ZERO), |text| amount(option, text, units))
}

fn amount(option: &str, text: &str, units: Units) -> Result<Amount, WireError> {
    Amount::parse(text, units.scale).map_err(|error| WireError::invalid_amount(format!("{option}: {error}")))
}

fn time(option: &str, text: &str, zone: Zone) -> Result<Timestamp, WireError> {
    zone.parse_local(text).ok_or_else(|| {
        WireError::invalid_argument(format!(
            "{option}: {text:?} is not a time of the form YYYY-MM-DD HH:MM:SS ({})",
            zone.format()
        ))
    })
}

/// `ext_info` must be strict JSON ([`strict_json`]), but is stored as the caller wrote it, so it
/// is only checked here.
fn check_json(option: &str, text: &str) -> Result<(), WireError> {
    strict_json::check(text).map_err(|error| match error {
        JsonError::Syntax(error) => WireError::invalid_argument(format!("{option} is not valid JSON: {error}")),
        JsonError::Refused(message) => WireError::invalid_argument(format!("{option}: {message}")),
    })
}

/// Accounts shown when a card names too many to be useful in one message.
const CARD_ACCOUNTS_LISTED_MAX: usize = 20;

/// The account `account` asks for: by `--account-id`, or the one account opened with `--card-id`.
pub async fn account_id(ledger: &purse_ledger::Ledger, who: &AccountWho) -> Result<String, WireError> {
    let card_id = match (&who.account_id, &who.card_id) {
        (Some(account_id), None) => return Ok(account_id.clone()),
        (None, Some(card_id)) => card_id,
        _ => return Err(WireError::invalid_argument("give exactly one of --account-id and --card-id")),
    };
    let mut accounts = ledger.accounts_by_card(card_id).await?;
    match accounts.len() {
        0 => Err(WireError::Argument {
            code: purse_core::ErrorCode::AccountNotFound,
            message: format!("no account has card_id {card_id:?}"),
        }),
        1 => Ok(accounts.remove(0).account_id),
        count => {
            let listed: Vec<String> =
                accounts.iter().take(CARD_ACCOUNTS_LISTED_MAX).map(|view| format!("{:?}", view.account_id)).collect();
            let more = count.saturating_sub(CARD_ACCOUNTS_LISTED_MAX);
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            Err(WireError::invalid_argument(format!(
                "--card-id {card_id:?} belongs to {count} accounts ({}{more}); ask by --account-id",
                listed.join(", ")
            )))
        }
    }
}
