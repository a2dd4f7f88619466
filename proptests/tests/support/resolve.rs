//! Resolving abstract steps into concrete commands against the model, the rules of a rules
//! step in purse-core's text form, and a one-line description of a command.

use purse_core::{Action, Amount, ClearBuckets, Command, RuleSet, RuleSetText, Scale, Timestamp, Zone};
use purse_proptests::model::{DeductOrder, GiftRule, Kind, Model, Parts, Rules, Status};

use super::{
    AccountPick, AdjustPart, CaptureWhen, Expire, ExpiryPick, Mangle, OrderPick, RefAccount, RefPick, Relative,
    RemarkPick, RulesStep, StatusChange, Step, SweepExtra, SweepTime, Tag, ToPick, When, ACCOUNTS, BRANDS,
    EXPIRY_SLOTS, START,
};

/// Resolves abstract steps into commands; remembers every order id tried and the account of
/// the last command.
#[derive(Debug, Default)]
pub struct Resolver {
    tried: Vec<String>,
    fresh: u64,
    last_account: Option<String>,
}

fn clamp_amount(value: i128) -> Amount {
    Amount::from_minor(i64::try_from(value.max(i128::from(i64::MIN)).min(i128::from(i64::MAX))).unwrap_or(0))
}

/// Resolves a relative amount. A fraction is rounded up and at least 1, so that it names a
/// positive amount and the command gets past the amount checks to the interesting ones.
fn relative_to(relative: Relative, base: i128) -> Amount {
    match relative {
        Relative::Lit(value) => Amount::from_minor(value),
        Relative::Fraction(per_mille) => clamp_amount(((base * i128::from(per_mille) + 999) / 1000).max(1)),
        Relative::Plus(delta) => clamp_amount(base + i128::from(delta)),
    }
}

