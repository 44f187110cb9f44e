//! The node's commands as library functions with typed results, shared by the offline CLI
//! and the RPC API ([`crate::api`]).
//!
//! Each result type serializes to the JSON shape Kubo's RPC API uses for that command
//! (PascalCase fields), so the API handler answers by serializing it, the CLI talking to a
//! daemon gets it back by deserializing the answer, and one renderer in `cli/` prints it in
//! both cases: online and offline output are the same by construction.

pub mod add;
pub mod id;
pub mod pin;

use thiserror::Error;

use crate::content::cid::CidError;
use crate::store::StoreError;
use crate::store::pins::PinError;

/// A command that failed. [`OpError::class`] says whose fault it was, which the API maps to
/// an HTTP status.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpError {
    /// The request itself is wrong (bad CID, bad option).
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is fine but cannot be carried out in the repository's state.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Cid(#[from] CidError),
    #[error(transparent)]
    Pins(#[from] PinError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose fault an [`OpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller's request (HTTP 400).
    Request,
    /// Something named is missing (HTTP 404).
    Missing,
    /// The node (HTTP 500).
    Node,
}

impl OpError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Invalid(_) | Self::Cid(_) => ErrorClass::Request,
            Self::NotFound(_) => ErrorClass::Missing,
            Self::Refused(_) | Self::Pins(_) | Self::Store(_) => ErrorClass::Node,
        }
    }
}
