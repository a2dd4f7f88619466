//! An application built with purse-cli's crates keeps serde_json as it configured it: purse
//! turns on no serde_json feature that changes how numbers deserialize (see purse-ingest's
//! `tests/host_serde.rs`, which also checks every manifest).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(flatten)]
    readings: BTreeMap<String, f64>,
}

#[test]
fn a_host_flattens_numbers() {
    // With `arbitrary_precision` on: "invalid type: map, expected f64".
    let event: Event = serde_json::from_str(r#"{"ratio": 0.25}"#).expect("a host's flatten over numbers deserializes");
    assert_eq!(event.readings.len(), 1);
    let value: serde_json::Value = serde_json::from_str("0.10").expect("a number");
    assert_eq!(value.to_string(), "0.1", "serde_json reads numbers as its default build does");
}
