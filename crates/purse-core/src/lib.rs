//! purse-core: the pure domain of the purse stored-value ledger.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! Money ([`Amount`], [`Scale`]), buckets ([`Buckets`]), rules ([`RuleSet`]), commands
//! ([`Command`]), flows ([`Flow`]) and the two functions everything else stands on:
//!
//! - [`decide`]`(&state, &command, &context) -> Result<Decision, Error>` validates a command and
//!   computes its flow (gift from the rule, deduction split, refund split; a transfer's two);
//! - [`apply`]`(&mut state, &flow)` folds a flow onto the state, re-checking every invariant.
//!
//! **Architecture Invariant:** nothing here reads a clock, draws a random number, does I/O, or
//! knows of sled, tokio or serde. Time and sequence numbers come in through [`Context`].
//!
//! ```
//! use purse_core::{apply, decide, Action, Amount, Command, Context, State, Timestamp};
//!
//! let mut state = State::default();
//! let charge = Command::new("req-1", "order-1", "alice", Action::Charge {
//!     real: Amount::from_minor(10_000), gift: None, pre: Amount::ZERO, trigger_gift: false,
//! });
//! let flow = decide(&state, &charge, &Context { sequence: 1, now: Timestamp(0) }).unwrap().flow;
//! apply(&mut state, &flow).unwrap();
//! assert_eq!(state.account("alice").unwrap().balance.real, Amount::from_minor(10_000));
//! ```

mod balance;
mod command;
mod decide;
mod error;
mod flow;
mod flow_map;
mod holds;
mod lots;
mod money;
mod rules;
mod state;
mod table;
mod time;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_holds;
#[cfg(test)]
mod tests_lots;
#[cfg(test)]
mod tests_saga;

pub use balance::{Bucket, Buckets, Property};
pub use command::{
    is_transfer_hold, sweep_id, Action, ClearBuckets, Command, Source, ACCOUNT_ID_CHARS_MAX, EXPIRED_REMARK,
    EXT_INFO_BYTES_MAX, ORDER_ID_CHARS_MAX, PROVIDER_CHARS_MAX, RECORD_ID_CHARS_MAX, REFERENCE_ID_CHARS_MAX,
    REMARK_CHARS_MAX, REQUEST_ID_CHARS_MAX, SWEEP_ID_PREFIX, TRANSFER_HOLD_SUFFIX,
};
pub use decide::{check_arguments, decide, decide_rules, Context, Decision};
pub use error::{Error, ErrorCode, FoldError};
pub use flow::{Entry, Flow, FlowDetail, FlowType, RulesChange};
pub use holds::transfer_hold_credit;
pub use lots::{Lot, LotCredit, LotKey, Lots, Take, LOT_BUCKETS};
pub use money::{Amount, AmountError, Scale, AMOUNT_TEXT_LENGTH_MAX, SCALE_MAX};
pub use rules::{
    deduction_split, DeductionOrder, GiftRule, RuleSet, RuleSetText, Tier, TierGift, BASIS_POINTS_ONE,
    GIFT_BASIS_POINTS_MAX, GIFT_VALID_DAYS_MAX, TIERS_MAX,
};
pub use state::{apply, apply_rules, Account, AccountStatus, Config, Order, OrderPart, State, StateBuilder};
pub use table::StrTable;
pub use time::{Timestamp, Zone, TIME_FORMAT};
