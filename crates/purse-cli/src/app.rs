//! One invocation: open the ledger, run the command, close the ledger, return the document.

use purse_core::{Action, RuleSet};
use purse_ledger::{Ledger, LedgerConfig};

use crate::args::{Cli, CliCommand, RulesCommand, StatusArgs};
use purse_wire::command::{
    account_query, as_of, export_filter, flow_key, flow_query, liability_at, statement_window, status_command, sweep,
    ToCommand, Units,
};
use purse_wire::error::WireError;
use purse_wire::render::{
    to_text, AccountJson, AccountPageJson, FlowJson, FlowPageJson, LiabilityJson, RulesJson, StatementJson, SweepJson,
    TransferJson, VerifyJson,
};
use purse_wire::rules_file;

/// Runs `cli` against its data directory and returns the JSON document to print.
///
/// The ledger is always closed, so its files are synced and unlocked before the process ends.
/// The command's own error wins over a failure to close; a close failure after a successful
/// command is still reported, because an unsynced close is a storage problem the caller must
/// see (a write's flow was already durable when `submit` answered, so retrying it is safe: the
/// same `request_id` returns the same flow).
///
/// `data_given` says whether `--data` was written on the command line: `bench` uses a fresh
/// temporary directory unless it was (never `PURSE_DATA`, which may name a real ledger).
pub async fn run(cli: Cli, data_given: bool, remote: Option<Remote>) -> Result<String, WireError> {
    let tuning = cli.tuning();
    let cli = match cli.command {
        CliCommand::Bench(args) => {
            let data = data_given.then_some(cli.data);
            return crate::bench::run(args, data, cli.scale, cli.time_zone, tuning).await;
        }
        CliCommand::Keys(command) => return crate::serve::keys(&cli.data, command),
        CliCommand::Cluster(command) => return crate::cluster::run(command).await,
        _ => cli,
    };
    let mut config = LedgerConfig::new(&cli.data);
    config.scale = cli.scale;
    config.zone = cli.time_zone;
    tuning.apply(&mut config);
    // Only a write creates a ledger: a read on a mistyped path says there is none.
    config.create = !cli.command.reads_only();
    if let CliCommand::Serve(args) = cli.command {
        config.create = true;
        return crate::serve::run(args, config).await;
    }
    let ledger = match Ledger::open(config).await {
        Ok(ledger) => ledger,
        // Held by `purse serve`: a read command asks the server instead.
        Err(purse_ledger::Error::InUse(message)) => {
            if let Some((method, route, query)) = remote {
                if let Some(document) = crate::remote::ask(&cli.data, method, route, &query).await? {
                    return Ok(document);
                }
            }
            return Err(purse_ledger::Error::InUse(message).into());
        }
        Err(error) => return Err(error.into()),
    };
    let answer = dispatch(&ledger, cli.command).await;
    let closed = ledger.close().await;
    let document = answer?;
    closed?;
    Ok(document)
}

/// The server route that answers a read command: (method, route, query).
pub type Remote = (&'static str, &'static str, String);

