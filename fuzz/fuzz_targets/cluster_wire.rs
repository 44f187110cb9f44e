//! Cluster frames whose body is arbitrary bytes under a valid tag, i.e. what a member holding
//! the secret could send: decoding never panics, whatever decodes re-encodes to the same
//! message, and the node's handling of it (merging a pinset delta or full state, recording a
//! heartbeat, then planning and reporting every pin) never panics either.
#![no_main]

use std::time::{Duration, Instant};

use distribute::cluster::core::{Core, SelfInfo};
use distribute::cluster::membership::{HeldSet, Timing};
use distribute::cluster::pinset::Pinset;
use distribute::cluster::wire::{self, Message, Secret};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SENDER: &str = "12D3KooWFuzzSender";

/// The frame payload (body then tag) a member holding `secret` sends: the tag is HMAC-SHA256
/// over the sender, a zero byte and the body, as documented in `cluster::wire`.
fn signed(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(SENDER.as_bytes());
    mac.update(&[0]);
    mac.update(body);
    let mut payload = body.to_vec();
    payload.extend_from_slice(&mac.finalize().into_bytes());
    payload
}

fuzz_target!(|data: &[u8]| {
    let Some(secret) = Secret::from_file_text(b"fuzz") else {
        return;
    };
    let _ = wire::decode(&secret, SENDER, data);
    let Ok(msg) = wire::decode(&secret, SENDER, &signed(b"fuzz", data)) else {
        return;
    };
    let Ok(frame) = wire::encode(&secret, SENDER, &msg) else {
        panic!("a decoded message re-encodes")
    };
    assert_eq!(
        wire::decode(&secret, SENDER, &frame[4..]).ok().as_ref(),
        Some(&msg)
    );

    let me = SelfInfo {
        peer: "12D3KooWFuzzMe".into(),
        free_space: 1 << 40,
        ..SelfInfo::default()
    };
    let timing = Timing {
        heartbeat_timeout: Duration::from_secs(30),
        rereplicate_after: Duration::from_secs(300),
    };
    let now = Instant::now();
    let mut core = Core::new(me, Pinset::default(), timing, Duration::from_secs(60));
    match msg {
        Message::Heartbeat(hb) => {
            core.observe(hb, now);
        }
        Message::Update(set) => {
            core.merge(&set);
            // The same set again changes nothing.
            assert!(core.merge(&set) == Pinset::default());
        }
        Message::State(set) => {
            let _ = core.merge_state(&set);
        }
        Message::Held(cids) => {
            core.members_mut()
                .set_held(SENDER, HeldSet::from_cids(cids));
        }
        Message::Pull | Message::PullHeld => {}
    }
    let _ = core.plan(now);
    let _ = core.heartbeat();
    let cids: Vec<String> = core
        .pinset()
        .live()
        .map(|(cid, _)| cid.to_owned())
        .collect();
    for cid in cids {
        let _ = core.status(&cid, now);
    }
});
