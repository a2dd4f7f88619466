//! Clock-skew limits and replay protection for the signed dialects.
//!
//! A signed request carries its time (TOP `timestamp`, KYBIO `time-stamp`, Zenlayer
//! `X-ZC-Timestamp`); one whose time is further than the configured skew from the server's
//! clock is refused. Within that window each signed request is accepted once: the guard keeps
//! the signatures it accepted (a signature covers the request and its time, so a replay has the
//! same one) until they are older than the window, and refuses a second sight of one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::keys::Dialect;

/// Signatures kept before the old ones are swept out.
const SWEEP_AFTER: usize = 100_000;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the request's time is {skew_seconds} s from the server's clock (at most {limit_seconds} s is accepted): send the current time")]
    Skewed { skew_seconds: i64, limit_seconds: u64 },
    #[error(
        "this signed request was already received: a replay is refused (sign each request anew, with its own time)"
    )]
    Replayed,
}

#[derive(Debug)]
pub struct ReplayGuard {
    skew: Duration,
    /// (dialect, app key, signature) → when it expires, in Unix ms.
    seen: Mutex<HashMap<(Dialect, String, String), i64>>,
}

impl ReplayGuard {
    pub fn new(skew: Duration) -> ReplayGuard {
        ReplayGuard { skew, seen: Mutex::new(HashMap::new()) }
    }

    /// The server's clock, in Unix milliseconds.
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }

    /// Checks a request signed at `signed_at_ms` (Unix ms) with `signature`, at `now_ms`.
    pub fn check(
        &self,
        dialect: Dialect,
        app_key: &str,
        signature: &str,
        signed_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), ReplayError> {
        let limit_ms = i64::try_from(self.skew.as_millis()).unwrap_or(i64::MAX);
        let skew_ms = now_ms.saturating_sub(signed_at_ms);
        if skew_ms.checked_abs().is_none_or(|skew| skew > limit_ms) {
            return Err(ReplayError::Skewed { skew_seconds: skew_ms / 1000, limit_seconds: self.skew.as_secs() });
        }
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= SWEEP_AFTER {
            seen.retain(|_, expires| *expires > now_ms);
        }
        let key = (dialect, app_key.to_owned(), signature.to_ascii_uppercase());
        if seen.get(&key).is_some_and(|expires| *expires > now_ms) {
            return Err(ReplayError::Replayed);
        }
        // Kept until the signed time is out of the window on either side.
        seen.insert(key, signed_at_ms.saturating_add(limit_ms).saturating_add(1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_and_replays() {
        let guard = ReplayGuard::new(Duration::from_secs(300));
        let now = 1_700_000_000_000;
        assert_eq!(guard.check(Dialect::Top, "app", "AB", now - 10_000, now), Ok(()));
        assert_eq!(guard.check(Dialect::Top, "app", "ab", now - 10_000, now), Err(ReplayError::Replayed));
        assert_eq!(guard.check(Dialect::Top, "other", "AB", now, now), Ok(()), "another app's signature");
        assert_eq!(guard.check(Dialect::Kybio, "app", "AB", now, now), Ok(()), "another dialect");
        assert!(matches!(guard.check(Dialect::Top, "app", "CD", now - 301_000, now), Err(ReplayError::Skewed { .. })));
        assert!(matches!(guard.check(Dialect::Top, "app", "CD", now + 301_000, now), Err(ReplayError::Skewed { .. })));
        assert!(matches!(guard.check(Dialect::Top, "app", "CD", i64::MIN, now), Err(ReplayError::Skewed { .. })));
        // Once the signed time is out of the window, the same signature is refused as stale.
        assert!(matches!(
            guard.check(Dialect::Top, "app", "AB", now - 10_000, now + 300_000),
            Err(ReplayError::Skewed { .. })
        ));
    }
}
