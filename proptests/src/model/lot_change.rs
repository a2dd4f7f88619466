//! What an accepted command does to its account's lots (spec §11, §13), worked out from the
//! model's orders once the command's bucket amounts are known.

use purse_core::{Action, Command};

use super::lots::{self, LotBucket, LotChange, ModelLot, NewLot, Piece};
use super::{Kind, Model, Parts, Rules, DAY_SECONDS};

impl Model {
    /// What an accepted command does to lots (spec §11, §13), once its bucket amounts are
    /// known: which lots a debit takes, a HOLD reserves, a CAPTURE spends, a give-back refills,
    /// and which lots a credit makes. Returns the account's change, the lots a transfer makes
    /// on its destination, what the new order keeps of its takes, and what the referenced
    /// order keeps after it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn lot_change(
        &self,
        command: &Command,
        kind: Kind,
        lots: &[ModelLot],
        affected: Parts,
        held: Parts,
        source: Option<&str>,
        order_time: i64,
        rules: &Rules,
    ) -> (LotChange, Vec<NewLot>, Vec<Piece>, Option<Vec<Piece>>) {
        let mut change = LotChange::default();
        let mut destination = Vec::new();
        let mut own = Vec::new();
        let mut source_takes = None;
        let (gift_out, pre_out) = ((-affected.gift).max(0), (-affected.pre).max(0));
        let source = source.map(|id| self.orders.get(id).expect("the referenced order was found when deciding"));
        let whole = "the lots of a bucket add up to it, so what the bucket allows the lots allow";
        match &command.action {
            Action::Hold { .. } => {
                change.reserve = lots::plan_both(lots, held.gift, held.pre, &[]).expect(whole);
                own = change.reserve.clone();
            }
            Action::Capture { .. } | Action::Release { .. } | Action::ExpireHold { .. } => {
                let hold = source.expect("a CAPTURE or RELEASE names its hold");
                let (spent, freed) = lots::split_reserved(lots, &hold.lot_takes, gift_out, pre_out);
                own = spent.clone();
                change.spend = spent;
                change.free = freed;
                source_takes = Some(Vec::new());
            }
            Action::Undeduct { .. } => {
                let original = source.expect("an UNDEDUCT names its order");
                let (refill, rest) = lots::split_refill(lots, &original.lot_takes, affected.gift, affected.pre);
                change.refill = refill;
                source_takes = Some(rest);
            }
            Action::Expire { now } => change.take = lots::plan_expired(lots, now.0),
            _ => {
                let first = match (&command.action, source) {
                    (Action::Uncharge { .. }, Some(charge)) => charge.own_lots.clone(),
                    _ => Vec::new(),
                };
                change.take = lots::plan_both(lots, gift_out, pre_out, &first).expect(whole);
                match kind {
                    Kind::Deduct => own = change.take.clone(),
                    Kind::TransferOut => destination = lots::moved(lots, &change.take),
                    _ => {}
                }
                // Every other credit to GIFT or PRE is a lot: a CHARGE's gift (a provider's
                // CHARGE's too: "every CHARGE gift", spec §13) expires when it says, else by the
                // rules' gift_valid_days; IMPORT and other provider records when they say;
                // anything else never.
                let given = |time: Option<purse_core::Timestamp>| time.map(|time| time.0);
                let charge = matches!(command.action, Action::Charge { .. })
                    || matches!(command.action, Action::Recorded { flow_type: purse_core::FlowType::Charge, .. });
                let (gift_expiry, pre_expiry) = match &command.action {
                    _ if charge => (
                        given(command.gift_expire_time)
                            .or_else(|| rules.gift_valid_days.map(|days| order_time + i64::from(days) * DAY_SECONDS)),
                        given(command.pre_expire_time),
                    ),
                    Action::Import { .. } | Action::Open { .. } | Action::Recorded { .. } => {
                        (given(command.gift_expire_time), given(command.pre_expire_time))
                    }
                    _ => (None, None),
                };
                for (bucket, part, expiry) in
                    [(LotBucket::Gift, affected.gift, gift_expiry), (LotBucket::Pre, affected.pre, pre_expiry)]
                {
                    if part > 0 {
                        change.make.push((bucket, part, expiry));
                    }
                }
            }
        }
        (change, destination, own, source_takes)
    }
}
