//! The one check helper of the reader tests: items rendered as one line each.

use purse_core::{Buckets, Property, Scale, Zone};

use crate::options::{Options, Provider};
use crate::record::{Effect, Item, Stated};
use crate::Input;

/// Reads `text` as `options.provider` at scale 2.
pub(crate) fn items(options: &Options, text: &str) -> Vec<Item> {
    let input = Input::new("input", std::io::Cursor::new(text.as_bytes().to_vec()));
    crate::read_items(options.clone(), Scale::CNY, vec![input]).expect("an in-memory input is always readable")
}

/// One line per item. Records: `id account time effect [before …] [after …] [opening …]
/// [card= … remark= order=] [ext …]`;
/// rejections: `rejected CODE: message`.
pub(crate) fn describe(item: &Item) -> String {
    let scale = Scale::CNY;
    match item {
        Item::Rejected(rejection) => {
            let id = rejection.record_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default();
            format!("rejected {}{id}: {}", rejection.error.code(), rejection.error)
        }
        Item::Record(record) => {
            let buckets = |buckets: &Buckets| {
                format!("{}/{}/{}", buckets.real.format(scale), buckets.gift.format(scale), buckets.pre.format(scale))
            };
            let stated = |name: &str, stated: &Stated| {
                if stated.is_empty() {
                    return String::new();
                }
                let parts: Vec<String> = Property::ALL
                    .iter()
                    .filter_map(|property| {
                        stated.get(*property).map(|amount| format!("{}={}", property.as_str(), amount.format(scale)))
                    })
                    .collect();
                format!(" {name}[{}]", parts.join(","))
            };
            let effect = match &record.effect {
                Effect::Flow { flow_type, affected } => format!("{flow_type}({})", buckets(affected)),
                Effect::Skip { reason } => format!("SKIP({reason})"),
                Effect::Hold { value } => format!("HOLD({})", value.format(scale)),
                Effect::Release { value, hold } => {
                    format!("RELEASE({} of {})", value.format(scale), hold.as_deref().unwrap_or("?"))
                }
                Effect::Unsplit { order_value } => {
                    format!("UNSPLIT({})", order_value.map_or_else(|| "-".to_owned(), |value| value.format(scale)))
                }
            };
            let mut line = format!(
                "{} {} {} {effect}{}{}",
                record.record_id,
                record.account_id,
                Zone::CHINA.format_local(record.time),
                stated("before", &record.before),
                stated("after", &record.after)
            );
            if let Some(opening) = &record.opening {
                line += &format!(" opening[{}]", buckets(opening));
            }
            if let Some(references) = &record.references {
                let parts = [
                    ("card", &references.card_id),
                    ("brand", &references.brand_id),
                    ("shop", &references.shop_id),
                    ("operator", &references.operator_id),
                    ("remark", &references.remark),
                    ("order", &references.order_id),
                ];
                for (name, value) in parts {
                    if let Some(value) = value {
                        line += &format!(" {name}={value}");
                    }
                }
            }
            if let Some(ext_info) = &record.ext_info {
                line += &format!(" ext={ext_info}");
            }
            line
        }
    }
}

/// Reads `text` and compares each item with `expect`: records exactly, rejections by
/// `"rejected CODE"` plus any text after it as a substring of the message.
pub(crate) fn check(options: &Options, text: &str, expect: &[&str]) {
    let got: Vec<String> = items(options, text).iter().map(describe).collect();
    let matches = got.len() == expect.len()
        && got.iter().zip(expect).all(|(got, expect)| match expect.strip_prefix("rejected ") {
            Some(rest) => {
                let (code, needle) = rest.split_once(": ").unwrap_or((rest, ""));
                got.starts_with(&format!("rejected {code}")) && got.contains(needle)
            }
            None => got == expect,
        });
    assert!(
        matches,
        "{:?} input:\n{text}\ngot:\n{}\nexpected:\n{}",
        options.provider,
        got.join("\n"),
        expect.join("\n")
    );
}

pub(crate) fn options(provider: Provider) -> Options {
    Options::new(provider)
}
