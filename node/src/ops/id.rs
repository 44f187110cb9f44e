//! `id` and `version`: who this node is and what software it runs, in Kubo's shapes
//! (`{"ID","PublicKey","Addresses","AgentVersion","ProtocolVersion"}` and
//! `{"Version","Commit","Repo","System","Golang"}`).

use libp2p::identity::PublicKey;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use crate::net::behaviour::agent_version;

/// Protocol version string peers and clients see.
pub const PROTOCOL_VERSION: &str = "ipfs/0.1.0";

/// Format version of the on-disk repository reported by `version`.
pub const REPO_VERSION: &str = "1";

/// The answer of `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IdInfo {
    #[serde(rename = "ID")]
    pub id: String,
    /// The protobuf-encoded public key in standard base64, as Kubo prints it.
    pub public_key: String,
    /// Listen addresses ending in `/p2p/<peer id>` (none offline).
    pub addresses: Vec<String>,
    pub agent_version: String,
    pub protocol_version: String,
}

impl IdInfo {
    pub fn new(key: &PublicKey, addrs: &[Multiaddr]) -> Self {
        let peer = PeerId::from_public_key(key);
        let encoded = multibase::encode(multibase::Base::Base64Pad, key.encode_protobuf());
        Self {
            id: peer.to_string(),
            // Drop the multibase prefix ('M') to get plain base64.
            public_key: encoded.get(1..).unwrap_or_default().to_owned(),
            addresses: addrs.iter().map(|a| format!("{a}/p2p/{peer}")).collect(),
            agent_version: agent_version(),
            protocol_version: PROTOCOL_VERSION.to_owned(),
        }
    }
}

/// The answer of `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    pub version: String,
    pub commit: String,
    pub repo: String,
    pub system: String,
    /// Kubo names its compiler here; we say we are not Go.
    pub golang: String,
}

impl VersionInfo {
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            commit: String::new(),
            repo: REPO_VERSION.to_owned(),
            system: format!("{}/{}", std::env::consts::ARCH, std::env::consts::OS),
            golang: "none (Rust)".to_owned(),
        }
    }
}
