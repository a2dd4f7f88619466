//! Credentials: API keys of the native API and the app keys of the signed dialects, in
//! `keys.json` in the ledger directory, managed with `purse keys add|list|revoke`.
//!
//! An API key is `pk_<id>_<secret>` (a 12-hex id, a 40-hex secret: 160 random bits). Only its
//! SHA-256 is stored, so the file cannot be used to call the server; the key itself is printed
//! once, when it is made. A key of high entropy needs no slow password hash: no dictionary
//! reaches it. The signed dialects (TOP, KYBIO, Zenlayer) verify an HMAC or digest keyed by a
//! shared secret, which the server must hold: those secrets are stored as given, in a file
//! only its owner may read (mode 0600 on Unix).
//!
//! The server re-reads the file when it changes (looked at no more than once a second), so a
//! key added or revoked while `purse serve` runs takes effect without a restart. Nothing here
//! ever logs a key or a secret.

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file's name in the ledger directory.
pub const KEYS_FILE: &str = "keys.json";
/// The file's format; a newer one is refused, never half read.
const KEYS_VERSION: u32 = 1;
/// How often the server looks whether the file changed.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// What a key may do. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Queries, the console.
    Read,
    /// Queries and every write command.
    Write,
    /// Also rules changes, verify, snapshots.
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text.to_ascii_lowercase().as_str() {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// The signed provider dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Alibaba's TOP gateway (ALSC methods).
    Top,
    /// KYBIO/Pospal's open API.
    Kybio,
    /// Zenlayer's Cloud API v2.
    Zenlayer,
}

impl Dialect {
    pub fn parse(text: &str) -> Option<Dialect> {
        match text.to_ascii_lowercase().as_str() {
            "top" | "alsc" => Some(Dialect::Top),
            "kybio" | "pospal" => Some(Dialect::Kybio),
            "zenlayer" => Some(Dialect::Zenlayer),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Top => "top",
            Dialect::Kybio => "kybio",
            Dialect::Zenlayer => "zenlayer",
        }
    }
}

/// One native API key, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// Lowercase hex SHA-256 of the whole key text.
    pub sha256: String,
    pub created_unix: u64,
    pub revoked: bool,
}

/// One dialect app key and its shared secret, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKey {
    pub dialect: Dialect,
    /// The app key (TOP `app_key`, KYBIO `appId`, Zenlayer access key id).
    pub app_key: String,
    pub secret: String,
    pub scope: Scope,
    pub created_unix: u64,
    pub revoked: bool,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    pub version: u32,
    #[serde(default)]
    pub keys: Vec<ApiKey>,
    #[serde(default)]
    pub apps: Vec<AppKey>,
}

/// Why the keys file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a keys file: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{0}")]
    Argument(String),
}