impl Resolver {
    fn fresh_id(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    fn order_id(&mut self, pick: OrderPick) -> String {
        let id = match pick {
            OrderPick::Reuse(index) if !self.tried.is_empty() => {
                self.tried[usize::from(index) % self.tried.len()].clone()
            }
            _ => self.fresh_id("o"),
        };
        self.tried.push(id.clone());
        id
    }

    /// An order id for a reference: of one of `kinds` (UNDEDUCT: a DEDUCT or CAPTURE), any, or
    /// unknown.
    fn reference(&mut self, model: &Model, pick: RefPick, kinds: &[Kind]) -> String {
        let written = model.order_ids();
        let candidates: Vec<&String> = match pick {
            RefPick::OfKind(_) | RefPick::Recent(_) => {
                written.iter().filter(|id| model.order(id).is_some_and(|order| kinds.contains(&order.kind))).collect()
            }
            RefPick::Any(_) => written.iter().collect(),
            RefPick::Unknown => Vec::new(),
        };
        match pick {
            RefPick::OfKind(index) | RefPick::Any(index) if !candidates.is_empty() => {
                candidates[usize::from(index) % candidates.len()].clone()
            }
            RefPick::Recent(back) if !candidates.is_empty() => {
                candidates[candidates.len() - 1 - usize::from(back) % candidates.len()].clone()
            }
            _ => self.fresh_id("missing-"),
        }
    }

    /// The command for `step` (not a rules change), given the model as it is now.
    pub fn command(&mut self, model: &Model, step: &Step, now: Timestamp) -> Command {
        let account_name = |index: u8| ACCOUNTS[usize::from(index) % ACCOUNTS.len()].0.to_owned();
        let available = |account: &str| model.account(account).map_or(Parts::default(), |account| account.available());
        // A transfer's card_id names its destination's card (spec §10): tags resolve against it.
        let mut card_account = None;
        let (account, order, action, tags, biz_date, remark) = match step {
            Step::Charge { account, order, real, gift, pre, trigger, tags } => {
                let action = Action::Charge {
                    real: Amount::from_minor(*real),
                    gift: gift.map(Amount::from_minor),
                    pre: Amount::from_minor(*pre),
                    trigger_gift: *trigger,
                };
                (account_name(*account), self.order_id(*order), action, tags, None, None)
            }
            Step::Deduct { account, order, value, tags } => {
                let account = self.pick_account(model, *account);
                let value = relative_to(*value, available(&account).total());
                (account, self.order_id(*order), Action::Deduct { value }, tags, None, None)
            }
            Step::Undeduct { account, order, source, value, tags } => {
                let source = self.reference(model, *source, &[Kind::Deduct, Kind::Capture]);
                let rest = model.order(&source).map_or(0, |order| order.moved.total() - order.refunded.total());
                let account = self.ref_account(model, *account, &source);
                let order = self.order_id(*order);
                let value = value.map(|value| relative_to(value, rest));
                (account, order, Action::Undeduct { original_outer_order_id: source, value }, tags, None, None)
            }
            Step::Uncharge { account, order, source, tags } => {
                let source = self.reference(model, *source, &[Kind::Charge]);
                let account = self.ref_account(model, *account, &source);
                let order = self.order_id(*order);
                (account, order, Action::Uncharge { src_outer_order_id: source }, tags, None, None)
            }
            Step::Import { account, order, parts, when, tags } => {
                let [real, gift, pre] = parts.map(Amount::from_minor);
                (
                    account_name(*account),
                    self.order_id(*order),
                    Action::Import { real, gift, pre },
                    tags,
                    at(*when, now),
                    None,
                )
            }
            Step::Adjust { account, order, parts, remark, tags } => {
                let account = self.pick_account(model, *account);
                let held = available(&account).to_array();
                let mut signed = [Amount::ZERO; 3];
                for (slot, (part, held)) in signed.iter_mut().zip(parts.iter().zip(held)) {
                    *slot = match part {
                        AdjustPart::Lit(value) => Amount::from_minor(*value),
                        AdjustPart::Drain(delta) => Amount::from_minor(i64::from(*delta) - held),
                    };
                }
                let [real, gift, pre] = signed;
                (account, self.order_id(*order), Action::Adjust { real, gift, pre }, tags, None, remark_text(*remark))
            }
            Step::Recorded { account, order, flow_type, parts, tags } => {
                let account = self.pick_account(model, *account);
                let held = available(&account).to_array();
                let mut signed = [0i64; 3];
                for (slot, (part, held)) in signed.iter_mut().zip(parts.iter().zip(held)) {
                    *slot = match part {
                        AdjustPart::Lit(value) => *value,
                        AdjustPart::Drain(delta) => i64::from(*delta) - held,
                    };
                }
                let flow_type = purse_core::FlowType::ALL[usize::from(*flow_type) % 6];
                // Most provider records have the signs of their type; flip them to make those common.
                let takes = matches!(flow_type, purse_core::FlowType::Deduct | purse_core::FlowType::Uncharge);
                let adds = !takes && flow_type != purse_core::FlowType::Adjust;
                for part in &mut signed {
                    if (takes && *part > 0) || (adds && *part < 0) {
                        *part = part.saturating_neg();
                    }
                }
                let affected = purse_core::Buckets::from_minor(signed[0], signed[1], signed[2]);
                let source = purse_core::Source { provider: "zenlayer".to_owned(), record_id: self.order_id(*order) };
                let action = Action::Recorded { flow_type, affected, source };
                (account, self.order_id(*order), action, tags, None, None)
            }
            Step::Hold { account, order, value, expire, when, tags } => {
                let account = self.pick_account(model, *account);
                let value = relative_to(*value, available(&account).total());
                let biz_date = at(*when, now);
                let order_time = biz_date.unwrap_or(now).0;
                let expire_time = match expire {
                    Expire::Absent => None,
                    Expire::After(seconds) => Some(Timestamp(order_time + i64::from(*seconds))),
                };
                (account, self.order_id(*order), Action::Hold { value, expire_time }, tags, biz_date, None)
            }
            Step::Capture { account, order, source, value, when, tags } => {
                let source = self.reference(model, *source, &[Kind::Hold]);
                let hold = model.order(&source);
                let account = self.ref_account(model, *account, &source);
                let order = self.order_id(*order);
                let value = value.map(|value| relative_to(value, hold.map_or(0, |hold| hold.moved.total())));
                let biz_date = match when {
                    CaptureWhen::Now => None,
                    CaptureWhen::AtExpiry(delta) => {
                        hold.and_then(|hold| hold.expire_time).map(|time| Timestamp(time + i64::from(*delta)))
                    }
                    CaptureWhen::PastBy(seconds) => Some(Timestamp(now.0 - i64::from(*seconds))),
                };
                (account, order, Action::Capture { src_outer_order_id: source, value }, tags, biz_date, None)
            }
            Step::Release { account, order, source, tags } => {
                let source = self.reference(model, *source, &[Kind::Hold]);
                let account = self.ref_account(model, *account, &source);
                let order = self.order_id(*order);
                (account, order, Action::Release { src_outer_order_id: source }, tags, None, None)
            }
            Step::Status { account, order, change, remark, tags } => {
                let account = self.pick_account(model, *account);
                let action = match change {
                    StatusChange::Freeze => Action::Freeze,
                    StatusChange::Unfreeze => Action::Unfreeze,
                    StatusChange::Close => Action::Close,
                };
                (account, self.order_id(*order), action, tags, None, remark_text(*remark))
            }
            Step::Transfer { account, order, to, value, tags } => {
                let account = self.pick_account(model, *account);
                let to_account_id = match to {
                    ToPick::Account(pick) => self.pick_account(model, *pick),
                    ToPick::SameBrand(index) => {
                        let brand = model.account(&account).map(|source| source.brand_id.clone());
                        let peers: Vec<&String> = model
                            .accounts()
                            .filter(|(name, peer)| **name != account && Some(peer.brand_id.clone()) == brand)
                            .map(|(name, _)| name)
                            .collect();
                        match peers.is_empty() {
                            true => self.fresh_id("n"),
                            false => peers[usize::from(*index) % peers.len()].clone(),
                        }
                    }
                    ToPick::Fresh => self.fresh_id("n"),
                    ToPick::Same => account.clone(),
                };
                let value = value.map(|value| relative_to(value, available(&account).total()));
                card_account = Some(to_account_id.clone());
                (account, self.order_id(*order), Action::Transfer { to_account_id, value }, tags, None, None)
            }
            Step::Clear { account, order, buckets, remark, tags } => {
                let account = self.pick_account(model, *account);
                let buckets = [ClearBuckets::Gift, ClearBuckets::Pre, ClearBuckets::All][usize::from(*buckets) % 3];
                (account, self.order_id(*order), Action::Clear { buckets }, tags, None, remark_text(*remark))
            }
            Step::Rules(_) | Step::Sweep { .. } => unreachable!("rules changes and sweeps are not one command"),
        };
        self.last_account = Some(account.clone());
        // Home: the account's own card and brand once it is open (so only `Other` mismatches),
        // the usual ones for an account not open yet.
        let usual_brand = ACCOUNTS.iter().find(|(name, _)| *name == account).and_then(|(_, brand)| *brand);
        let card_account = card_account.unwrap_or_else(|| account.clone());
        let card = match model.account(&card_account) {
            Some(open) => open.card_id.clone(),
            None => Some(format!("card-{card_account}")),
        };
        let brand = match model.account(&account) {
            Some(open) => open.brand_id.clone(),
            None => usual_brand.map(str::to_owned),
        };
        let mut command = Command::new(&format!("r-{order}"), &order, &account, action);
        command.card_id = match tags.card {
            Tag::Home => card,
            Tag::Absent => None,
            Tag::Other => Some("card-other".to_owned()),
        };
        command.brand_id = match tags.brand {
            Tag::Home => brand,
            Tag::Absent => None,
            Tag::Other => Some(if brand.as_deref() == Some("B1") { "B2" } else { "B1" }.to_owned()),
        };
        command.biz_date = biz_date;
        command.remark = remark;
        let order_time = biz_date.unwrap_or(now).0;
        let expiry = |pick: Option<ExpiryPick>| {
            pick.map(|pick| match pick {
                ExpiryPick::Slot(slot) => {
                    let after: Vec<i64> =
                        EXPIRY_SLOTS.iter().map(|offset| START + offset).filter(|time| *time > order_time).collect();
                    Timestamp(after.get(usize::from(slot) % after.len().max(1)).copied().unwrap_or(order_time + 1))
                }
                ExpiryPick::Before(seconds) => Timestamp(order_time - i64::from(seconds)),
            })
        };
        command.gift_expire_time = expiry(tags.gift_expiry);
        command.pre_expire_time = expiry(tags.pre_expiry);
        mangle_command(&mut command, tags.mangle);
        command
    }

    /// The sweep at `time` (spec §11, §13) as the commands it sends, in order: the RELEASE of
    /// every open hold expired at `time`, oldest first, then an EXPIRE of every account; and
    /// the time itself. An `extra` command goes first (a repeat: last).
    pub fn sweep(
        &mut self,
        model: &Model,
        time: SweepTime,
        extra: SweepExtra,
        now: Timestamp,
    ) -> (Timestamp, Vec<Command>) {
        let open_holds: Vec<(String, String, Option<i64>)> = model
            .order_ids()
            .iter()
            .filter_map(|id| {
                let order = model.order(id)?;
                (order.kind == Kind::Hold && !order.reversed)
                    .then(|| (order.account_id.clone(), id.clone(), order.expire_time))
            })
            .collect();
        let time = Timestamp(match time {
            SweepTime::Slot(slot) => START + EXPIRY_SLOTS[usize::from(slot) % EXPIRY_SLOTS.len()],
            SweepTime::Now => now.0,
            SweepTime::HoldExpiry(index) => {
                let expiring: Vec<i64> = open_holds.iter().filter_map(|(_, _, expire_time)| *expire_time).collect();
                expiring.get(usize::from(index) % expiring.len().max(1)).copied().unwrap_or(now.0)
            }
            SweepTime::LotExpiry(index) => {
                let mut expiries: Vec<i64> = model
                    .accounts()
                    .flat_map(|(_, account)| account.lots())
                    .filter_map(|lot| lot.expire_time)
                    .collect();
                expiries.sort_unstable();
                expiries.dedup();
                expiries.get(usize::from(index) % expiries.len().max(1)).copied().unwrap_or(now.0)
            }
            SweepTime::Days(days) => START + i64::from(days) * 86_400 + 3_600,
        });
        let zone = Zone::CHINA;
        let mut commands: Vec<Command> = Vec::new();
        match extra {
            SweepExtra::AnyHold(index) if !open_holds.is_empty() => {
                let (account, hold, _) = &open_holds[usize::from(index) % open_holds.len()];
                commands.push(Command::expire_hold(account, hold, time, zone));
            }
            SweepExtra::Forged(index) => {
                let account = ACCOUNTS[usize::from(index) % ACCOUNTS.len()].0;
                let mut forged = Command::expire(account, time, zone);
                forged.request_id = self.fresh_id("forged-");
                commands.push(forged);
            }
            SweepExtra::Unknown => commands.push(Command::expire("never-opened", time, zone)),
            _ => {}
        }
        for (account, hold) in model.expired_open_holds(time.0) {
            commands.push(Command::expire_hold(&account, &hold, time, zone));
        }
        for (account, _) in model.accounts() {
            commands.push(Command::expire(account, time, zone));
        }
        if let (SweepExtra::Again, Some(first)) = (extra, commands.first().cloned()) {
            commands.push(first);
        }
        (time, commands)
    }

    fn ref_account(&self, model: &Model, pick: RefAccount, source: &str) -> String {
        match (pick, model.order(source)) {
            (RefAccount::Owner, Some(order)) => order.account_id.clone(),
            (RefAccount::Owner, None) => self.pick_account(model, AccountPick::Open(0)),
            (RefAccount::Pick(index), _) => ACCOUNTS[usize::from(index) % ACCOUNTS.len()].0.to_owned(),
        }
    }

    fn pick_account(&self, model: &Model, pick: AccountPick) -> String {
        match pick {
            AccountPick::Open(index) => {
                let open: Vec<&String> = model.accounts().map(|(name, _)| name).collect();
                match open.is_empty() {
                    true => ACCOUNTS[0].0.to_owned(),
                    false => open[usize::from(index) % open.len()].clone(),
                }
            }
            AccountPick::Named(index) => ACCOUNTS[usize::from(index) % ACCOUNTS.len()].0.to_owned(),
            AccountPick::Last => self.last_account.clone().unwrap_or_else(|| ACCOUNTS[0].0.to_owned()),
            AccountPick::Frozen(index) => {
                let frozen: Vec<&String> = model
                    .accounts()
                    .filter(|(_, account)| account.status == Status::Frozen)
                    .map(|(name, _)| name)
                    .collect();
                match frozen.is_empty() {
                    true => self.pick_account(model, AccountPick::Open(index)),
                    false => frozen[usize::from(index) % frozen.len()].clone(),
                }
            }
        }
    }
}

fn at(when: When, now: Timestamp) -> Option<Timestamp> {
    match when {
        When::Absent => None,
        When::PastBy(seconds) => Some(Timestamp(now.0 - i64::from(seconds))),
        When::Now => Some(now),
        When::FutureBy(seconds) => Some(Timestamp(now.0 + i64::from(seconds))),
    }
}

fn remark_text(remark: RemarkPick) -> Option<String> {
    match remark {
        RemarkPick::Absent => None,
        RemarkPick::Blank => Some(" \t ".to_owned()),
        RemarkPick::Text => Some("correction".to_owned()),
    }
}

fn mangle_command(command: &mut Command, mangle: Mangle) {
    match mangle {
        Mangle::None => {}
        Mangle::EmptyRequest => command.request_id.clear(),
        Mangle::LongRequest => command.request_id = "r".repeat(129),
        Mangle::MaxRequest => command.request_id = "r".repeat(128),
        Mangle::EmptyOrder => command.outer_order_id.clear(),
        Mangle::LongOrder => command.outer_order_id = "o".repeat(129),
        // 128 characters, unique per command: the order id itself, padded.
        Mangle::MaxOrder => command.outer_order_id = format!("{:x<128}", command.outer_order_id),
        Mangle::LongAccount => command.account_id = "x".repeat(65),
        Mangle::WideAccount => command.account_id = "é".repeat(64),
        Mangle::ControlAccount => command.account_id.push('\u{7}'),
        Mangle::LongShop => command.shop_id = Some("s".repeat(65)),
        Mangle::ControlOperator => command.operator_id = Some("op\u{85}".to_owned()),
        Mangle::LongRemark => command.remark = Some("m".repeat(513)),
        Mangle::MaxRemark => command.remark = Some("m".repeat(512)),
        Mangle::LongExtInfo => command.ext_info = Some(format!("\"{}\"", "e".repeat(4095))),
        Mangle::SweepPrefix => command.outer_order_id = format!("expire:{}", command.outer_order_id),
        Mangle::EmptySource => match &mut command.action {
            Action::Undeduct { original_outer_order_id: id, .. }
            | Action::Uncharge { src_outer_order_id: id }
            | Action::Capture { src_outer_order_id: id, .. }
            | Action::Release { src_outer_order_id: id }
            | Action::Transfer { to_account_id: id, .. } => id.clear(),
            _ => {}
        },
        Mangle::LongDestination => {
            if let Action::Transfer { to_account_id, .. } = &mut command.action {
                *to_account_id = "t".repeat(65);
            }
        }
    }
}

// ---------------------------------------------------------------- rules and text

fn money_text(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    format!("{sign}{}.{:02}", magnitude / 100, magnitude % 100)
}

impl RulesStep {
    pub fn brand_id(&self) -> Option<&'static str> {
        self.brand.map(|index| BRANDS[usize::from(index) % BRANDS.len()])
    }

