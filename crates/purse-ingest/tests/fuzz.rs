//! No input bytes make a reader panic: arbitrary bytes, and valid payloads mutated byte by byte,
//! for every provider, in both ALSC formats, at several scales and unit settings. Each input is
//! read into items; whatever it holds, the answer is items (records or rejections), never a
//! panic and never an `Err` (an in-memory input cannot fail to be read).

use proptest::prelude::*;
use purse_core::Scale;
use purse_ingest::{AlscUnits, Input, Options, Provider};

const VALID: &[(Provider, &str)] = &[
    (Provider::Kybio, include_str!("fixtures/kybio-queryCustomerRechargeLog.json")),
    (
        Provider::Kybio,
        r#"{"status":"success","data":{"postBackParameter":{"parameterType":"LAST_RESULT_MAX_ID","parameterValue":"9"},"result":[{"uid":9,"customerUid":1,"rechargeMoney":"10.5","giftMoney":1,"datetime":"2021-03-01 10:00:00","customerMoneyAfterRecharge":20}],"pageSize":100}}"#,
    ),
    (Provider::Zenlayer, include_str!("fixtures/zenlayer-DescribeRechargeRefundHistory.json")),
    (Provider::Alsc, include_str!("fixtures/alsc-flowdetail.xml")),
    (Provider::Alsc, include_str!("fixtures/alsc-flowdetail.json")),
    (Provider::Alsc, include_str!("fixtures/alsc-flowdetail-simplified.json")),
    (Provider::Alsc, include_str!("fixtures/alsc-charge-update.xml")),
    (Provider::Alsc, include_str!("fixtures/alsc-error.xml")),
    (Provider::Alsc, include_str!("fixtures/alsc-error.json")),
];

fn read(provider: Provider, bytes: Vec<u8>, decimals: u32, major: bool) {
    let mut options = Options::new(provider);
    if major {
        options.alsc_units = AlscUnits::Major;
    }
    let scale = Scale::new(decimals).expect("a valid scale");
    let items = purse_ingest::read_items(options, scale, vec![Input::new("fuzz", std::io::Cursor::new(bytes))]);
    assert!(items.is_ok(), "an in-memory input is always readable: {items:?}");
}

fn provider() -> impl Strategy<Value = Provider> {
    prop::sample::select(Provider::ALL.to_vec())
}

/// One edit of a payload: replace, insert or delete a byte, or cut the rest off.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to JSON and XML are tried more often than the rest.
    let byte = prop_oneof![any::<u8>(), prop::sample::select(b"{}[]<>/\"':,&;-.0123456789eE \n\\".to_vec()),];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (any::<usize>(), byte).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let length = bytes.len().max(1);
    match *edit {
        Edit::Replace(at, byte) => {
            if let Some(slot) = bytes.get_mut(at % length) {
                *slot = byte;
            }
        }
        Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
        Edit::Delete(at) => {
            if !bytes.is_empty() {
                bytes.remove(at % length);
            }
        }
        Edit::Truncate(at) => bytes.truncate(at % length),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(provider in provider(), bytes in prop::collection::vec(any::<u8>(), 0..2048), decimals in 0u32..=6, major: bool) {
        read(provider, bytes, decimals, major);
    }

    #[test]
    fn mutated_payloads(which in 0..VALID.len(), edits in prop::collection::vec(edit(), 1..12), decimals in 0u32..=6, major: bool) {
        let (provider, text) = VALID[which];
        let mut bytes = text.as_bytes().to_vec();
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        read(provider, bytes, decimals, major);
    }

    #[test]
    fn payloads_as_another_provider(which in 0..VALID.len(), provider in provider(), copies in 1usize..4) {
        // Several documents one after another, read as any provider.
        let text = VALID[which].1.repeat(copies);
        read(provider, text.into_bytes(), 2, false);
    }

    #[test]
    fn numbers_of_any_shape(amount in "[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?([eE][-+]?[0-9]{0,5})?", quoted: bool) {
        let amount = if quoted { format!("\"{amount}\"") } else { amount };
        let zenlayer = format!(
            r#"{{"response":{{"dataSet":[{{"transactionType":"RECHARGE","amount":{amount},"state":"PAY_SUCCESS","transactionTime":"2023-08-15T09:47:01Z","accountUid":"a","transactionId":"1"}}]}}}}"#
        );
        read(Provider::Zenlayer, zenlayer.into_bytes(), 2, false);
        let alsc = format!(
            r#"{{"result":{{"biz_success":true,"result":{{"account_id":"a","flow_id":"1","flow_type":"CHARGE","order_time":"2024-01-01 00:00:00","order_value":{amount},"affected_property_list":[{{"type":"REAL","value":{amount}}}]}}}}}}"#
        );
        read(Provider::Alsc, alsc.clone().into_bytes(), 2, false);
        read(Provider::Alsc, alsc.into_bytes(), 0, true);
    }
}
