//! CAR reading of arbitrary bytes (v1 or v2): never panics, never allocates past its bounds,
//! and every block it yields matches its CID.
#![no_main]

use distribute::car::CarReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = CarReader::new(data) else {
        return;
    };
    let _ = reader.roots();
    for block in reader {
        let Ok((cid, bytes)) = block else { break };
        if matches!(cid.hash().code(), 0x00 | 0x12) {
            assert!(
                distribute::content::cid::verify(&cid, &bytes).is_ok(),
                "unverified block {cid}"
            );
        }
    }
});