    pub fn model_rules(&self) -> Rules {
        Rules { order: self.order, gift: self.gift.clone(), gift_valid_days: self.valid_days }
    }

    /// The same rules as purse-core's text form (spec §4 JSON fields), validated by purse-core.
    pub fn core_rules(&self) -> RuleSet {
        let order = match self.order {
            DeductOrder::Percent if self.terse => None,
            DeductOrder::Percent => Some("PERCENT_DEDUCT"),
            DeductOrder::RealFirst => Some("REAL_BEFORE_GIFT_DEDUCT"),
            DeductOrder::GiftFirst => Some("GIFT_BEFORE_REAL_DEDUCT"),
        };
        let (gift_type, switch, tiers) = match &self.gift {
            GiftRule::None => (None, None, Vec::new()),
            GiftRule::Customized { full, tiers } => {
                let switch = if *full || !self.terse { Some(*full) } else { None };
                let tiers = tiers.iter().map(|(real, gift)| (money_text(*real), money_text(*gift))).collect();
                (Some("CUSTOMIZED"), switch, tiers)
            }
            GiftRule::Proportional { tiers } => {
                let name = if self.terse { "PROPERTIONAL" } else { "PROPORTIONAL" };
                let tiers = tiers.iter().map(|(real, points)| (money_text(*real), points.to_string())).collect();
                (Some(name), None, tiers)
            }
        };
        let text = RuleSetText {
            deduction_order: order.map(str::to_owned),
            gift_type: gift_type.map(str::to_owned),
            full_gift_switch: switch,
            tiers,
            gift_valid_days: self.valid_days,
        };
        RuleSet::from_text(&text, Scale::CNY).unwrap_or_else(|error| panic!("generated rules {text:?}: {error}"))
    }
}

