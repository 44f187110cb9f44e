//! Bitswap message decoding of arbitrary bytes, framed and unframed: never panics, and
//! whatever decodes re-encodes (for 1.2.0, which carries every field) to bytes that decode to
//! the same message.
#![no_main]

use distribute::net::bitswap::message::{Message, ProtocolVersion, decode_framed, frame_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_header(data);
    if let Ok(Some((_, used))) = decode_framed(data) {
        assert!(used <= data.len());
    }
    if let Ok(msg) = Message::decode(data) {
        let bytes = msg.encode(ProtocolVersion::V1_2_0);
        let again = Message::decode(&bytes).ok();
        let expected = Message {
            rejected: Vec::new(),
            rejected_count: 0,
            ..msg
        };
        assert_eq!(again, Some(expected));
    }
});
