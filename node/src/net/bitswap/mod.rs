//! Bitswap, the IPFS block exchange protocol, as pure state machines with no sockets.
//!
//! - [`message`]: the wire format. [`Message`] encodes for a negotiated [`ProtocolVersion`]
//!   and decodes untrusted bytes without panicking; framing adds the unsigned-varint length
//!   prefix libp2p streams carry. [`prefix`] turns a payload's CID prefix plus data back into
//!   a CID.
//! - [`ledger`]: the serving side. [`Server`] keeps each peer's wantlist and byte counters and
//!   hands out work in fair (deficit round robin) order; the caller looks blocks up in the
//!   store and hands the answers back, so the network task never reads the disk.
//! - [`session`]: the fetching side. A [`Session`] asks peers who has which CID, requests
//!   blocks from the best responders within a bounded window, verifies what arrives and
//!   retries elsewhere on DONT_HAVE, timeout, corruption or disconnect. Time is an argument.
//!
//! - [`service`], [`streams`], [`fetch`]: the async glue over `libp2p-stream` (the only
//!   part of this folder that imports libp2p): inbound readers, per-peer writers, the actor
//!   that owns the server, and DAG fetches that each run a session.
//!
//! Data flow: a libp2p event loop reads a frame, [`decode_framed`] gives a [`Message`]; its
//! wantlist goes to [`Server::receive`], its blocks and presences to
//! [`Session::on_message`]. Both produce plain values (responses, [`session::Action`]s) that
//! the loop encodes with [`encode_framed`] and writes. The state machines import nothing from libp2p:
//! peers are any `Clone + Eq + Hash + Ord` key.

pub mod fetch;
pub mod frame;
pub mod ledger;
pub mod message;
pub mod prefix;
pub mod service;
pub mod session;
pub mod solicited;
pub mod streams;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use fetch::{FetchError, FetchStats};
pub use frame::{decode_framed, encode_framed};
pub use ledger::{Server, ServerConfig};
pub use message::{BlockPresence, Message, PresenceType, ProtocolVersion, WantType, WantlistEntry};
pub use prefix::CidPrefix;
pub use service::Bitswap;
pub use session::{Action, Session, SessionConfig};
