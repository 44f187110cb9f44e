//! UnixFS `Data` decoding of arbitrary bytes: never panics, and whatever decodes re-encodes.
#![no_main]

use distribute::content::unixfs::UnixfsData;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = UnixfsData::decode(data) {
        let _ = decoded.encode();
    }
});
