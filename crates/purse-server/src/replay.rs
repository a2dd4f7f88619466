//! Clock-skew limits and replay protection for the signed dialects.
//!
//! A signed request carries its time (TOP `timestamp`, KYBIO `time-stamp`, Zenlayer
//! `X-ZC-Timestamp`); one whose time is further than the configured skew from the server's
//! clock is refused. Within that window each signed request is accepted once: the guard keeps
//! the signatures it accepted (a signature covers the request and its time, so a replay has the
//! same one) until they are older than the window, and refuses a second sight of one.
//!
//! Callers pass the signature *they computed* over the canonical request (never the text the
//! client sent, which could be padded into a new key), and the guard keeps only a SHA-256 of
//! (dialect, app key, signature): 32 bytes an entry, however long the input. Entries leave in
//! the order they expire (a map ordered by expiry time), so the cost per request stays flat;
//! at `SIGNATURES_MAX` entries still in their window the guard refuses new ones (`Full`)
//! rather than grow without bound.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::keys::Dialect;

/// Signatures held at once at the most: about 100 MB. At the default 300 s window that is
/// some 3,300 signed requests a second, sustained.
const SIGNATURES_MAX: usize = 1_000_000;

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the request's time is {skew_seconds} s from the server's clock (at most {limit_seconds} s is accepted): send the current time")]
    Skewed { skew_seconds: i64, limit_seconds: u64 },
    #[error(
        "this signed request was already received: a replay is refused (sign each request anew, with its own time)"
    )]
    Replayed,
    #[error("too many signed requests inside the clock-skew window to tell replays apart: retry shortly")]
    Full,
}

#[derive(Debug)]
pub struct ReplayGuard {
    skew: Duration,
    seen: Mutex<Seen>,
}

/// The signatures inside the window: digest → when it expires, and the same by expiry.
#[derive(Debug, Default)]
struct Seen {
    expiry_of: HashMap<[u8; 32], i64>,
    by_expiry: BTreeMap<i64, Vec<[u8; 32]>>,
}

impl Seen {
    /// Drops every entry whose window has passed at `now_ms`.
    fn expire(&mut self, now_ms: i64) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() > now_ms {
                break;
            }
            for digest in entry.remove() {
                self.expiry_of.remove(&digest);
            }
        }
    }
}

fn digest(dialect: Dialect, app_key: &str, signature: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [dialect.as_str(), app_key, &signature.to_ascii_uppercase()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

impl ReplayGuard {
    pub fn new(skew: Duration) -> ReplayGuard {
        ReplayGuard { skew, seen: Mutex::new(Seen::default()) }
    }

    /// The server's clock, in Unix milliseconds.
    pub fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
    }

    /// Checks a request signed at `signed_at_ms` (Unix ms) whose signature, as the server
    /// computed it, is `signature`, at `now_ms`.
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
        seen.expire(now_ms);
        let digest = digest(dialect, app_key, signature);
        if seen.expiry_of.contains_key(&digest) {
            return Err(ReplayError::Replayed);
        }
        if seen.expiry_of.len() >= SIGNATURES_MAX {
            return Err(ReplayError::Full);
        }
        // Kept until the signed time is out of the window on either side.
        let expires = signed_at_ms.saturating_add(limit_ms).saturating_add(1);
        seen.expiry_of.insert(digest, expires);
        seen.by_expiry.entry(expires).or_default().push(digest);
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
