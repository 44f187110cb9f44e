//! dag-pb decoding of arbitrary bytes: never panics, and whatever decodes re-encodes to bytes
//! that decode to the same node.
#![no_main]

use distribute::content::dagpb::PbNode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = PbNode::decode(data) {
        let bytes = node.encode();
        assert_eq!(bytes.len(), node.encoded_len());
        assert_eq!(PbNode::decode(&bytes).ok(), Some(node));
    }
});
