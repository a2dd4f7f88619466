//! Read commands on a ledger that `purse serve` holds: asked of the server over its admin
//! socket (`<data>/serve.sock`, purse-server's `local.rs`), answered exactly as if the ledger
//! had been opened here.
//!
//! The command's options become the query of the native route of the same name, taken from
//! what was written on the command line (clap's raw values), so the server parses them with
//! the very same definitions.

use std::io::Write;
use std::path::Path;

use clap::parser::ValueSource;
use clap::ArgMatches;
use purse_core::ErrorCode;
use purse_wire::WireError;

/// Options every command has, which are not the command's own.
const GLOBAL_OPTIONS: [&str; 5] = ["data", "scale", "time_zone", "snapshot_every_entries", "cold_after_entries"];

/// The route and query of a read command, or `None` for a command with no read route.
pub fn route(matches: &ArgMatches) -> Option<(&'static str, &'static str, String)> {
    let (name, sub) = matches.subcommand()?;
    let (method, route, options) = match name {
        "flow" => ("GET", "flow", sub),
        "account" => ("GET", "account", sub),
        "flows" => ("GET", "flows", sub),
        "accounts" => ("GET", "accounts", sub),
        "statement" => ("GET", "statement", sub),
        "liability" => ("GET", "liability", sub),
        "export" => ("GET", "export", sub),
        "verify" => ("POST", "verify", sub),
        "rules" => match sub.subcommand() {
            Some(("get", get)) => ("GET", "rules", get),
            _ => return None,
        },
        _ => return None,
    };
    let mut query = form_urlencoded_serializer();
    for id in options.ids() {
        let id = id.as_str();
        // clap derive names an argument group after its struct (`AccountWho`): its values are
        // its members', which come on their own.
        if GLOBAL_OPTIONS.contains(&id) || id.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        if !matches!(options.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let Ok(Some(values)) = options.try_get_raw(id) else { continue };
        for value in values {
            query.append_pair(id, &value.to_string_lossy());
        }
    }
    Some((method, route, query.finish()))
}

fn form_urlencoded_serializer() -> form_urlencoded::Serializer<'static, String> {
    form_urlencoded::Serializer::new(String::new())
}

/// Asks the server holding `data`; `Ok(None)` when no server answers on its socket.
pub async fn ask(data: &Path, method: &str, route: &str, query: &str) -> Result<Option<String>, WireError> {
    let target = if query.is_empty() { format!("/v1/{route}") } else { format!("/v1/{route}?{query}") };
    let mut answer = match purse_server::local::request(data, method, &target).await {
        Ok(answer) => answer,
        Err(_) => return Ok(None),
    };
    if answer.status.is_success() && route == "export" {
        // Streamed, as a local export is: each piece to stdout as it comes.
        let mut stdout = std::io::stdout().lock();
        while let Some(chunk) = answer.chunk().await.map_err(WireError::System)? {
            stdout
                .write_all(&chunk)
                .map_err(|error| WireError::System(format!("writing the export to stdout: {error}")))?;
        }
        stdout.flush().map_err(|error| WireError::System(format!("writing the export to stdout: {error}")))?;
        return Ok(Some(String::new()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(WireError::System)? {
        body.extend_from_slice(&chunk);
    }
    if answer.status.is_success() {
        return Ok(Some(pretty(&body)?));
    }
    Err(error_of(&body))
}

/// The server's compact JSON, printed as the CLI prints (pretty, keys in the server's order).
fn pretty(body: &[u8]) -> Result<String, WireError> {
    let mut out = Vec::with_capacity(body.len() * 2);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let mut serializer = serde_json::Serializer::pretty(&mut out);
    serde_transcode::transcode(&mut deserializer, &mut serializer)
        .map_err(|error| WireError::System(format!("the server's answer is not JSON: {error}")))?;
    out.push(b'\n');
    String::from_utf8(out).map_err(|error| WireError::System(error.to_string()))
}

fn error_of(body: &[u8]) -> WireError {
    #[derive(serde::Deserialize)]
    struct Document {
        error: Body,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Document>(body) {
        Ok(document) => {
            let code = ErrorCode::ALL.into_iter().find(|code| code.as_str() == document.error.code);
            WireError::Argument { code: code.unwrap_or(ErrorCode::Storage), message: document.error.message }
        }
        Err(_) => WireError::System(format!("the server answered: {}", String::from_utf8_lossy(body))),
    }
}