fn short(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= 48 && !text.chars().any(char::is_control) {
        text.to_owned()
    } else {
        format!("<{chars} chars: {:?}…>", text.chars().take(8).collect::<String>())
    }
}

/// A one-line form of a command, amounts in minor units.
pub fn describe(command: &Command) -> String {
    let minor = |amount: Amount| amount.minor().to_string();
    let action = match &command.action {
        Action::Recorded { flow_type, affected, source } => format!(
            "RECORDED {flow_type} [{}, {}, {}] from {}:{}",
            minor(affected.real),
            minor(affected.gift),
            minor(affected.pre),
            source.provider,
            short(&source.record_id)
        ),
        Action::Charge { real, gift, pre, trigger_gift } => format!(
            "CHARGE real={} gift={} pre={}{}",
            minor(*real),
            gift.map_or("-".to_owned(), minor),
            minor(*pre),
            if *trigger_gift { " trigger_gift" } else { "" }
        ),
        Action::Deduct { value } => format!("DEDUCT value={}", minor(*value)),
        Action::Undeduct { original_outer_order_id, value } => {
            format!("UNDEDUCT of={} value={}", short(original_outer_order_id), value.map_or("-".to_owned(), minor))
        }
        Action::Uncharge { src_outer_order_id } => format!("UNCHARGE of={}", short(src_outer_order_id)),
        Action::Import { real, gift, pre } => {
            format!("IMPORT real={} gift={} pre={}", minor(*real), minor(*gift), minor(*pre))
        }
        Action::Adjust { real, gift, pre } => {
            format!("ADJUST real={} gift={} pre={}", minor(*real), minor(*gift), minor(*pre))
        }
        Action::Open { real, gift, pre } => {
            format!("OPEN real={} gift={} pre={}", minor(*real), minor(*gift), minor(*pre))
        }
        Action::Hold { value, expire_time } => {
            format!(
                "HOLD value={} expire={}",
                minor(*value),
                expire_time.map_or("-".to_owned(), |time| time.0.to_string())
            )
        }
        Action::Capture { src_outer_order_id, value } => {
            format!("CAPTURE of={} value={}", short(src_outer_order_id), value.map_or("-".to_owned(), minor))
        }
        Action::Release { src_outer_order_id } => format!("RELEASE of={}", short(src_outer_order_id)),
        Action::Freeze => "FREEZE".to_owned(),
        Action::Unfreeze => "UNFREEZE".to_owned(),
        Action::Close => "CLOSE".to_owned(),
        Action::Transfer { to_account_id, value } => {
            format!("TRANSFER to={} value={}", short(to_account_id), value.map_or("-".to_owned(), minor))
        }
        Action::Clear { buckets } => format!("CLEAR bucket={}", buckets.as_str()),
        Action::Expire { now } => format!("EXPIRE now={}", now.0),
        Action::ExpireHold { src_outer_order_id, now } => {
            format!("EXPIRE_HOLD of={} now={}", short(src_outer_order_id), now.0)
        }
        other => format!("{other:?}"),
    };
    let mut text = format!(
        "{action} account={} order={} req={}",
        short(&command.account_id),
        short(&command.outer_order_id),
        short(&command.request_id)
    );
    let optional = [
        ("card", &command.card_id),
        ("brand", &command.brand_id),
        ("shop", &command.shop_id),
        ("operator", &command.operator_id),
        ("remark", &command.remark),
        ("ext_info", &command.ext_info),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            text.push_str(&format!(" {name}={}", short(value)));
        }
    }
    if let Some(time) = command.biz_date {
        text.push_str(&format!(" biz_date={}", time.0));
    }
    if let Some(time) = command.gift_expire_time {
        text.push_str(&format!(" gift_expire={}", time.0));
    }
    if let Some(time) = command.pre_expire_time {
        text.push_str(&format!(" pre_expire={}", time.0));
    }
    text
}
