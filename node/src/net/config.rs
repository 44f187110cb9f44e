//! Network settings from the command line: listen addresses (`:4001` shorthand or full
//! multiaddrs), bootstrap peers and the private network key file. Pure parsing, no sockets.

use std::path::Path;

use libp2p::Multiaddr;
use libp2p::pnet::PreSharedKey;

use super::NetError;

/// The addresses `--listen` means: `:PORT` is TCP and QUIC on every IPv4 interface (TCP only
/// on a private network); anything else must be a multiaddr.
pub fn listen_addrs(spec: &str, private: bool) -> Result<Vec<Multiaddr>, NetError> {
    let bad = |reason: String| NetError::BadAddress {
        addr: spec.to_owned(),
        reason,
    };
    if let Some(port) = spec.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| bad("expected :PORT with a port number".into()))?;
        let mut out = vec![tcp_addr(port)?];
        if !private {
            out.push(
                format!("/ip4/0.0.0.0/udp/{port}/quic-v1")
                    .parse()
                    .map_err(|e| bad(format!("{e}")))?,
            );
        }
        return Ok(out);
    }
    spec.split(',')
        .map(|s| s.trim().parse().map_err(|e| bad(format!("{e}"))))
        .collect()
}

fn tcp_addr(port: u16) -> Result<Multiaddr, NetError> {
    format!("/ip4/0.0.0.0/tcp/{port}")
        .parse()
        .map_err(|e| NetError::BadAddress {
            addr: format!(":{port}"),
            reason: format!("{e}"),
        })
}

/// A Kubo-format `swarm.key` (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
pub fn read_network_key(path: &Path) -> Result<PreSharedKey, NetError> {
    let text = std::fs::read_to_string(path).map_err(|e| NetError::NetworkKey {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    text.trim().parse().map_err(|e| NetError::NetworkKey {
        path: path.to_owned(),
        reason: format!("{e}"),
    })
}

/// Raise this process's soft limit on open files to its hard limit (as Kubo does): every
/// connection holds a socket, and the default soft limit (often 1024) would cap the
/// connections long before `--max-connections`. Returns the limit now in force, if known.
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(cur), Some(max)) if cur < max => {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => Some(max),
                Err(_) => Some(cur),
            }
        }
        (cur, _) => cur,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn port_shorthand_means_tcp_and_quic() {
        let addrs = listen_addrs(":4001", false).unwrap();
        let text: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            text,
            ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
        );
        assert_eq!(listen_addrs(":0", true).unwrap().len(), 1);
    }

    #[test]
    fn full_multiaddrs_and_errors() {
        let addrs = listen_addrs("/ip4/127.0.0.1/tcp/0", false).unwrap();
        assert_eq!(addrs[0].to_string(), "/ip4/127.0.0.1/tcp/0");
        assert!(listen_addrs(":x", false).is_err());
        assert!(listen_addrs("nonsense", false).is_err());
    }

    #[test]
    fn kubo_swarm_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("swarm.key");
        let hex = "a".repeat(64);
        std::fs::write(&path, format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n")).unwrap();
        read_network_key(&path).unwrap();
        std::fs::write(&path, "junk").unwrap();
        assert!(read_network_key(&path).is_err());
    }
}
