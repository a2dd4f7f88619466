//! What a run is asked to do, and what it resolves to once the ledger's scale is known.

use std::collections::HashMap;
use std::fmt;

use purse_core::{FlowType, Scale, Zone};

use crate::error::Error;

/// The providers whose records purse reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// KYBIO (Pospal open API): recharge logs.
    Kybio,
    /// Alibaba local-life CRM (TOP): stored-value flow details and listings.
    Alsc,
    /// Zenlayer billing: recharge and refund history.
    Zenlayer,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Kybio, Provider::Alsc, Provider::Zenlayer];

    /// The lower-case name used on the command line, in the report and in request ids.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Kybio => "kybio",
            Provider::Alsc => "alsc",
            Provider::Zenlayer => "zenlayer",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|provider| provider.as_str() == text)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the run's flows are written (the ledger's group modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every record lands, or none does (the default).
    #[default]
    AllOrNothing,
    /// The good records land; the rejected ones are reported.
    Partial,
    /// Nothing is written; the report says what would happen.
    DryRun,
}

/// The unit of ALSC amounts. The `open.*` methods state fen; the `recharge.*` pages do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlscUnits {
    /// Whole hundredths of the major unit (fen): `200` is 2.00.
    #[default]
    Minor,
    /// Major units (yuan) at the ledger's scale: `2.00` is 2.00.
    Major,
}

/// What a provider flow type is taken as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowTarget {
    Flow(FlowType),
    /// The records move no money and are skipped with this as the reason.
    Skip,
}

/// A run's settings, as the user gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub provider: Provider,
    pub mode: Mode,
    /// Bring in an account's opening balance (IMPORT) when its first record states one.
    pub opening_balances: bool,
    pub alsc_units: AlscUnits,
    /// `--map-flow-type NAME=FLOW_TYPE`: provider flow type names (ALSC) taken as a purse type.
    pub flow_types: HashMap<String, FlowTarget>,
    /// The zone of the providers' `YYYY-MM-DD HH:MM:SS` times (KYBIO, ALSC): GMT+8.
    pub provider_zone: Zone,
}

impl Options {
    pub fn new(provider: Provider) -> Options {
        Options {
            provider,
            mode: Mode::AllOrNothing,
            opening_balances: true,
            alsc_units: AlscUnits::Minor,
            flow_types: HashMap::new(),
            provider_zone: Zone::CHINA,
        }
    }

    /// Adds one `NAME=FLOW_TYPE` mapping (FLOW_TYPE a purse flow type, or `SKIP`).
    pub fn map_flow_type(&mut self, mapping: &str) -> Result<(), Error> {
        let bad = |why: &str| Error::Option { message: format!("--map-flow-type {mapping:?}: {why}") };
        if self.provider != Provider::Alsc {
            return Err(bad("only ALSC records carry a flow_type to map"));
        }
        let (name, target) = mapping.split_once('=').ok_or_else(|| bad("expected NAME=FLOW_TYPE"))?;
        if name.is_empty() {
            return Err(bad("the provider's type name is empty"));
        }
        let target = match target {
            "SKIP" => FlowTarget::Skip,
            other => FlowTarget::Flow(FlowType::parse(other).ok_or_else(|| {
                bad("FLOW_TYPE must be one of CHARGE, DEDUCT, UNDEDUCT, UNCHARGE, IMPORT, ADJUST or SKIP")
            })?),
        };
        if self.flow_types.insert(name.to_owned(), target).is_some_and(|earlier| earlier != target) {
            return Err(bad("the name is mapped twice, to different types"));
        }
        Ok(())
    }
}

/// Everything a provider parser needs: the options and the ledger's scale.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub options: Options,
    pub scale: Scale,
}

impl Context {
    pub fn new(options: Options, scale: Scale) -> Context {
        Context { options, scale }
    }

    pub fn zone(&self) -> Zone {
        self.options.provider_zone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(provider: Provider, mappings: &[&str], expect: Result<&[(&str, FlowTarget)], &str>) {
        let mut options = Options::new(provider);
        let got = mappings.iter().try_for_each(|mapping| options.map_flow_type(mapping));
        match (got, expect) {
            (Ok(()), Ok(pairs)) => {
                for (name, target) in pairs {
                    assert_eq!(options.flow_types.get(*name), Some(target), "{mappings:?}");
                }
                assert_eq!(options.flow_types.len(), pairs.len());
            }
            (Err(error), Err(needle)) => assert!(error.to_string().contains(needle), "{error}"),
            (got, expect) => panic!("{mappings:?}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn flow_type_mappings() {
        check(
            Provider::Alsc,
            &["CONSUME=DEDUCT", "FREEZE=SKIP"],
            Ok(&[("CONSUME", FlowTarget::Flow(FlowType::Deduct)), ("FREEZE", FlowTarget::Skip)]),
        );
        check(
            Provider::Alsc,
            &["CONSUME=DEDUCT", "CONSUME=DEDUCT"],
            Ok(&[("CONSUME", FlowTarget::Flow(FlowType::Deduct))]),
        );
        check(Provider::Alsc, &["CONSUME=DEDUCT", "CONSUME=ADJUST"], Err("mapped twice"));
        check(Provider::Alsc, &["CONSUME"], Err("expected NAME=FLOW_TYPE"));
        check(Provider::Alsc, &["=DEDUCT"], Err("empty"));
        check(Provider::Alsc, &["CONSUME=deduct"], Err("FLOW_TYPE must be one of"));
        check(Provider::Zenlayer, &["X=DEDUCT"], Err("only ALSC"));
    }

    #[test]
    fn provider_names() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()), Some(provider));
        }
        assert_eq!(Provider::parse("KYBIO"), None);
    }
}