impl Keys {
    /// Reads `dir/keys.json`; a missing file is an empty set of keys.
    pub fn load(dir: &Path) -> Result<Keys, KeysError> {
        let path = dir.join(KEYS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Keys { version: KEYS_VERSION, ..Keys::default() })
            }
            Err(source) => return Err(KeysError::Io { path, source }),
        };
        let keys: Keys = serde_json::from_str(&text)
            .map_err(|error| KeysError::Format { path: path.clone(), message: error.to_string() })?;
        if keys.version != KEYS_VERSION {
            return Err(KeysError::Format {
                path,
                message: format!("version {} (this purse reads version {KEYS_VERSION})", keys.version),
            });
        }
        Ok(keys)
    }

    /// Writes the file whole: a temporary file, synced, renamed over the old one, the directory
    /// synced, so a crash leaves the old file or the new one, never a torn one.
    pub fn save(&self, dir: &Path) -> Result<(), KeysError> {
        let path = dir.join(KEYS_FILE);
        let io = |source| KeysError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let temporary = dir.join(format!("{KEYS_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self)
            .map_err(|error| KeysError::Format { path: path.clone(), message: error.to_string() })?;
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(io)?;
            // `mode` only applies to a file it creates: a leftover temporary file keeps its own.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, &path).map_err(io)?;
        std::fs::File::open(dir).and_then(|directory| directory.sync_all()).map_err(io)?;
        Ok(())
    }

    /// Makes a new API key: stores its hash, answers the stored entry and the key text.
    pub fn add_key(&mut self, name: &str, scope: Scope) -> Result<(ApiKey, String), KeysError> {
        let id = hex::encode(random_bytes::<6>()?);
        let token = format!("pk_{id}_{}", hex::encode(random_bytes::<20>()?));
        let key = ApiKey {
            id: id.clone(),
            name: name.to_owned(),
            scope,
            sha256: sha256_hex(token.as_bytes()),
            created_unix: unix_now(),
            revoked: false,
        };
        self.keys.push(key.clone());
        Ok((key, token))
    }

    /// Adds a dialect app key; without `secret`, makes one (32 random bytes as hex).
    pub fn add_app(
        &mut self,
        dialect: Dialect,
        app_key: &str,
        secret: Option<&str>,
        scope: Scope,
    ) -> Result<AppKey, KeysError> {
        if app_key.is_empty() || app_key.len() > 128 {
            return Err(KeysError::Argument("an app key is 1-128 characters".into()));
        }
        if self.apps.iter().any(|app| app.dialect == dialect && app.app_key == app_key && !app.revoked) {
            return Err(KeysError::Argument(format!(
                "{} app key {app_key:?} exists already; revoke it first",
                dialect.as_str()
            )));
        }
        let secret = match secret {
            Some(secret) if !secret.is_empty() => secret.to_owned(),
            Some(_) => return Err(KeysError::Argument("an empty secret signs nothing".into())),
            None => hex::encode(random_bytes::<32>()?),
        };
        let app =
            AppKey { dialect, app_key: app_key.to_owned(), secret, scope, created_unix: unix_now(), revoked: false };
        self.apps.push(app.clone());
        Ok(app)
    }

    /// Revokes an API key by id, or an app key by its app key (of `dialect` only, when given:
    /// two dialects may use the same app key); answers how many it revoked.
    pub fn revoke(&mut self, id: &str, dialect: Option<Dialect>) -> usize {
        let mut revoked = 0;
        if dialect.is_none() {
            for key in self.keys.iter_mut().filter(|key| key.id == id && !key.revoked) {
                key.revoked = true;
                revoked += 1;
            }
        }
        let apps = self.apps.iter_mut().filter(|app| dialect.is_none_or(|dialect| app.dialect == dialect));
        for app in apps.filter(|app| app.app_key == id && !app.revoked) {
            app.revoked = true;
            revoked += 1;
        }
        revoked
    }

    /// The scope of a presented API key, if it is one of ours and not revoked.
    pub fn authorize(&self, token: &str) -> Option<&ApiKey> {
        let id = token.strip_prefix("pk_")?.split('_').next()?;
        let hash = sha256_hex(token.as_bytes());
        self.keys.iter().find(|key| key.id == id && !key.revoked && constant_time_eq(&key.sha256, &hash))
    }

    /// The live app key of a dialect.
    pub fn app(&self, dialect: Dialect, app_key: &str) -> Option<&AppKey> {
        self.apps.iter().find(|app| app.dialect == dialect && app.app_key == app_key && !app.revoked)
    }
}

/// The server's view of `keys.json`: re-read when it changes.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    state: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    keys: std::sync::Arc<Keys>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

impl KeyStore {
    pub fn open(dir: &Path) -> Result<KeyStore, KeysError> {
        let keys = Keys::load(dir)?;
        let stamp = stamp(dir);
        Ok(KeyStore {
            dir: dir.to_owned(),
            state: RwLock::new(Loaded { keys: std::sync::Arc::new(keys), stamp, checked: Instant::now() }),
        })
    }

    /// An in-memory store (tests, embedding without a file).
    pub fn fixed(keys: Keys) -> KeyStore {
        KeyStore {
            dir: PathBuf::new(),
            state: RwLock::new(Loaded { keys: std::sync::Arc::new(keys), stamp: None, checked: Instant::now() }),
        }
    }

    /// The keys now, re-read first if the file changed. A file that became unreadable keeps
    /// the keys last read (and says so in the log): a typo in an edit must not lock everyone
    /// out, nor let anyone in.
    pub fn current(&self) -> std::sync::Arc<Keys> {
        {
            let state = self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.dir.as_os_str().is_empty() || state.checked.elapsed() < RELOAD_EVERY {
                return state.keys.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.checked.elapsed() >= RELOAD_EVERY {
            state.checked = Instant::now();
            let now = stamp(&self.dir);
            if now != state.stamp {
                match Keys::load(&self.dir) {
                    Ok(keys) => {
                        state.keys = std::sync::Arc::new(keys);
                        state.stamp = now;
                        tracing::info!(target: "purse::keys", "keys.json changed: reloaded");
                    }
                    Err(error) => {
                        tracing::warn!(target: "purse::keys", %error, "keys.json unreadable: keeping the keys last read")
                    }
                }
            }
        }
        state.keys.clone()
    }
}

fn stamp(dir: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(dir.join(KEYS_FILE)).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compares two texts of equal length without stopping at the first difference.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeysError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|error| KeysError::Argument(format!("no randomness from the system: {error}")))?;
    Ok(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_authorize() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::load(dir.path()).unwrap();
        let (stored, token) = keys.add_key("pos", Scope::Write).unwrap();
        keys.add_app(Dialect::Top, "12345", Some("s3cret"), Scope::Write).unwrap();
        keys.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(!text.contains(&token), "the key itself is never stored");
        let keys = Keys::load(dir.path()).unwrap();
        assert_eq!(keys.authorize(&token).map(|key| key.scope), Some(Scope::Write));
        assert_eq!(keys.authorize(&format!("{token}x")), None);
        assert_eq!(keys.authorize("pk_000000000000_0"), None);
        assert_eq!(keys.app(Dialect::Top, "12345").map(|app| app.secret.as_str()), Some("s3cret"));
        let mut keys = keys;
        assert_eq!(keys.revoke(&stored.id, Some(Dialect::Top)), 0, "an API key is no dialect's");
        assert_eq!(keys.revoke(&stored.id, None), 1);
        assert_eq!(keys.authorize(&token), None);
        assert!(keys.add_app(Dialect::Top, "12345", None, Scope::Read).is_err(), "a live app key twice");
    }

    #[test]
    fn newer_or_damaged_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), "{\"version\": 9}").unwrap();
        assert!(Keys::load(dir.path()).unwrap_err().to_string().contains("version 9"));
        std::fs::write(dir.path().join(KEYS_FILE), "{").unwrap();
        assert!(matches!(Keys::load(dir.path()), Err(KeysError::Format { .. })));
    }
}
