//! The TLS upgrade over real loopback sockets: handshakes between our configurations and with
//! rust-libp2p's own `libp2p::tls`, the suite each side ends up with, and refusals of a peer
//! without a certificate and of bytes that are not TLS.

use std::sync::Arc;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::Keypair;
use libp2p::tcp::tokio::TcpStream;
use rustls::CipherSuite;
use rustls::pki_types::ServerName;
use tokio::net::TcpListener;

use super::*;

/// A connected loopback socket pair, as libp2p's tokio TCP transport hands them to upgrades.
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (dialed, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
    (TcpStream(dialed.unwrap()), TcpStream(accepted.unwrap().0))
}

fn suite(stream: &TlsStream<TcpStream>) -> Option<CipherSuite> {
    stream
        .get_ref()
        .1
        .negotiated_cipher_suite()
        .map(|s| s.suite())
}

#[tokio::test]
async fn both_sides_learn_each_others_peer_id_and_move_bytes() {
    let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (dial, accept) = socket_pair().await;
    let client = Config::with_suites(&a, suites(true)).unwrap();
    let server = Config::with_suites(&b, suites(true)).unwrap();
    let (out, inb) = tokio::join!(
        client.upgrade_outbound(dial, PROTOCOL),
        server.upgrade_inbound(accept, PROTOCOL)
    );
    let ((seen_by_a, mut a_stream), (seen_by_b, mut b_stream)) = (out.unwrap(), inb.unwrap());
    assert_eq!(seen_by_a, b.public().to_peer_id());
    assert_eq!(seen_by_b, a.public().to_peer_id());
    assert_eq!(
        suite(&a_stream),
        Some(CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    assert_eq!(a_stream.get_ref().1.alpn_protocol(), Some(ALPN));

    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let send = async {
        a_stream.write_all(&payload).await.unwrap();
        a_stream.close().await.unwrap();
    };
    let mut got = Vec::new();
    let recv = async { b_stream.read_to_end(&mut got).await.unwrap() };
    tokio::join!(send, recv);
    assert_eq!(got, payload);
}

#[test]
fn aes_goes_first_only_with_aes_instructions() {
    let names = |aes| suites(aes).iter().map(|s| s.suite()).collect::<Vec<_>>();
    assert_eq!(
        names(true),
        [
            CipherSuite::TLS13_AES_128_GCM_SHA256,
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        ]
    );
    assert_eq!(names(false)[0], CipherSuite::TLS13_CHACHA20_POLY1305_SHA256);
    assert_eq!(names(false).len(), 3);
}

/// rust-libp2p's own TLS upgrade (ChaCha20 first) on the other end: the handshake is the
/// spec's, and the dialer's preference picks the suite either way.
#[tokio::test]
async fn interoperates_with_rust_libp2p_tls_both_ways() {
    let (ours, theirs) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());

    let (dial, accept) = socket_pair().await;
    let (out, inb) = tokio::join!(
        Config::with_suites(&ours, suites(true))
            .unwrap()
            .upgrade_outbound(dial, PROTOCOL),
        libp2p::tls::Config::new(&theirs)
            .unwrap()
            .upgrade_inbound(accept, PROTOCOL)
    );
    let ((peer, stream), (their_view, _)) = (out.unwrap(), inb.unwrap());
    assert_eq!(peer, theirs.public().to_peer_id());
    assert_eq!(their_view, ours.public().to_peer_id());
    assert_eq!(suite(&stream), Some(CipherSuite::TLS13_AES_128_GCM_SHA256));

    let (dial, accept) = socket_pair().await;
    let (out, inb) = tokio::join!(
        libp2p::tls::Config::new(&theirs)
            .unwrap()
            .upgrade_outbound(dial, PROTOCOL),
        Config::with_suites(&ours, suites(true))
            .unwrap()
            .upgrade_inbound(accept, PROTOCOL)
    );
    let ((their_view, _), (peer, stream)) = (out.unwrap(), inb.unwrap());
    assert_eq!(peer, theirs.public().to_peer_id());
    assert_eq!(their_view, ours.public().to_peer_id());
    assert_eq!(
        suite(&stream),
        Some(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let (dial, accept) = socket_pair().await;
    let server = Config::new(&Keypair::generate_ed25519()).unwrap();
    let mut bare =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PeerCertificate))
            .with_no_client_auth();
    bare.alpn_protocols = vec![ALPN.to_vec()];
    let name = ServerName::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED).into());
    let client = async {
        // The client may finish its half of the handshake before the server's refusal lands;
        // a read then sees the alert.
        if let Ok(mut s) = futures_rustls::TlsConnector::from(Arc::new(bare))
            .connect(name, dial)
            .await
        {
            let _ = s.read(&mut [0u8; 1]).await;
        }
    };
    let (_, refused) = tokio::join!(client, server.upgrade_inbound(accept, PROTOCOL));
    assert!(
        matches!(refused, Err(TlsError::Handshake(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_is_an_error() {
    let (mut dial, accept) = socket_pair().await;
    let server = Config::new(&Keypair::generate_ed25519()).unwrap();
    let junk = async {
        dial.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
            .await
            .unwrap();
        dial.write_all(&[0xff; 64]).await.unwrap();
        dial.close().await.unwrap();
    };
    let (_, result) = tokio::join!(junk, server.upgrade_inbound(accept, PROTOCOL));
    assert!(matches!(result, Err(TlsError::Handshake(_))), "{result:?}");
}
