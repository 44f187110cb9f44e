//! DAG-CBOR decoding of arbitrary bytes: never panics; when the tree decoder accepts input,
//! the streaming link walker finds the same links and the canonical re-encoding is stable.
#![no_main]

use distribute::content::cbor::{self, Value};
use libfuzzer_sys::fuzz_target;

fn tree_links(value: &Value, out: &mut Vec<cid::Cid>) {
    match value {
        Value::Link(c) => out.push(*c),
        Value::Array(items) => items.iter().for_each(|v| tree_links(v, out)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| tree_links(v, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let walked = cbor::links(data);
    if let Ok(value) = cbor::decode(data) {
        let mut expected = Vec::new();
        tree_links(&value, &mut expected);
        assert_eq!(walked.ok(), Some(expected));
        let Ok(canonical) = cbor::encode(&value) else {
            panic!("decoded integers always fit")
        };
        let Ok(again) = cbor::decode(&canonical) else {
            panic!("canonical bytes must decode")
        };
        assert_eq!(cbor::encode(&again).ok(), Some(canonical));
    }
});
