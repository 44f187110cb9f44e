//! The Kubo-compatible HTTP RPC API the daemon serves (`--api`, default `127.0.0.1:5001`):
//! `POST /api/v0/<cmd>?arg=…&<option>=…`, JSON or NDJSON answers in Kubo's shapes, errors as
//! `{"Message","Code":0,"Type":"error"}`.
//!
//! - [`server`]: binding, the `<repo>/api` file, the warp filter turning requests into calls.
//! - [`auth`]: the bearer-token check, the only place requests are authorised.
//! - [`error`]: [`ApiError`] and its status codes and body.
//! - [`body`]: JSON answers and NDJSON / byte streams fed from blocking producers.
//! - [`registry`]: the command table and the [`Call`] handlers receive.
//! - [`multipart`]: the bounded streaming multipart parser uploads are read with.
//! - [`upload`]: multipart bodies gathered in memory (`block/put`) or fed part by part (`add`,
//!   `dag/import`).
//! - one file per command area ([`add`], [`block`], [`dag`], [`get`] (tar), [`net`], [`pin`], [`read`],
//!   [`repo`], [`swarm`]) with its handlers and a `register` function; the work itself is done by
//!   [`crate::ops`] or the library code the CLI calls, whose results the handlers serialize.
//!
//! # Adding an endpoint
//! Write `async fn handler(state: Arc<S>, call: Call) -> Result<Response, ApiError>` (read
//! arguments with [`Call::arg`], [`Call::flag`], [`Call::parsed`]; answer with
//! [`body::ok_json`] or a stream from [`body`]), then register it where the daemon builds the
//! table: `commands.add("area/cmd", &state, handler)` — see [`commands`] for this node's own,
//! and do the same from another module with its own state before the table is served. A
//! later `add` of an existing name replaces it.

pub mod add;
pub mod auth;
pub mod block;
pub mod body;
pub mod dag;
pub mod error;
pub mod get;
pub mod multipart;
pub mod net;
pub mod pin;
pub mod read;
pub mod registry;
pub mod repo;
pub mod server;
pub mod swarm;
pub mod upload;

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::PublicKey;
use tokio::sync::mpsc;

pub use auth::Auth;
pub use error::ApiError;
pub use registry::{Call, Commands};

use crate::net::Client;
use crate::net::bitswap::Bitswap;
use crate::repo::Repo;

/// What the node's own commands work on.
pub struct NodeState {
    pub repo: Arc<Repo>,
    pub client: Client,
    pub bitswap: Bitswap,
    pub public_key: PublicKey,
    /// How long a read may wait for missing blocks from the network.
    pub fetch_timeout: Duration,
    /// Tells the announcer that pins may have changed.
    pub pins_changed: mpsc::Sender<()>,
    /// The cluster member, when the node runs with `--cluster-secret-file`; it registers
    /// its own endpoints (`crate::cluster::api`).
    pub cluster: Option<crate::cluster::Cluster>,
}

impl NodeState {
    /// Run `f` on the repository on a blocking thread.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Repo) -> Result<T, ApiError> + Send + 'static,
    {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&state.repo))
            .await
            .map_err(ApiError::internal)?
    }

    /// Tell the announcer to look at the pins again.
    pub fn pins_may_have_changed(&self) {
        let _ = self.pins_changed.try_send(());
    }
}

/// The table of this node's own commands.
pub fn commands(node: &Arc<NodeState>) -> Commands {
    let mut commands = Commands::new();
    add::register(&mut commands, node);
    block::register(&mut commands, node);
    dag::register(&mut commands, node);
    get::register(&mut commands, node);
    net::register(&mut commands, node);
    pin::register(&mut commands, node);
    read::register(&mut commands, node);
    repo::register(&mut commands, node);
    swarm::register(&mut commands, node);
    commands
}
