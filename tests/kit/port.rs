//! Ports for daemons that must be told theirs in advance. Shared with the operator's tests
//! (`operator/tests/support`), which include this file by path.

/// A port free on 127.0.0.1 now, taken below the kernel's ephemeral range (32768 and up by
/// default): a daemon binding `:0` meanwhile cannot be handed it, and a counter keeps this
/// process from handing it out twice, so it is still free when the daemon binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + (start + n) % SPAN).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000 on 127.0.0.1");
}
