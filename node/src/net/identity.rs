//! The node's persistent identity: an Ed25519 keypair kept in the repository at
//! `keys/identity` (libp2p protobuf encoding, mode 0600), created on first use. The peer ID
//! derives from it, so a node keeps its ID across restarts and `distribute id` can print it
//! without starting the network.

use std::io::Write;
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;
use thiserror::Error;

/// Where the key lives inside a repository folder.
pub const IDENTITY_FILE: &str = "keys/identity";

/// A key that could not be loaded or created.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("{op} {path}: {source}; check the repository folder and its permissions")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid libp2p private key ({reason}); move it away to create a new identity"
    )]
    Decode { path: PathBuf, reason: String },
    #[error("encoding the new key: {0}")]
    Encode(String),
}

/// The repository's keypair, created (Ed25519) if the repository has none yet.
pub fn load_or_create(repo: &Path) -> Result<Keypair, IdentityError> {
    let path = repo.join(IDENTITY_FILE);
    let io = |op: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| IdentityError::Io { op, path, source }
    };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::Decode {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::Encode(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
            }
            write_private(&path, &bytes).map_err(io("writing", &path))?;
            tracing::info!(peer = %key.public().to_peer_id(), "new node identity created");
            Ok(key)
        }
        Err(e) => Err(io("reading", &path)(e)),
    }
}

/// Write `bytes` to a new file readable only by the owner, durably, then move it into place.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_then_reloaded_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn garbage_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), b"nope").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(IdentityError::Decode { .. })
        ));
    }
}
