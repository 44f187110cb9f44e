//! Networking. For now only the socket-free protocol cores live here: [`bitswap`] holds the
//! Bitswap wire codec and the server (ledger) and client (session) state machines. The libp2p
//! swarm and its event loop, which drive these over real streams, are built on top and are the
//! only code that touches sockets.

pub mod bitswap;
