//! Request fields to command options: a JSON body's members, or a query string's pairs, become
//! the options of the very clap definitions the command line parses (`purse_wire::args`).
//!
//! So a JSON key is an option's id (the spec's field name: `real_value` is `--real-value`), the
//! server accepts exactly what `purse charge` accepts, and the two can never drift apart.
//! Unknown keys are refused (a typo such as `real_valeu` must not quietly charge nothing);
//! amounts may be JSON strings or numbers, both read from their exact source text, never
//! through a float; `null` is the same as leaving the key out.

use std::collections::HashMap;

use clap::{Args, FromArgMatches};
use serde_json::value::RawValue;

use crate::error::ApiError;

/// Parsed copies of one definition kept for reuse (about one per thread that serves).
const SPARE_COMMANDS_MAX: usize = 64;

/// One command's clap definition, built once.
#[derive(Debug)]
pub struct Definition {
    command: clap::Command,
    /// Built copies ready for parsing: clap parses through `&mut Command`, and cloning one per
    /// request costs more than the parse itself, so copies are reused.
    spare: std::sync::Mutex<Vec<clap::Command>>,
    /// Option id → its long name and whether it takes several values.
    options: HashMap<String, OptionInfo>,
}

#[derive(Debug, Clone)]
struct OptionInfo {
    long: String,
    many: bool,
    flag_like: bool,
}

impl Definition {
    /// The definition of the options struct `A` under the name `name`.
    pub fn of<A: Args>(name: &'static str) -> Definition {
        let command = A::augment_args(clap::Command::new(name).no_binary_name(true))
            .disable_help_flag(true)
            .disable_version_flag(true);
        let mut options = HashMap::new();
        for argument in command.get_arguments() {
            let Some(long) = argument.get_long() else { continue };
            let many = matches!(argument.get_action(), clap::ArgAction::Append);
            let flag_like = argument.get_num_args().is_some_and(|range| range.min_values() == 0);
            options.insert(argument.get_id().to_string(), OptionInfo { long: long.to_owned(), many, flag_like });
        }
        Definition { command, options, spare: std::sync::Mutex::new(Vec::new()) }
    }

    /// The option ids this command takes, sorted (for docs and the OpenAPI document).
    pub fn option_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.options.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    pub fn command(&self) -> &clap::Command {
        &self.command
    }

    /// Parses `pairs` (id, value text) into the options struct.
    pub fn parse<A: FromArgMatches>(&self, pairs: &[(String, String)]) -> Result<A, ApiError> {
        let mut argv = Vec::with_capacity(pairs.len());
        for (id, value) in pairs {
            let info = self.options.get(id).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown field {id:?}; {} takes {}",
                    self.command.get_name(),
                    self.option_ids().join(", ")
                ))
            })?;
            if !info.many && pairs.iter().filter(|(other, _)| other == id).count() > 1 {
                return Err(ApiError::bad_request(format!("{id} is given more than once")));
            }
            argv.push(format!("--{}={value}", info.long));
        }
        let spare = self.spare.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut command = spare.unwrap_or_else(|| self.command.clone());
        let matches = command.try_get_matches_from_mut(argv);
        {
            let mut spare = self.spare.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if spare.len() < SPARE_COMMANDS_MAX {
                spare.push(command);
            }
        }
        let matches = matches.map_err(|error| self.clap_error(&error))?;
        A::from_arg_matches(&matches).map_err(|error| self.clap_error(&error))
    }

    /// clap's message in the API's words: field names, not option names; no usage line.
    fn clap_error(&self, error: &clap::Error) -> ApiError {
        let message = purse_wire::error::usage_message(error);
        let message = message.split(" (usage: ").next().unwrap_or(&message).to_owned();
        ApiError::bad_request(self.in_field_names(&message))
    }

    /// An error of the text edge about this command's options, in the API's words.
    pub fn api_error(&self, error: purse_wire::WireError) -> ApiError {
        let error = ApiError::from(error);
        ApiError { message: self.in_field_names(&error.message), ..error }
    }

    /// Rewrites `--real-value <AMOUNT>` and `--real-value` as `real_value` in a message.
    pub fn in_field_names(&self, message: &str) -> String {
        let mut message = message.to_owned();
        let mut options: Vec<(&String, &OptionInfo)> = self.options.iter().collect();
        // Longer names first, so `--value` does not eat the end of `--real-value`.
        options.sort_by_key(|(_, info)| std::cmp::Reverse(info.long.len()));
        for (id, info) in options {
            let long = format!("--{}", info.long);
            if let Some(value_name) = self.value_name(id) {
                message = message.replace(&format!("{long} <{value_name}>"), id);
            }
            message = replace_option(&message, &long, id);
        }
        message
    }

    fn value_name(&self, id: &str) -> Option<String> {
        let argument = self.command.get_arguments().find(|argument| argument.get_id() == id)?;
        Some(match argument.get_value_names() {
            Some([name, ..]) => name.to_string(),
            _ => id.to_ascii_uppercase(),
        })
    }

    /// Whether the option `id` is a flag that may be written without a value (`trigger_gift`).
    pub fn is_flag(&self, id: &str) -> bool {
        self.options.get(id).is_some_and(|info| info.flag_like)
    }
}

