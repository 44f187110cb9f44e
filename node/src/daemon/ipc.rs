//! The local API between the CLI and a running daemon, on the Unix socket `<repo>/api.sock`.
//!
//! The CLI sends one JSON line, `{"argv": [...], "cwd": "..."}`; the daemon answers with
//! frames of `tag (1 byte) | length (u32, big endian) | payload`: [`TAG_OUT`] carries stdout
//! bytes, streamed as the command writes them, then exactly one of [`TAG_ERROR`] (the error
//! line the CLI prints, exit code 1) or [`TAG_DONE`] (success). Only the client side is here
//! besides the wire constants; [`super::api`] is the daemon side.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the socket inside the repository.
pub const SOCKET_FILE: &str = "api.sock";
pub const TAG_OUT: u8 = b'o';
pub const TAG_ERROR: u8 = b'e';
pub const TAG_DONE: u8 = b'x';
/// Largest request line accepted.
pub const MAX_REQUEST: usize = 1 << 20;
/// Largest frame either side sends.
pub const MAX_FRAME: usize = 1 << 20;

/// One command forwarded to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Request {
    pub argv: Vec<String>,
    pub cwd: PathBuf,
}

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpcError {
    #[error("talking to the daemon at {path}: {source}; is `distribute node` still running?")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon sent a malformed answer (tag {0:#x})")]
    Protocol(u8),
    #[error("{0}")]
    Command(String),
}

/// Encode one frame.
pub fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Run `argv` in the daemon listening at `socket`, copying its output to `out`. Returns the
/// command's error line as [`IpcError::Command`].
pub fn forward(
    socket: &Path,
    argv: Vec<String>,
    cwd: PathBuf,
    out: &mut dyn Write,
) -> Result<(), IpcError> {
    let io = |source| IpcError::Io {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    let mut line =
        serde_json::to_vec(&Request { argv, cwd }).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).map_err(io)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(IpcError::Protocol(head[0]));
        }
        payload.resize(len, 0);
        stream.read_exact(&mut payload).map_err(io)?;
        match head[0] {
            TAG_OUT => {
                out.write_all(&payload).map_err(io)?;
            }
            TAG_ERROR => {
                out.flush().map_err(io)?;
                return Err(IpcError::Command(
                    String::from_utf8_lossy(&payload).into_owned(),
                ));
            }
            TAG_DONE => {
                out.flush().map_err(io)?;
                return Ok(());
            }
            other => return Err(IpcError::Protocol(other)),
        }
    }
}
