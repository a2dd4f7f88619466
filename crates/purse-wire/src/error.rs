//! The one error type of the command line, mapped onto the closed codes of spec §6.
//!
//! Every failure leaves the program the same way: `{"error": {"code", "message"}}` on stderr
//! and a non-zero exit. Exit 2 means "the command line itself is malformed" (clap refused it),
//! exit 1 everything else, so scripts can tell a typo from a refused payment (the table in
//! README.md; `ingest` exits 3 when it finished with rejected records or mismatches).

use std::fmt;
use std::process::ExitCode;

use purse_core::ErrorCode;
use serde::Serialize;

/// Why a `purse` invocation failed.
#[derive(Debug)]
pub enum WireError {
    /// clap refused the command line (unknown option, missing required option, bad number…).
    Usage(String),
    /// An option clap accepted but purse cannot use: a bad amount, time, flow type, JSON text.
    Argument { code: ErrorCode, message: String },
    /// The ledger refused or failed; its code passes through unchanged.
    Ledger(purse_ledger::Error),
    /// The process itself failed: no async runtime, or stdout could not be written.
    /// The message says which.
    System(String),
    /// `source`, with what led to it in front; its code and exit status are `source`'s.
    Context { context: String, source: Box<WireError> },
}

impl WireError {
    /// An `INVALID_ARGUMENT` about an option clap let through.
    pub fn invalid_argument(message: impl Into<String>) -> WireError {
        WireError::Argument { code: ErrorCode::InvalidArgument, message: message.into() }
    }

    /// An `INVALID_AMOUNT` about an amount option or a rules tier.
    pub fn invalid_amount(message: impl Into<String>) -> WireError {
        WireError::Argument { code: ErrorCode::InvalidAmount, message: message.into() }
    }

    /// The spec §6 code reported for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            WireError::Usage(_) => ErrorCode::InvalidArgument,
            WireError::Argument { code, .. } => *code,
            WireError::Ledger(error) => error.code(),
            WireError::System(_) => ErrorCode::Storage,
            WireError::Context { source, .. } => source.code(),
        }
    }

    /// The process exit code: 2 for a malformed command line, 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            WireError::Usage(_) => ExitCode::from(2),
            WireError::Context { source, .. } => source.exit_code(),
            _ => ExitCode::from(1),
        }
    }

    /// The error document printed on stderr.
    pub fn to_json(&self) -> String {
        crate::render::to_text(&ErrorDocument::new(self.code(), &self.to_string()))
    }
}

/// spec §6's error object, `{"error": {"code", "message"}}`: what the CLI prints on stderr and
/// the server answers.
#[derive(Debug, Serialize)]
pub struct ErrorDocument<'a> {
    error: ErrorBody<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl<'a> ErrorDocument<'a> {
    pub fn new(code: ErrorCode, message: &'a str) -> ErrorDocument<'a> {
        ErrorDocument { error: ErrorBody { code: code.as_str(), message } }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Usage(message) | WireError::Argument { message, .. } | WireError::System(message) => {
                f.write_str(message)
            }
            WireError::Ledger(error) => write!(f, "{error}"),
            WireError::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl From<purse_ledger::Error> for WireError {
    fn from(error: purse_ledger::Error) -> WireError {
        WireError::Ledger(error)
    }
}

impl From<purse_core::Error> for WireError {
    fn from(error: purse_core::Error) -> WireError {
        WireError::Argument { code: error.code(), message: error.to_string() }
    }
}

/// Turns a clap error into a one-line usage message. clap's own text is several lines
/// (error, usage, hint); the JSON message keeps the error and the usage line.
pub fn usage_message(error: &clap::Error) -> String {
    use clap::error::ErrorKind;
    if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap would print the whole help here; a message must say what is wrong instead.
        return "a command is required; run with --help to list them".to_owned();
    }
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let first = lines.next().unwrap_or("invalid command line");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // clap lists what is missing or wrong on indented lines before the usage: keep them, they
    // are what the person must fix ("--value <AMOUNT>").
    let mut details = Vec::new();
    let mut usage = None;
    for line in lines {
        if let Some(text) = line.strip_prefix("Usage: ") {
            usage = Some(text);
            break;
        }
        if !line.starts_with("tip:") && !line.starts_with("For more information") {
            details.push(line);
        }
    }
    let first = if details.is_empty() { first.to_owned() } else { format!("{first} {}", details.join(", ")) };
    match usage {
        Some(usage) => format!("{first} (usage: {usage})"),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: WireError, code: &str, exit: ExitCode, json: &str) {
        assert_eq!(error.code().as_str(), code, "{error:?}");
        assert_eq!(error.exit_code(), exit, "{error:?}");
        assert_eq!(error.to_json(), json, "{error:?}");
    }

    #[test]
    fn codes_exits_and_documents() {
        check(
            WireError::Usage("unexpected argument '--x'".into()),
            "INVALID_ARGUMENT",
            ExitCode::from(2),
            "{\n  \"error\": {\n    \"code\": \"INVALID_ARGUMENT\",\n    \"message\": \"unexpected argument '--x'\"\n  }\n}\n",
        );
        check(
            WireError::invalid_amount("--value: \"x\" is not a decimal number"),
            "INVALID_AMOUNT",
            ExitCode::from(1),
            "{\n  \"error\": {\n    \"code\": \"INVALID_AMOUNT\",\n    \"message\": \"--value: \\\"x\\\" is not a decimal number\"\n  }\n}\n",
        );
        check(
            WireError::Ledger(purse_ledger::Error::AccountNotFound("alice".into())),
            "ACCOUNT_NOT_FOUND",
            ExitCode::from(1),
            "{\n  \"error\": {\n    \"code\": \"ACCOUNT_NOT_FOUND\",\n    \"message\": \"account \\\"alice\\\" does not exist\"\n  }\n}\n",
        );
        check(
            WireError::System("writing the answer to stdout: broken pipe".into()),
            "STORAGE",
            ExitCode::from(1),
            "{\n  \"error\": {\n    \"code\": \"STORAGE\",\n    \"message\": \"writing the answer to stdout: broken pipe\"\n  }\n}\n",
        );
        check(
            WireError::Context {
                context: "the run failed (disk full), then reopening failed".into(),
                source: Box::new(WireError::Ledger(purse_ledger::Error::Corruption("no head".into()))),
            },
            "CORRUPTION",
            ExitCode::from(1),
            "{\n  \"error\": {\n    \"code\": \"CORRUPTION\",\n    \"message\": \"the run failed (disk full), then reopening failed: the ledger's data is damaged: no head\"\n  }\n}\n",
        );
    }
}
