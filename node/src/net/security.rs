//! Which security handshakes a connection may use, in preference order: libp2p TLS
//! ([`super::tls`], AES-GCM on CPUs with AES instructions) first, Noise second.
//!
//! Kubo offers both and settles on TLS with us; Helia and other JS peers speak only Noise and
//! answer `na` to TLS, which costs one multistream round trip before Noise. Every transport the
//! node builds (TCP, TCP under a private-network key, relayed circuits) offers this pair.

use futures::future::{BoxFuture, Either};
use futures::{AsyncRead, AsyncWrite, Future, FutureExt, TryFutureExt};
use libp2p::core::UpgradeInfo;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::{Keypair, PeerId};
use libp2p::noise;
use thiserror::Error;

use super::tls::{self, TlsError};

/// Protocol name of the Noise handshake.
const NOISE: &str = "/noise";

/// A failed security handshake or setup, by protocol.
#[derive(Debug, Error)]
pub enum SecurityError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("noise: {0}")]
    Noise(#[from] noise::Error),
}

/// The security upgrade offering TLS, then Noise.
#[derive(Clone)]
pub struct TlsThenNoise {
    tls: tls::Config,
    noise: noise::Config,
}

/// Both handshakes for the host key `key`.
pub fn tls_then_noise(key: &Keypair) -> Result<TlsThenNoise, SecurityError> {
    Ok(TlsThenNoise {
        tls: tls::Config::new(key)?,
        noise: noise::Config::new(key)?,
    })
}

/// The encrypted stream, whichever handshake made it.
pub type Secured<C> = Either<futures_rustls::TlsStream<C>, noise::Output<C>>;

impl UpgradeInfo for TlsThenNoise {
    type Info = &'static str;
    type InfoIter = [&'static str; 2];

    fn protocol_info(&self) -> Self::InfoIter {
        [tls::PROTOCOL, NOISE]
    }
}

impl<C> InboundConnectionUpgrade<C> for TlsThenNoise
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, Secured<C>);
    type Error = SecurityError;
    type Future = BoxFuture<'static, Result<Self::Output, SecurityError>>;

    fn upgrade_inbound(self, socket: C, info: Self::Info) -> Self::Future {
        let (tls, noise) = (self.tls, self.noise);
        secure(
            info,
            socket,
            |s| tls.upgrade_inbound(s, info),
            |s| noise.upgrade_inbound(s, info),
        )
    }
}

impl<C> OutboundConnectionUpgrade<C> for TlsThenNoise
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, Secured<C>);
    type Error = SecurityError;
    type Future = BoxFuture<'static, Result<Self::Output, SecurityError>>;

    fn upgrade_outbound(self, socket: C, info: Self::Info) -> Self::Future {
        let (tls, noise) = (self.tls, self.noise);
        secure(
            info,
            socket,
            |s| tls.upgrade_outbound(s, info),
            |s| noise.upgrade_outbound(s, info),
        )
    }
}

/// Runs the handshake multistream-select settled on (`info`), either direction.
fn secure<C, T, N>(
    info: &str,
    socket: C,
    tls: impl FnOnce(C) -> T,
    noise: impl FnOnce(C) -> N,
) -> BoxFuture<'static, Result<(PeerId, Secured<C>), SecurityError>>
where
    T: Future<Output = Result<(PeerId, futures_rustls::TlsStream<C>), TlsError>> + Send + 'static,
    N: Future<Output = Result<(PeerId, noise::Output<C>), noise::Error>> + Send + 'static,
{
    if info == tls::PROTOCOL {
        tls(socket)
            .map_ok(|(peer, stream)| (peer, Either::Left(stream)))
            .err_into()
            .boxed()
    } else {
        noise(socket)
            .map_ok(|(peer, stream)| (peer, Either::Right(stream)))
            .err_into()
            .boxed()
    }
}
