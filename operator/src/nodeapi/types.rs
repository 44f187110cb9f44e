//! Wire shapes of the node API answers the operator reads (Kubo-style PascalCase JSON).
//! Unknown fields are ignored and missing optional ones default, so a newer node still parses.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct NodeId {
    #[serde(rename = "ID")]
    pub id: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PinList {
    #[serde(rename = "Pins", default)]
    pub pins: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PinStatus {
    pub cid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub replication_min: Option<i64>,
    #[serde(default)]
    pub replication_max: Option<i64>,
    #[serde(default)]
    pub size: Option<u64>,
    /// `queued`, `pinning`, `pinned`, `degraded` or `failed`.
    pub status: String,
    /// Holders that have the whole DAG pinned.
    #[serde(default)]
    pub pinned: i64,
    #[serde(default)]
    pub peers: Vec<PeerPin>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PeerPin {
    pub peer_id: String,
    /// `queued`, `pinning`, `pinned`, `failed` or `unpinning`.
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PinStatusList {
    #[serde(rename = "Pins", default)]
    pub pins: Vec<PinStatus>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ClusterPeers {
    #[serde(rename = "Self")]
    pub self_id: String,
    #[serde(rename = "Peers", default)]
    pub peers: Vec<ClusterPeer>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterPeer {
    pub peer_id: String,
    #[serde(default)]
    pub addrs: Vec<String>,
    /// `alive`, `leaving` or `down`.
    pub state: String,
    #[serde(default)]
    pub zone: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct DrainProgress {
    pub peer: String,
    pub done: bool,
    #[serde(default)]
    pub remaining: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract_shapes() {
        let s: PinStatus = serde_json::from_str(
            r#"{"Cid":"Qm1","Name":"n","ReplicationMin":2,"ReplicationMax":3,"Size":null,
                "Status":"pinning","Pinned":1,"Peers":[{"PeerId":"p1","State":"pinned","Error":null},
                {"PeerId":"p2","State":"failed","Error":"disk full"}],"Error":null,"Extra":1}"#,
        )
        .unwrap();
        assert_eq!((s.pinned, s.peers.len(), s.size), (1, 2, None));
        assert_eq!(s.peers[1].error.as_deref(), Some("disk full"));
        let p: ClusterPeers = serde_json::from_str(
            r#"{"Self":"me","Peers":[{"PeerId":"a","Addrs":[],"State":"alive","Zone":null,
                "FreeSpace":1,"LastSeenSecs":0}]}"#,
        )
        .unwrap();
        assert_eq!(
            (p.self_id.as_str(), p.peers[0].state.as_str()),
            ("me", "alive")
        );
        let d: DrainProgress =
            serde_json::from_str(r#"{"Peer":"a","Done":false,"Remaining":4}"#).unwrap();
        assert_eq!((d.done, d.remaining), (false, 4));
    }
}
