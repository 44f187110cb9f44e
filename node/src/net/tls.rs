//! libp2p's TLS 1.3 security handshake (`/tls/1.0.0`), with the cipher suites ordered for the
//! CPU we run on.
//!
//! The wire format is the libp2p TLS spec's, so Kubo (go-libp2p) and rust-libp2p peers accept
//! it: a self-signed certificate carrying the host key in the libp2p extension (made and checked
//! by `libp2p::tls::certificate`), TLS 1.3 only, ALPN `libp2p`, no SNI, and a certificate from
//! both sides. What differs from `libp2p::tls::Config` is the suite order we offer: that crate
//! always puts ChaCha20-Poly1305 first, which costs a core-bound transfer on a CPU with AES
//! instructions: in `bench/p2p.sh`'s 1 GiB fetch, ChaCha20 sealing and opening took 12–18 % of
//! each daemon's CPU time, AES-GCM 2–4 %. Go's TLS prefers AES-GCM on such CPUs too. Without
//! AES instructions ChaCha20 stays first. A server answers with the client's preference
//! (rustls' default), so a peer offering ChaCha20 first still gets ChaCha20.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncWrite, FutureExt};
use futures_rustls::TlsStream;
use libp2p::core::UpgradeInfo;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::{Keypair, PeerId};
use libp2p::tls::certificate;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::cipher_suite;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, CommonState, DigitallySignedStruct, DistinguishedName,
    OtherError, ServerConfig, SignatureScheme, SupportedCipherSuite,
};
use thiserror::Error;

/// The security protocol name multistream-select negotiates.
pub const PROTOCOL: &str = "/tls/1.0.0";
/// ALPN value the spec requires.
const ALPN: &[u8] = b"libp2p";

/// Why a TLS security upgrade could not be set up or completed.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("making the TLS certificate: {0}")]
    Certificate(#[from] certificate::GenError),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    #[error("the peer presented {0} certificates; the libp2p TLS handshake takes exactly one")]
    CertificateCount(usize),
    #[error("the peer's certificate: {0}")]
    PeerCertificate(#[from] certificate::ParseError),
}

/// The TLS security upgrade: client and server configurations for one host key.
#[derive(Clone)]
pub struct Config {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl Config {
    /// Configurations for `key`, suites ordered for this CPU.
    pub fn new(key: &Keypair) -> Result<Self, TlsError> {
        Self::with_suites(key, suites(aes_instructions()))
    }

    /// Configurations offering exactly `suites`, in that order.
    pub fn with_suites(key: &Keypair, suites: Vec<SupportedCipherSuite>) -> Result<Self, TlsError> {
        let (cert, private_key) = certificate::generate(key)?;
        let provider = Arc::new(CryptoProvider {
            cipher_suites: suites,
            ..rustls::crypto::ring::default_provider()
        });
        // Not `with_single_cert`: that runs webpki over our own certificate, and webpki refuses
        // the libp2p extension, which the spec marks critical.
        let signer = provider.key_provider.load_private_key(private_key)?;
        let own = Arc::new(OwnCertificate(Arc::new(CertifiedKey::new(
            vec![cert],
            signer,
        ))));
        let verifier = Arc::new(PeerCertificate);
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(own.clone());
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(own);
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}

/// TLS 1.3 suites in preference order: AES-GCM first when the CPU has AES instructions
/// (AES-NI with carry-less multiply, or the ARMv8 crypto extensions), ChaCha20 first otherwise.
pub fn suites(aes_instructions: bool) -> Vec<SupportedCipherSuite> {
    let aes = [
        cipher_suite::TLS13_AES_128_GCM_SHA256,
        cipher_suite::TLS13_AES_256_GCM_SHA384,
    ];
    let chacha = cipher_suite::TLS13_CHACHA20_POLY1305_SHA256;
    if aes_instructions {
        aes.into_iter().chain([chacha]).collect()
    } else {
        [chacha].into_iter().chain(aes).collect()
    }
}

/// Whether this CPU runs AES-GCM in hardware.
fn aes_instructions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(PROTOCOL)
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, TlsError>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            let stream = futures_rustls::TlsAcceptor::from(self.server)
                .accept(socket)
                .await
                .map_err(TlsError::Handshake)?;
            let peer = remote_peer(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, TlsError>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            // The spec forbids a server name indication; rustls sends none for an IP address.
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
            let stream = futures_rustls::TlsConnector::from(self.client)
                .connect(name, socket)
                .await
                .map_err(TlsError::Handshake)?;
            let peer = remote_peer(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

/// Our certificate, presented whatever the other side asks for: there is only one.
#[derive(Debug)]
struct OwnCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OwnCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

impl ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The peer ID in the one certificate the remote presented (already checked by the verifier).
fn remote_peer(state: &CommonState) -> Result<PeerId, TlsError> {
    match state.peer_certificates() {
        Some([cert]) => Ok(certificate::parse(cert)?.peer_id()),
        other => Err(TlsError::CertificateCount(other.map_or(0, <[_]>::len))),
    }
}

/// Accepts exactly one self-signed certificate with a valid libp2p extension, from either
/// side. Which peer is behind it is checked afterwards, by the swarm, against the dialed
/// address's `/p2p/` part.
#[derive(Debug)]
struct PeerCertificate;

impl PeerCertificate {
    fn check(
        end_entity: &CertificateDer<'_>,
        chain: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !chain.is_empty() {
            return Err(rustls::Error::General(format!(
                "{} intermediate certificates; the libp2p TLS handshake takes exactly one certificate",
                chain.len()
            )));
        }
        certificate::parse(end_entity).map_err(bad_certificate)?;
        Ok(())
    }

    fn handshake_signature(
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        certificate::parse(cert)
            .map_err(bad_certificate)?
            .verify_signature(dss.scheme, message, dss.signature())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
        Ok(HandshakeSignatureValid::assertion())
    }

    fn schemes() -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
        ]
    }
}

fn bad_certificate(e: certificate::ParseError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// Only TLS 1.3 is configured, so a TLS 1.2 signature means a confused peer.
fn tls12_refused() -> rustls::Error {
    rustls::Error::General("TLS 1.2 handshake signature; libp2p TLS is TLS 1.3 only".to_owned())
}

/// The handshake-signature methods both verifier traits share, for [`PeerCertificate`].
macro_rules! handshake_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(tls12_refused())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Self::handshake_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            Self::schemes()
        }
    };
}

impl ServerCertVerifier for PeerCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Self::check(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signature_checks!();
}

impl ClientCertVerifier for PeerCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Self::check(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    handshake_signature_checks!();
}

#[cfg(test)]
mod tests;