/// Replaces `long` where it stands as a whole option name (not followed by `-` or a letter).
fn replace_option(message: &str, long: &str, id: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(long) {
        let after = &rest[at + long.len()..];
        let whole = !after.starts_with(|c: char| c == '-' || c.is_ascii_alphanumeric());
        out.push_str(&rest[..at]);
        out.push_str(if whole { id } else { long });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A JSON body's members as (id, value text) pairs, in the body's order.
///
/// The body must be strict JSON (no duplicate keys, no lone surrogates: the same check as
/// `ext_info`) and an object. Strings give their decoded text, numbers and booleans their
/// source text, `null` nothing; an array gives one pair per element (repeatable options);
/// an object is refused, except for `ext_info`, which is a JSON text and may be given either
/// as a string or as the object itself (kept exactly as written).
pub fn body_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let text =
        std::str::from_utf8(body).map_err(|error| ApiError::bad_request(format!("the body is not UTF-8: {error}")))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("the body is empty; send a JSON object of the command's fields"));
    }
    purse_wire::strict_json::check(text)
        .map_err(|error| ApiError::bad_request(format!("the body is not valid JSON: {error}")))?;
    let members: Vec<(String, &RawValue)> = match serde_json::from_str::<purse_wire::strict_json::Members<'_>>(text) {
        Ok(members) => members.0,
        Err(_) => return Err(ApiError::bad_request("the body must be a JSON object of the command's fields")),
    };
    let mut pairs = Vec::with_capacity(members.len());
    for (key, value) in members {
        let raw = value.get().trim();
        match raw.as_bytes().first() {
            Some(b'n') => {}
            Some(b'"') => {
                let text = decode_string(&key, raw)?;
                pairs.push((key, text));
            }
            Some(b'[') => {
                let items: Vec<&RawValue> =
                    serde_json::from_str(raw).map_err(|error| ApiError::bad_request(format!("{key}: {error}")))?;
                for item in items {
                    let item = item.get().trim();
                    match item.as_bytes().first() {
                        Some(b'"') => pairs.push((key.clone(), decode_string(&key, item)?)),
                        Some(b'[' | b'{') => {
                            return Err(ApiError::bad_request(format!("{key}: a list holds texts or numbers")))
                        }
                        _ => pairs.push((key.clone(), item.to_owned())),
                    }
                }
            }
            Some(b'{') if key == "ext_info" => pairs.push((key, raw.to_owned())),
            Some(b'{') => return Err(ApiError::bad_request(format!("{key}: an object is not a value of this field"))),
            _ => pairs.push((key, raw.to_owned())),
        }
    }
    Ok(pairs)
}