async fn dispatch(ledger: &Ledger, command: CliCommand) -> Result<String, WireError> {
    let units = Units { scale: ledger.scale(), zone: ledger.zone() };
    match command {
        CliCommand::Charge(args) => submit(ledger, &args, units).await,
        CliCommand::Deduct(args) => submit(ledger, &args, units).await,
        CliCommand::Undeduct(args) => submit(ledger, &args, units).await,
        CliCommand::Uncharge(args) => submit(ledger, &args, units).await,
        CliCommand::Import(args) => submit(ledger, &args, units).await,
        CliCommand::Adjust(args) => submit(ledger, &args, units).await,
        CliCommand::Hold(args) => submit(ledger, &args, units).await,
        CliCommand::Capture(args) => submit(ledger, &args, units).await,
        CliCommand::Release(args) => submit(ledger, &args, units).await,
        CliCommand::Freeze(args) => submit_status(ledger, &args, units, Action::Freeze).await,
        CliCommand::Unfreeze(args) => submit_status(ledger, &args, units, Action::Unfreeze).await,
        CliCommand::Close(args) => submit_status(ledger, &args, units, Action::Close).await,
        CliCommand::Transfer(args) => {
            let transfer = ledger.transfer(args.to_command(units)?).await?;
            let (out, transfer_in) = (ledger.detail(&transfer.out)?, ledger.detail(&transfer.transfer_in)?);
            Ok(to_text(&TransferJson::new(&out, &transfer_in)))
        }
        CliCommand::Flow(args) => {
            let flow = ledger.flow(flow_key(&args)?).await?;
            Ok(to_text(&FlowJson::new(&ledger.detail(&flow)?)))
        }
        CliCommand::Account(args) => {
            let account_id = purse_wire::command::account_id(ledger, &args.who).await?;
            let account = match as_of(&args, units.zone)? {
                None => ledger.account(&account_id).await?,
                Some(point) => ledger.account_as_of(&account_id, point).await?,
            };
            Ok(to_text(&AccountJson::new(&account, units.scale, units.zone)))
        }
        CliCommand::Clear(args) => submit(ledger, &args, units).await,
        CliCommand::Expire(args) => {
            let (now, scope) = sweep(&args, units.zone)?;
            let flows = ledger.expire(now, scope).await?;
            let details = flows.iter().map(|flow| ledger.detail(flow)).collect::<Result<Vec<_>, _>>()?;
            Ok(to_text(&SweepJson::new(&details)))
        }
        CliCommand::Accounts(args) => {
            let page = ledger.accounts(account_query(&args)?).await?;
            Ok(to_text(&AccountPageJson::new(&page, units.scale, units.zone)))
        }
        CliCommand::Statement(args) => {
            let (start, end) = statement_window(&args, units.zone)?;
            let statement = ledger.statement(&args.account_id, start, end).await?;
            Ok(to_text(&StatementJson::new(&statement, units.scale, units.zone)))
        }
        CliCommand::Export(args) => {
            let filter = export_filter(&args, units.zone)?;
            purse_wire::export::run(ledger, filter, args.format, std::io::stdout()).await?;
            // Already written, page by page.
            Ok(String::new())
        }
        CliCommand::Liability(args) => {
            let liability = ledger.liability(liability_at(&args, units.zone)?).await?;
            Ok(to_text(&LiabilityJson::new(&liability, units.scale, units.zone)))
        }
        CliCommand::Flows(args) => {
            let page = ledger.flows(flow_query(&args, units.zone)?).await?;
            let details = page.flows.iter().map(|flow| ledger.detail(flow)).collect::<Result<Vec<_>, _>>()?;
            Ok(to_text(&FlowPageJson::new(&page, &details)))
        }
        CliCommand::Rules(RulesCommand::Set(args)) => {
            let text = rules_file::parse(&rules_file::read(&args.file)?)?;
            let rules = RuleSet::from_text(&text, units.scale)?;
            let rules = ledger.set_rules(args.brand_id, rules).await?;
            Ok(to_text(&RulesJson::new(&rules, units.scale)))
        }
        CliCommand::Rules(RulesCommand::Get(args)) => {
            let rules = ledger.rules(args.brand_id).await?;
            Ok(to_text(&RulesJson::new(&rules, units.scale)))
        }
        CliCommand::Ingest(args) => crate::ingest::run(ledger, args).await,
        CliCommand::Verify => {
            let report = ledger.verify().await?;
            Ok(to_text(&VerifyJson::new(&report)))
        }
        CliCommand::Snapshot => {
            let snapshot = ledger.snapshot().await?;
            Ok(to_text(&serde_json::json!({ "sequence": snapshot.sequence, "bytes": snapshot.bytes })))
        }
        CliCommand::Bench(_) | CliCommand::Serve(_) | CliCommand::Keys(_) | CliCommand::Cluster(_) => {
            Err(WireError::System("bench, serve, keys and cluster are run before a ledger is opened".into()))
        }
    }
}

async fn submit_status(ledger: &Ledger, args: &StatusArgs, units: Units, action: Action) -> Result<String, WireError> {
    let flow = ledger.submit(status_command(args, units, action)?).await?;
    Ok(to_text(&FlowJson::new(&ledger.detail(&flow)?)))
}

async fn submit(ledger: &Ledger, args: &impl ToCommand, units: Units) -> Result<String, WireError> {
    let flow = ledger.submit(args.to_command(units)?).await?;
    Ok(to_text(&FlowJson::new(&ledger.detail(&flow)?)))
}
