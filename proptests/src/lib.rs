//! Model-based property tests of purse.
//!
//! "spec §N" in these docs is a section of the domain contract, `docs/spec.md` in the
//! repository.
//!
//! [`model`] is a plain, independent reference model of spec §2–§4 and §8–§11 (holds, account
//! status, transfers, expiry lots, the sweep and CLEAR). The property tests in `tests/` run
//! random command sequences against purse-core and the model and compare every result, balance,
//! lot and invariant. Failure seeds are kept in `proptest-regressions/`.

pub mod model;
