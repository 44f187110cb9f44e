//! Commands about the node itself and its peers: `id`. Offline `id` shows the repository's
//! identity with no addresses; through the daemon it shows where the node listens.

use anyhow::Result;

use super::Backend;
use crate::ops::id::IdInfo;

pub(super) fn id(backend: &Backend<'_>, out: &mut dyn std::io::Write) -> Result<()> {
    let info: IdInfo = match backend {
        Backend::Local(repo) => {
            let key = crate::net::identity::load_or_create(repo.path())?;
            IdInfo::new(&key.public(), &[])
        }
        Backend::Remote(remote) => remote.json("id", &Vec::new())?,
    };
    serde_json::to_writer_pretty(&mut *out, &info)?;
    out.write_all(b"\n")?;
    Ok(())
}