fn decode_string(key: &str, raw: &str) -> Result<String, ApiError> {
    serde_json::from_str::<String>(raw).map_err(|error| ApiError::bad_request(format!("{key}: {error}")))
}

/// A query string's pairs, percent-decoded; an empty value is the same as leaving it out.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let Some(query) = query else { return Vec::new() };
    form_urlencoded::parse(query.as_bytes())
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use purse_wire::args::{ChargeArgs, FlowsArgs};

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn bodies_become_pairs() {
        let check =
            |body: &str, expect: Result<Vec<(String, String)>, &str>| match (body_pairs(body.as_bytes()), expect) {
                (Ok(got), Ok(expect)) => assert_eq!(got, expect, "{body}"),
                (Err(error), Err(fragment)) => assert!(error.message.contains(fragment), "{body}: {error}"),
                (got, expect) => panic!("{body}: got {got:?}, expected {expect:?}"),
            };
        check(
            r#"{"request_id": "r1", "real_value": 100.10, "trigger_gift": true, "remark": null}"#,
            Ok(pairs(&[("request_id", "r1"), ("real_value", "100.10"), ("trigger_gift", "true")])),
        );
        check(r#"{"flow_type": ["DEDUCT", "HOLD"]}"#, Ok(pairs(&[("flow_type", "DEDUCT"), ("flow_type", "HOLD")])));
        check(r#"{"ext_info": {"payModeId": "WX"}}"#, Ok(pairs(&[("ext_info", r#"{"payModeId": "WX"}"#)])));
        check(r#"{"a": 1, "a": 2}"#, Err("not valid JSON"));
        check("[1]", Err("must be a JSON object"));
        check("", Err("the body is empty"));
        check(r#"{"remark": {"x": 1}}"#, Err("remark: an object"));
        check("{\"k\": \"\\ud800\"}", Err("not valid JSON"));
    }

    #[test]
    fn pairs_become_options_with_field_names_in_errors() {
        let definition = Definition::of::<ChargeArgs>("charge");
        let args: ChargeArgs = definition
            .parse(&pairs(&[
                ("request_id", "r1"),
                ("outer_order_id", "o1"),
                ("account_id", "alice"),
                ("real_value", "-5"),
                ("trigger_gift", "true"),
            ]))
            .unwrap();
        assert_eq!(args.real_value.as_deref(), Some("-5"));
        assert!(args.trigger_gift);
        let error = definition.parse::<ChargeArgs>(&pairs(&[("request_id", "r1")])).unwrap_err();
        assert!(error.message.contains("outer_order_id") && error.message.contains("account_id"), "{error}");
        assert!(!error.message.contains("--"), "{error}");
        let error = definition.parse::<ChargeArgs>(&pairs(&[("real_valeu", "1")])).unwrap_err();
        assert!(error.message.contains("unknown field \"real_valeu\""), "{error}");
        let error = definition.parse::<ChargeArgs>(&pairs(&[("remark", "a"), ("remark", "b")])).unwrap_err();
        assert!(error.message.contains("more than once"), "{error}");
        let flows = Definition::of::<FlowsArgs>("flows");
        let args: FlowsArgs = flows
            .parse(&pairs(&[("account_id", "a"), ("flow_type", "DEDUCT"), ("flow_type", "HOLD"), ("page_size", "10")]))
            .unwrap();
        assert_eq!(args.flow_type, ["DEDUCT", "HOLD"]);
        let error = flows.parse::<FlowsArgs>(&pairs(&[("account_id", "a"), ("page_size", "100000")])).unwrap_err();
        assert!(error.message.contains("page_size"), "{error}");
        assert_eq!(replace_option("--value and --real-value", "--value", "value"), "value and --real-value");
    }

    #[test]
    fn query_strings() {
        assert_eq!(
            query_pairs(Some("account_id=a%20b&flow_type=DEDUCT&flow_type=HOLD&start_time=")),
            pairs(&[("account_id", "a b"), ("flow_type", "DEDUCT"), ("flow_type", "HOLD")])
        );
        assert!(query_pairs(None).is_empty());
    }
}
