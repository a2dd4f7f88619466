//! An application that embeds purse keeps serde_json as it configured it.
//!
//! Cargo unifies features: a feature purse turned on for serde_json would be on in the
//! embedding application too. `arbitrary_precision` in particular makes serde_json hand every
//! number that is no 64-bit integer to serde as a private one-entry map, which breaks the
//! application's own `#[serde(flatten)]` and untagged enums holding such numbers (a known
//! limitation of serde_json). These tests are that application: built with purse-ingest, they
//! see serde_json exactly as purse-ingest's build does.

use std::collections::BTreeMap;
use std::process::Command;

use purse_core::Scale;
use purse_ingest::{Effect, Input, Item, Options, Provider};
use serde::Deserialize;

/// A host's event: a few known fields, the rest kept by `flatten`.
#[derive(Debug, Deserialize)]
struct Event {
    kind: String,
    #[serde(flatten)]
    readings: BTreeMap<String, Reading>,
}

/// A host's untagged enum holding a number.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Reading {
    Ratio(f64),
    Label(String),
}

#[test]
fn a_host_flattens_and_untags_numbers() {
    // With `arbitrary_precision` on: "invalid type: map, expected f64" and "data did not match
    // any variant of untagged enum Reading".
    let event: Event = serde_json::from_str(r#"{"kind": "tick", "ratio": 0.25, "label": "ok"}"#)
        .expect("a host's flatten over numbers deserializes");
    assert_eq!(event.kind, "tick");
    assert_eq!(event.readings.get("label"), Some(&Reading::Label("ok".to_owned())));
    assert!(matches!(event.readings.get("ratio"), Some(Reading::Ratio(_))), "{event:?}");
    let reading: Reading = serde_json::from_str("0.5").expect("an untagged enum over a number deserializes");
    assert!(matches!(reading, Reading::Ratio(_)), "{reading:?}");
    // serde_json's plain numbers: with `arbitrary_precision` a `Value` would keep "0.10".
    let value: serde_json::Value = serde_json::from_str("0.10").expect("a number");
    assert_eq!(value.to_string(), "0.1", "serde_json reads numbers as its default build does");
}

#[test]
fn purse_still_reads_exact_amounts_in_the_same_build() {
    let page = r#"{"requestId":"T1","response":{"requestId":"T1","totalCount":2,"dataSet":[
        {"transactionType":"RECHARGE","amount":20.10,"paymentMethod":"BALANCE","state":"PAY_SUCCESS","transactionTime":"2023-08-15T09:47:01Z","accountUid":"a","transactionId":"1"},
        {"transactionType":"RECHARGE","amount":0.30000000000000004,"paymentMethod":"BALANCE","state":"PAY_SUCCESS","transactionTime":"2023-08-15T09:47:02Z","accountUid":"a","transactionId":"2"}]}}"#;
    let input = Input::new("page", std::io::Cursor::new(page.as_bytes().to_vec()));
    let items = purse_ingest::read_items(Options::new(Provider::Zenlayer), Scale::CNY, vec![input]).unwrap();
    let Some(Item::Record(record)) = items.first() else { panic!("{items:?}") };
    let Effect::Flow { affected, .. } = &record.effect else { panic!("{record:?}") };
    assert_eq!(affected.real.minor(), 2010, "20.10 is 2010 fen exactly");
    // A float would have rounded this to 0.30; its written digits are too precise for fen.
    let Some(Item::Rejected(rejection)) = items.get(1) else { panic!("{items:?}") };
    assert!(rejection.error.to_string().contains("\"0.30000000000000004\" has more than 2 decimals"), "{rejection:?}");
}

/// Every manifest of the workspace, as Cargo reads them: no dependency on serde_json and no
/// feature of a purse crate turns `arbitrary_precision` on. (The test above shows the effect in
/// this build; this one also covers crates it does not build, such as purse-cli and benches.)
#[test]
fn no_purse_crate_turns_on_arbitrary_precision() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path", manifest])
        .output()
        .expect("run cargo metadata");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let mut serde_json_dependents = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or("?");
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            if dependency["name"] == "serde_json" {
                serde_json_dependents.push(name);
                let features = dependency["features"].as_array().expect("features");
                assert!(
                    !features.iter().any(|feature| feature == "arbitrary_precision"),
                    "{name} turns on serde_json's arbitrary_precision: {features:?}"
                );
            }
        }
        for (feature, enables) in package["features"].as_object().expect("features") {
            let enables = enables.as_array().expect("a feature's list");
            assert!(
                !enables
                    .iter()
                    .any(|enabled| enabled.as_str().is_some_and(|text| text.contains("arbitrary_precision"))),
                "{name}'s feature {feature} turns on arbitrary_precision: {enables:?}"
            );
        }
    }
    for expected in ["purse-ingest", "purse-cli"] {
        assert!(
            serde_json_dependents.contains(&expected),
            "{expected} depends on serde_json: {serde_json_dependents:?}"
        );
    }
}
