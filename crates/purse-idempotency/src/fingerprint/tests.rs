use std::collections::HashMap;

use super::*;
use purse_core::{Buckets, Source};

fn amount(minor: i64) -> Amount {
    Amount::from_minor(minor)
}

/// A command with every optional field set, so that each can be changed or removed.
fn full(action: Action) -> Command {
    Command {
        card_id: Some("card-1".into()),
        brand_id: Some("brand-1".into()),
        shop_id: Some("shop-1".into()),
        operator_id: Some("op-1".into()),
        biz_date: Some(Timestamp(1_700_000_000)),
        remark: Some("remark".into()),
        ext_info: Some("{\"k\":1}".into()),
        ..Command::new("req-1", "order-1", "alice", action)
    }
}

/// One base command per action variant, every field set to a non-default value.
fn bases() -> Vec<(&'static str, Command)> {
    vec![
        (
            "charge",
            full(Action::Charge {
                real: amount(10_000),
                gift: Some(amount(500)),
                pre: amount(200),
                trigger_gift: false,
            }),
        ),
        ("deduct", full(Action::Deduct { value: amount(300) })),
        ("undeduct", full(Action::Undeduct { original_outer_order_id: "order-0".into(), value: Some(amount(100)) })),
        ("uncharge", full(Action::Uncharge { src_outer_order_id: "order-0".into() })),
        ("import", full(Action::Import { real: amount(1), gift: amount(2), pre: amount(3) })),
        ("open", full(Action::Open { real: amount(1), gift: amount(2), pre: amount(3) })),
        ("adjust", full(Action::Adjust { real: amount(1), gift: amount(2), pre: amount(3) })),
        (
            "recorded",
            full(Action::Recorded {
                flow_type: FlowType::Deduct,
                affected: Buckets::from_minor(-1, -2, -3),
                source: Source { provider: "zenlayer".into(), record_id: "tx-1".into() },
            }),
        ),
        ("hold", full(Action::Hold { value: amount(300), expire_time: Some(Timestamp(1_700_000_600)) })),
        ("capture", full(Action::Capture { src_outer_order_id: "order-0".into(), value: Some(amount(100)) })),
        ("release", full(Action::Release { src_outer_order_id: "order-0".into() })),
        ("freeze", full(Action::Freeze)),
        ("unfreeze", full(Action::Unfreeze)),
        ("close", full(Action::Close)),
        ("transfer", full(Action::Transfer { to_account_id: "bob".into(), value: Some(amount(100)) })),
    ]
}

