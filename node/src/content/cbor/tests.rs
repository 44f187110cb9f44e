//! DAG-CBOR tests: RFC 8949 examples, what DAG-CBOR forbids, hostile lengths and depth,
//! canonical round trips, the CAR header as go-car writes it, and mutated inputs on which the
//! decoder and the link walker must agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::content::cid::{CODEC_DAG_PB, CODEC_RAW, block_cid};
use crate::content::links::fuzzing::XorShift;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn check(input: &str, expected: Result<Value, CborError>) {
    assert_eq!(decode(&hex(input)), expected, "{input}");
}

#[test]
fn decodes_rfc8949_examples() {
    check("00", Ok(Value::Integer(0)));
    check("1864", Ok(Value::Integer(100)));
    check("3863", Ok(Value::Integer(-100)));
    check("1bffffffffffffffff", Ok(Value::Integer(u64::MAX.into())));
    check(
        "3bffffffffffffffff",
        Ok(Value::Integer(-1 - i128::from(u64::MAX))),
    );
    check("f93c00", Ok(Value::Float(1.0)));
    check("f9c400", Ok(Value::Float(-4.0)));
    check("f90001", Ok(Value::Float(5.960464477539063e-8)));
    check("fa47c35000", Ok(Value::Float(100000.0)));
    check("fb3ff199999999999a", Ok(Value::Float(1.1)));
    check("f4", Ok(Value::Bool(false)));
    check("f6", Ok(Value::Null));
    check("4401020304", Ok(Value::Bytes(vec![1, 2, 3, 4])));
    check("62c3bc", Ok(Value::Text("ü".into())));
    check(
        "a26161016162820203",
        Ok(Value::Map(vec![
            ("a".into(), Value::Integer(1)),
            (
                "b".into(),
                Value::Array(vec![Value::Integer(2), Value::Integer(3)]),
            ),
        ])),
    );
}

#[test]
fn rejects_what_dag_cbor_forbids() {
    let invalid = |input: &str| match decode(&hex(input)) {
        Err(CborError::Invalid { .. }) => {}
        other => panic!("{input}: expected Invalid, got {other:?}"),
    };
    invalid("5f42010243030405ff"); // indefinite byte string
    invalid("9fff"); // indefinite array
    invalid("f7"); // undefined
    invalid("f820"); // simple(32)
    invalid("a10102"); // integer map key
    invalid("a2616101616102"); // duplicate key
    invalid("62c328"); // bad UTF-8
    invalid("1c"); // reserved additional info
    check(
        "c11a514b67b0",
        Err(CborError::UnsupportedTag { offset: 0, tag: 1 }),
    );
    check("0000", Err(CborError::TrailingBytes(1)));
    check(
        "d82a4101",
        Err(CborError::BadCid {
            offset: 2,
            reason: "missing 0x00 multibase prefix".into(),
        }),
    );
}

#[test]
fn hostile_lengths_and_depth_are_errors_not_allocations() {
    check("", Err(CborError::Truncated(0)));
    check("1a0102", Err(CborError::Truncated(0)));
    check("5bffffffffffffffff00", Err(CborError::Truncated(0)));
    check("9bffffffffffffffff00", Err(CborError::Truncated(0)));
    check("bbffffffffffffffff00", Err(CborError::Truncated(0)));
    assert_eq!(
        links(&hex("9bffffffffffffffff00")),
        Err(CborError::Truncated(0))
    );
    assert_eq!(
        links(&hex("bb8000000000000000")),
        Err(CborError::Truncated(0))
    );
    let deep = vec![0x81u8; 100_000];
    assert_eq!(decode(&deep), Err(CborError::TooDeep(MAX_DEPTH)));
    assert_eq!(links(&deep), Err(CborError::Truncated(99_999)));
    let mut nested = vec![0x81u8; MAX_DEPTH];
    nested.push(0x00);
    assert!(decode(&nested).is_ok(), "exactly MAX_DEPTH levels is fine");
}

fn sample() -> (Value, Vec<Cid>) {
    let a = block_cid(CODEC_RAW, 1, b"a");
    let b = block_cid(CODEC_DAG_PB, 0, b"b");
    let value = Value::Map(vec![
        ("version".into(), Value::Integer(-7)),
        (
            "roots".into(),
            Value::Array(vec![
                Value::Link(a),
                Value::Map(vec![("x".into(), Value::Link(b))]),
            ]),
        ),
        ("f".into(), Value::Float(0.5)),
        ("blob".into(), Value::Bytes(vec![0; 300])),
        ("big".into(), Value::Integer(1 << 40)),
        ("t".into(), Value::Bool(true)),
        ("n".into(), Value::Null),
    ]);
    (value, vec![a, b])
}

#[test]
fn round_trips_with_canonical_key_order_and_finds_links() {
    let (value, cids) = sample();
    let bytes = encode(&value).unwrap();
    let Value::Map(decoded) = decode(&bytes).unwrap() else {
        panic!("not a map")
    };
    let keys: Vec<&str> = decoded.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["f", "n", "t", "big", "blob", "roots", "version"]);
    assert_eq!(decode(&bytes).unwrap().get("roots"), value.get("roots"));
    assert_eq!(
        encode(&Value::Map(decoded)).unwrap(),
        bytes,
        "re-encoding is stable"
    );
    assert_eq!(links(&bytes).unwrap(), cids);
}

#[test]
fn encodes_car_header_like_go_car() {
    let root = crate::content::cid::parse_cid("bafkqaaa").unwrap();
    let header = Value::Map(vec![
        ("version".into(), Value::Integer(1)),
        ("roots".into(), Value::Array(vec![Value::Link(root)])),
    ]);
    // a2 | 65 "roots" 81 d8 2a 45 00 <01 55 00 00> | 67 "version" 01
    let expected = hex("a265726f6f747381d82a4500015500006776657273696f6e01");
    assert_eq!(encode(&header).unwrap(), expected);
    assert_eq!(
        encode(&Value::Integer(1 << 64)),
        Err(CborError::IntegerOutOfRange(1 << 64))
    );
}

fn tree_links(value: &Value, out: &mut Vec<Cid>) {
    match value {
        Value::Link(c) => out.push(*c),
        Value::Array(items) => items.iter().for_each(|v| tree_links(v, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| tree_links(v, out)),
        _ => {}
    }
}

/// Mutated and random inputs never panic, and whenever the strict decoder accepts an input
/// the streaming link walker agrees with it.
#[test]
fn mutated_inputs_never_panic_and_walkers_agree() {
    let (value, _) = sample();
    let seeds = vec![
        encode(&value).unwrap(),
        hex("a26161016162820203"),
        hex("d82a4500015500"),
    ];
    let mut rng = XorShift::new(0x00c0_ffee);
    let mut accepted = 0;
    for _ in 0..5000 {
        let input = rng.mutate(&seeds);
        let decoded = decode(&input);
        let walked = links(&input);
        if let Ok(v) = decoded {
            accepted += 1;
            let mut expected = Vec::new();
            tree_links(&v, &mut expected);
            assert_eq!(walked, Ok(expected), "input {input:02x?}");
        }
    }
    assert!(
        accepted > 50,
        "mutations should sometimes stay valid ({accepted})"
    );
}
