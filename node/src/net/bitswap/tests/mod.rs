//! Tests of the Bitswap codec and state machines, one file per module under test.

mod ledger;
mod message;
mod session;
mod streams;