type Mutation = (&'static str, fn(&mut Command));

/// Single-field changes of the command's own fields; each applies to every base.
const COMMAND_MUTATIONS: &[Mutation] = &[
    ("outer_order_id", |c| c.outer_order_id = "order-2".into()),
    ("account_id", |c| c.account_id = "bob".into()),
    ("card_id none", |c| c.card_id = None),
    ("card_id other", |c| c.card_id = Some("card-2".into())),
    ("card_id empty", |c| c.card_id = Some(String::new())),
    ("brand_id none", |c| c.brand_id = None),
    ("brand_id other", |c| c.brand_id = Some("brand-2".into())),
    ("shop_id none", |c| c.shop_id = None),
    ("shop_id other", |c| c.shop_id = Some("shop-2".into())),
    ("operator_id none", |c| c.operator_id = None),
    ("operator_id other", |c| c.operator_id = Some("op-2".into())),
    ("biz_date none", |c| c.biz_date = None),
    ("biz_date +1s", |c| c.biz_date = Some(Timestamp(1_700_000_001))),
    ("biz_date zero", |c| c.biz_date = Some(Timestamp(0))),
    ("remark none", |c| c.remark = None),
    ("remark other", |c| c.remark = Some("Remark".into())),
    ("remark empty", |c| c.remark = Some(String::new())),
    ("ext_info none", |c| c.ext_info = None),
    ("ext_info spacing", |c| c.ext_info = Some("{\"k\": 1}".into())),
    ("ext_info empty", |c| c.ext_info = Some(String::new())),
];

/// Single-field changes of each action variant's fields; each applies to the base of its variant.
const ACTION_MUTATIONS: &[Mutation] = &[
    ("charge real", |c| {
        set(c, |a| {
            if let Action::Charge { real, .. } = a {
                *real = amount(10_001)
            }
        })
    }),
    ("charge gift none", |c| {
        set(c, |a| {
            if let Action::Charge { gift, .. } = a {
                *gift = None
            }
        })
    }),
    ("charge gift zero", |c| {
        set(c, |a| {
            if let Action::Charge { gift, .. } = a {
                *gift = Some(Amount::ZERO)
            }
        })
    }),
    ("charge gift other", |c| {
        set(c, |a| {
            if let Action::Charge { gift, .. } = a {
                *gift = Some(amount(501))
            }
        })
    }),
    ("charge pre", |c| {
        set(c, |a| {
            if let Action::Charge { pre, .. } = a {
                *pre = amount(201)
            }
        })
    }),
    ("charge trigger_gift", |c| {
        set(c, |a| {
            if let Action::Charge { trigger_gift, .. } = a {
                *trigger_gift = true
            }
        })
    }),
    ("deduct value", |c| {
        set(c, |a| {
            if let Action::Deduct { value } = a {
                *value = amount(301)
            }
        })
    }),
    ("deduct value negated", |c| {
        set(c, |a| {
            if let Action::Deduct { value } = a {
                *value = amount(-300)
            }
        })
    }),
    ("undeduct original", |c| {
        set(c, |a| {
            if let Action::Undeduct { original_outer_order_id, .. } = a {
                *original_outer_order_id = "o".into()
            }
        })
    }),
    ("undeduct value none", |c| {
        set(c, |a| {
            if let Action::Undeduct { value, .. } = a {
                *value = None
            }
        })
    }),
    ("undeduct value zero", |c| {
        set(c, |a| {
            if let Action::Undeduct { value, .. } = a {
                *value = Some(Amount::ZERO)
            }
        })
    }),
    ("undeduct value other", |c| {
        set(c, |a| {
            if let Action::Undeduct { value, .. } = a {
                *value = Some(amount(99))
            }
        })
    }),
    ("uncharge src", |c| {
        set(c, |a| {
            if let Action::Uncharge { src_outer_order_id } = a {
                *src_outer_order_id = "o".into()
            }
        })
    }),
    ("import real", |c| {
        set(c, |a| {
            if let Action::Import { real, .. } = a {
                *real = amount(4)
            }
        })
    }),
    ("import gift", |c| {
        set(c, |a| {
            if let Action::Import { gift, .. } = a {
                *gift = amount(4)
            }
        })
    }),
    ("import pre", |c| {
        set(c, |a| {
            if let Action::Import { pre, .. } = a {
                *pre = amount(4)
            }
        })
    }),
    ("import real<->gift", |c| {
        set(c, |a| {
            if let Action::Import { real, gift, .. } = a {
                std::mem::swap(real, gift)
            }
        })
    }),
    ("open real", |c| {
        set(c, |a| {
            if let Action::Open { real, .. } = a {
                *real = amount(4)
            }
        })
    }),
    ("open pre", |c| {
        set(c, |a| {
            if let Action::Open { pre, .. } = a {
                *pre = amount(4)
            }
        })
    }),
    ("adjust real", |c| {
        set(c, |a| {
            if let Action::Adjust { real, .. } = a {
                *real = amount(-1)
            }
        })
    }),
    ("adjust gift", |c| {
        set(c, |a| {
            if let Action::Adjust { gift, .. } = a {
                *gift = amount(4)
            }
        })
    }),
    ("adjust pre", |c| {
        set(c, |a| {
            if let Action::Adjust { pre, .. } = a {
                *pre = amount(4)
            }
        })
    }),
    ("adjust gift<->pre", |c| {
        set(c, |a| {
            if let Action::Adjust { gift, pre, .. } = a {
                std::mem::swap(gift, pre)
            }
        })
    }),
    ("recorded flow_type", |c| {
        set(c, |a| {
            if let Action::Recorded { flow_type, .. } = a {
                *flow_type = FlowType::Uncharge
            }
        })
    }),
    ("recorded affected", |c| {
        set(c, |a| {
            if let Action::Recorded { affected, .. } = a {
                affected.pre = amount(-4)
            }
        })
    }),
    ("recorded provider", |c| {
        set(c, |a| {
            if let Action::Recorded { source, .. } = a {
                source.provider = "kybio".into()
            }
        })
    }),
    ("recorded record_id", |c| {
        set(c, |a| {
            if let Action::Recorded { source, .. } = a {
                source.record_id = "tx-2".into()
            }
        })
    }),
    ("recorded provider<->record_id boundary", |c| {
        set(c, |a| {
            if let Action::Recorded { source, .. } = a {
                source.provider = "zenlayert".into();
                source.record_id = "x-1".into();
            }
        })
    }),
    ("hold value", |c| {
        set(c, |a| {
            if let Action::Hold { value, .. } = a {
                *value = amount(301)
            }
        })
    }),
    ("hold expire_time none", |c| {
        set(c, |a| {
            if let Action::Hold { expire_time, .. } = a {
                *expire_time = None
            }
        })
    }),
    ("hold expire_time other", |c| {
        set(c, |a| {
            if let Action::Hold { expire_time, .. } = a {
                *expire_time = Some(Timestamp(1_700_000_601))
            }
        })
    }),
    ("capture src", |c| {
        set(c, |a| {
            if let Action::Capture { src_outer_order_id, .. } = a {
                *src_outer_order_id = "order-9".into()
            }
        })
    }),
    ("release src", |c| {
        set(c, |a| {
            if let Action::Release { src_outer_order_id } = a {
                *src_outer_order_id = "order-9".into()
            }
        })
    }),
    ("transfer value none", |c| {
        set(c, |a| {
            if let Action::Transfer { value, .. } = a {
                *value = None
            }
        })
    }),
    ("transfer value other", |c| {
        set(c, |a| {
            if let Action::Transfer { value, .. } = a {
                *value = Some(amount(99))
            }
        })
    }),
    ("capture value none", |c| {
        set(c, |a| {
            if let Action::Capture { value, .. } = a {
                *value = None
            }
        })
    }),
    ("capture value other", |c| {
        set(c, |a| {
            if let Action::Capture { value, .. } = a {
                *value = Some(amount(99))
            }
        })
    }),
    ("transfer to_account_id", |c| {
        set(c, |a| {
            if let Action::Transfer { to_account_id, .. } = a {
                *to_account_id = "carol".into()
            }
        })
    }),
];

fn set(command: &mut Command, change: impl FnOnce(&mut Action)) {
    change(&mut command.action);
}

/// Asserts that `a` and `b` have equal fingerprints exactly when `same`.
fn check(case: &str, a: &Command, b: &Command, same: bool) {
    let (fa, fb) = (fingerprint(a), fingerprint(b));
    if same {
        assert_eq!(fa, fb, "{case}: expected the same fingerprint for\n{a:?}\n{b:?}");
    } else {
        assert_ne!(fa, fb, "{case}: expected different fingerprints for\n{a:?}\n{b:?}");
    }
}

/// Every base and every single-field change of it, named.
fn all_cases() -> Vec<(String, Command)> {
    let mut cases = Vec::new();
    for (base_name, base) in bases() {
        let mutations = COMMAND_MUTATIONS.iter().chain(ACTION_MUTATIONS);
        for (mutation_name, mutate) in mutations {
            let mut changed = base.clone();
            mutate(&mut changed);
            if changed != base {
                cases.push((format!("{base_name} / {mutation_name}"), changed));
            }
        }
        cases.push((base_name.to_owned(), base));
    }
    cases
}

#[test]
fn equal_commands_have_equal_fingerprints() {
    for (name, base) in bases() {
        check(name, &base, &base.clone(), true);
        assert_eq!(fingerprint(&base), fingerprint(&base), "{name}: deterministic");
    }
}

#[test]
fn request_id_is_not_part_of_the_fingerprint() {
    let long = "r".repeat(purse_core::REQUEST_ID_CHARS_MAX);
    for (name, base) in bases() {
        for request_id in ["req-2", "", "REQ-1", long.as_str()] {
            let other = Command { request_id: request_id.into(), ..base.clone() };
            check(&format!("{name} / request_id {request_id:?}"), &base, &other, true);
        }
    }
}

#[test]
fn every_single_field_change_changes_the_fingerprint() {
    let mut applied = HashMap::<&str, usize>::new();
    for (base_name, base) in bases() {
        for (mutation_name, mutate) in COMMAND_MUTATIONS.iter().chain(ACTION_MUTATIONS) {
            let mut changed = base.clone();
            mutate(&mut changed);
            if changed != base {
                *applied.entry(mutation_name).or_default() += 1;
                check(&format!("{base_name} / {mutation_name}"), &base, &changed, false);
            }
        }
    }
    // Every mutation changed something: command ones on all bases, action ones on their own.
    for (name, _) in COMMAND_MUTATIONS {
        assert_eq!(applied.get(name), Some(&bases().len()), "{name}");
    }
    for (name, _) in ACTION_MUTATIONS {
        assert_eq!(applied.get(name), Some(&1), "{name}");
    }
}

#[test]
fn all_cases_are_pairwise_distinct() {
    let mut seen = HashMap::<Fingerprint, String>::new();
    for (name, command) in all_cases() {
        if let Some(previous) = seen.insert(fingerprint(&command), name.clone()) {
            panic!("{name} and {previous} share a fingerprint");
        }
    }
}

#[test]
fn neighbouring_fields_cannot_trade_bytes() {
    let deduct = Action::Deduct { value: amount(1) };
    let plain = |outer: &str, account: &str| Command::new("r", outer, account, deduct.clone());
    check("(ab, c) vs (a, bc)", &plain("ab", "c"), &plain("a", "bc"), false);
    check("(abc, '') vs (ab, c)", &plain("abc", ""), &plain("ab", "c"), false);

    let card_only = Command { card_id: Some("x".into()), ..plain("o", "a") };
    let brand_only = Command { brand_id: Some("x".into()), ..plain("o", "a") };
    check("card Some(x) vs brand Some(x)", &card_only, &brand_only, false);
    let remark_empty = Command { remark: Some(String::new()), ..plain("o", "a") };
    check("remark Some(\"\") vs None", &remark_empty, &plain("o", "a"), false);

    let charge = |gift| {
        Command::new("r", "o", "a", Action::Charge { real: amount(1), gift, pre: amount(0), trigger_gift: false })
    };
    check("gift None vs Some(0)", &charge(None), &charge(Some(Amount::ZERO)), false);

    let buckets = (amount(1), amount(2), amount(3));
    let import = Command::new("r", "o", "a", Action::Import { real: buckets.0, gift: buckets.1, pre: buckets.2 });
    let adjust = Command::new("r", "o", "a", Action::Adjust { real: buckets.0, gift: buckets.1, pre: buckets.2 });
    check("import vs adjust, same amounts", &import, &adjust, false);
    let open = Command::new("r", "o", "a", Action::Open { real: buckets.0, gift: buckets.1, pre: buckets.2 });
    check("import vs open, same amounts", &import, &open, false);

    let undeduct = Command::new("r", "o", "a", Action::Undeduct { original_outer_order_id: "x".into(), value: None });
    let uncharge = Command::new("r", "o", "a", Action::Uncharge { src_outer_order_id: "x".into() });
    check("undeduct vs uncharge, same order", &undeduct, &uncharge, false);
}

/// The golden commands: their fingerprints are pinned and must never change.
fn golden() -> [Command; 3] {
    [
        Command::new("req-1", "order-1", "alice", Action::Deduct { value: amount(1_000) }),
        Command {
            card_id: Some("card-1".into()),
            brand_id: Some("brand-1".into()),
            shop_id: Some("shop-1".into()),
            operator_id: Some("op-1".into()),
            biz_date: Some(Timestamp(1_700_000_000)),
            remark: Some("first charge".into()),
            ext_info: Some("{\"channel\":\"pos\"}".into()),
            ..Command::new(
                "req-2",
                "order-2",
                "alice",
                Action::Charge { real: amount(10_000), gift: None, pre: amount(0), trigger_gift: true },
            )
        },
        Command {
            biz_date: Some(Timestamp(-1)),
            remark: Some("退款".into()),
            ..Command::new(
                "req-3",
                "退款-1",
                "账户-1",
                Action::Undeduct { original_outer_order_id: "order-1".into(), value: None },
            )
        },
    ]
}

#[test]
fn encoding_is_pinned() {
    #[rustfmt::skip]
    let expected: &[u8] = &[
        1,                                  // format version
        1, 0, 0, 0, 7, b'o', b'r', b'd', b'e', b'r', b'-', b'1', // outer_order_id
        2, 0, 0, 0, 5, b'a', b'l', b'i', b'c', b'e',            // account_id
        3, 0, 4, 0, 5, 0, 6, 0,             // card_id, brand_id, shop_id, operator_id: None
        7, 0,                               // biz_date: None
        8, 0, 9, 0,                         // remark, ext_info: None
        10, 1,                              // action: Deduct
        15, 0, 0, 0, 0, 0, 0, 0x03, 0xe8,   // value: 1000
    ];
    assert_eq!(encode(&golden()[0]), expected);
}

#[test]
fn fingerprints_are_pinned() {
    // Frozen (module documentation). If this fails, the encoding changed: every stored
    // fingerprint would stop matching its retries. Revert the change instead of these values.
    let expected = [
        "62a64e0ee14eff992d9d72d7f32ff683389744bcead904d5fbae4deef8bccb0f",
        "b3ce4ffc4e3f547918b2e1c93ac3308889a6e52e2c684fa809904cdd5d2f8cd5",
        "5b3997a078c705f3a77b29c2b172d494326ccd4798c221924ad0136f03faa6e7",
    ];
    for (command, expected) in golden().iter().zip(expected) {
        assert_eq!(fingerprint(command).to_string(), expected, "{command:?}");
    }
}

/// The commands of spec §8–§10, pinned the same way from the day they were added.
fn golden_holds() -> [Command; 4] {
    [
        Command::new("req-4", "hold-1", "alice", Action::Hold { value: amount(10_000), expire_time: None }),
        Command::new("req-5", "cap-1", "alice", Action::Capture { src_outer_order_id: "hold-1".into(), value: None }),
        Command { remark: Some("lost".into()), ..Command::new("req-6", "frz-1", "alice", Action::Freeze) },
        Command::new("req-7", "mv-1", "alice", Action::Transfer { to_account_id: "bob".into(), value: None }),
    ]
}

#[test]
fn fingerprints_of_the_hold_commands_are_pinned() {
    let expected = [
        "cc4eb9feaa887b7986965cb9de53787b287bdf7d71bb185f625a681ccc0a1cfc",
        "48bc086816437814aded9d2d5e362db70f041fa7598a354e21061451cd190d8c",
        "934588a06f12353064e01482924f54469fccd7b5f6642a3840f8b8a0452d0255",
        "8177c8b2db840aacfe7e89400b84981a71f7a2c0525ca224035b2f39c2576722",
    ];
    for (command, expected) in golden_holds().iter().zip(expected) {
        assert_eq!(fingerprint(command).to_string(), expected, "{command:?}");
    }
}

/// The opening balance (`Action::Open`), pinned from the day it was added; the IMPORT beside
/// it is the command ingestion wrote before, whose fingerprint must not have moved.
fn golden_open() -> [Command; 2] {
    let opening = |action| Command {
        biz_date: Some(Timestamp(1_692_092_821)),
        remark: Some("opening balance stated by alsc record 48362591".into()),
        card_id: Some("243".into()),
        ..Command::new("alsc:open:1232423", "alsc:open:1232423", "1232423", action)
    };
    [
        opening(Action::Open { real: amount(20_000), gift: amount(0), pre: amount(0) }),
        opening(Action::Import { real: amount(20_000), gift: amount(0), pre: amount(0) }),
    ]
}

#[test]
fn fingerprint_of_the_opening_balance_is_pinned() {
    let expected = [
        "290908279256c1ff268ae5f800d228e7af872fb17bff1e2f417ade35a667e56f",
        "df962a96d2ac8e507c69922365afab78acaf10afa57ddc4f78b1cc824cfe6c9b",
    ];
    for (command, expected) in golden_open().iter().zip(expected) {
        assert_eq!(fingerprint(command).to_string(), expected, "{command:?}");
    }
    // Byte for byte an IMPORT's but for the variant tag.
    let (open, import) = (encode(&golden_open()[0]), encode(&golden_open()[1]));
    let differ: Vec<usize> = (0..open.len()).filter(|at| open[*at] != import[*at]).collect();
    assert_eq!((open.len(), differ.len()), (import.len(), 1));
    assert_eq!((open[differ[0]], import[differ[0]]), (14, 4));
}

#[test]
fn long_lengths_take_the_escape() {
    let encoded = |length: usize| {
        let mut out = Encoder(Vec::new());
        out.length(length);
        out.0
    };
    let max = usize::try_from(u32::MAX).unwrap();
    assert_eq!(encoded(0), [0, 0, 0, 0]);
    assert_eq!(encoded(max - 1), [0xff, 0xff, 0xff, 0xfe]);
    assert_eq!(encoded(max), [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(encoded(max + 1), [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0]);
}

#[test]
fn display_is_lowercase_hex() {
    let mut bytes = [0u8; FINGERPRINT_BYTES];
    bytes[0] = 0xab;
    bytes[31] = 0x0f;
    let fingerprint = Fingerprint(bytes);
    let hex = fingerprint.to_string();
    assert_eq!(hex.len(), 2 * FINGERPRINT_BYTES);
    assert!(hex.starts_with("ab00"), "{hex}");
    assert!(hex.ends_with("000f"), "{hex}");
    assert_eq!(format!("{fingerprint:?}"), format!("Fingerprint({hex})"));
    assert_eq!(fingerprint.as_bytes(), &bytes);
}
