//! The stream multiplexer every TCP (and relayed) connection runs: Yamux (`/yamux/1.0.0`)
//! over the `yamux` crate's 0.12 connection, with our own settings.
//!
//! libp2p-yamux offers the same connection but not the size data frames are cut to, which
//! stays at 16 KiB: every 256 KiB block then left as 16 frames, each its own buffer, header
//! and pass through both connection tasks. Here frames are cut at [`SPLIT_SEND`], so a block
//! goes out in one frame when the peer's window allows (a frame never exceeds the credit the
//! peer gave, so every peer accepts it).
//!
//! The window is fixed (see [`YAMUX_WINDOW`]): yamux 0.13 auto-tunes a stream's receive window
//! past 1 MiB on a fast link, yet closes the whole connection on any data frame over 1 MiB.
//! js-libp2p's yamux (Helia) sends each write as one frame as large as the window allows, so a
//! Helia peer serving blocks grew our window, sent a 1.5 MiB frame, and the connection died
//! with `FrameTooLarge` mid-transfer, over and over. With a fixed window every frame a peer may
//! send stays within [`YAMUX_MAX_BUFFER`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::future::{Ready, ready};
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::UpgradeInfo;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};

/// Protocol name of Yamux in multistream-select.
const PROTOCOL: &str = "/yamux/1.0.0";
/// Per-stream receive window. Bitswap sends a peer's blocks on one stream, so the window is
/// how much can be in flight to us: at the spec's 256 KiB (one full block) the sender waited
/// for every block to be read before sending the next, and at 1 MiB a 1 GiB fetch over
/// loopback still left the two cores idle almost a quarter of the time, waiting for window
/// updates. 4 MiB took that fetch from 398-443 to 416-454 MB/s and cut the sender's CPU per
/// GiB by 7 % (seven interleaved pairs); 16 MiB gained nothing more. Data a peer sends beyond
/// what we have read is bounded by it.
pub const YAMUX_WINDOW: u32 = 4 * 1024 * 1024;
/// Largest data frame, and the most a stream may buffer, accepted from a peer: above the
/// window, so a peer filling the window and then closing the stream is not reset.
pub const YAMUX_MAX_BUFFER: usize = 8 * 1024 * 1024;
/// Largest data frame we send: one full block.
pub const SPLIT_SEND: usize = 256 * 1024;
/// Inbound streams held while the swarm is not asking for them; more are dropped (reset), as
/// libp2p-yamux does. A peer that respects yamux's ACK backlog never opens this many.
const MAX_BUFFERED_INBOUND: usize = 256;

/// The Yamux upgrade with our settings.
#[derive(Clone)]
pub struct Yamux {
    config: yamux::Config,
}

/// The upgrade the swarm builder takes.
pub fn yamux_upgrade() -> Yamux {
    let mut config = yamux::Config::default();
    config
        .set_receive_window(YAMUX_WINDOW)
        .set_max_buffer_size(YAMUX_MAX_BUFFER)
        .set_split_send_size(SPLIT_SEND)
        // As libp2p's multiplexers: a stream closed by us is not read from afterwards.
        .set_read_after_close(false);
    Yamux { config }
}

impl UpgradeInfo for Yamux {
    type Info = &'static str;
    type InfoIter = [&'static str; 1];

    fn protocol_info(&self) -> Self::InfoIter {
        [PROTOCOL]
    }
}

impl<C> InboundConnectionUpgrade<C> for Yamux
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = Ready<Result<Muxer<C>, std::io::Error>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        ready(Ok(Muxer::new(socket, self.config, yamux::Mode::Server)))
    }
}

impl<C> OutboundConnectionUpgrade<C> for Yamux
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = std::io::Error;
    type Future = Ready<Result<Muxer<C>, std::io::Error>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        ready(Ok(Muxer::new(socket, self.config, yamux::Mode::Client)))
    }
}

/// A Yamux connection as libp2p's [`StreamMuxer`].
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    /// Inbound streams that arrived while the swarm polled the connection for other work.
    inbound: VecDeque<yamux::Stream>,
    /// The task waiting in [`StreamMuxer::poll_inbound`].
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    fn new(socket: C, config: yamux::Config, mode: yamux::Mode) -> Self {
        Self {
            connection: yamux::Connection::new(socket, config, mode),
            inbound: VecDeque::new(),
            inbound_waker: None,
        }
    }

    /// Drive the connection until a peer opens a stream; its end is an error (`Closed`).
    fn next_inbound(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<yamux::Stream, yamux::ConnectionError>> {
        match self.connection.poll_next_inbound(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            Poll::Ready(None) => Poll::Ready(Err(yamux::ConnectionError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.inbound.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        if let Poll::Ready(result) = this.next_inbound(cx) {
            return Poll::Ready(result);
        }
        this.inbound_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        self.get_mut().connection.poll_new_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().connection.poll_close(cx)
    }

    /// Makes progress on the whole connection (frames in and out of every stream). A stream
    /// the peer opens meanwhile waits in `inbound` for [`StreamMuxer::poll_inbound`].
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = match this.next_inbound(cx) {
            Poll::Ready(Ok(stream)) => stream,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if this.inbound.len() < MAX_BUFFERED_INBOUND {
            this.inbound.push_back(stream);
            if let Some(waker) = this.inbound_waker.take() {
                waker.wake();
            }
        } else {
            tracing::warn!(%stream, "dropping an inbound yamux stream: too many are waiting");
        }
        // Come back at once: the connection may have more to do.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures::future::poll_fn;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    use super::*;

    /// A socket that keeps a copy of everything written to it.
    struct Tap {
        inner: Compat<tokio::io::DuplexStream>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Tap {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Tap {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = futures::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            self.written.lock().unwrap().extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_close(cx)
        }
    }

    /// Drive `muxer` until its connection ends.
    fn drive<C>(mut muxer: Muxer<C>) -> tokio::task::JoinHandle<()>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        tokio::spawn(async move {
            let _ = poll_fn(|cx| Pin::new(&mut muxer).poll(cx)).await;
        })
    }

    /// Body lengths of the data frames (type 0) in a yamux byte stream.
    fn data_frame_lengths(mut wire: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        while wire.len() >= 12 {
            let kind = wire[1];
            let length = u32::from_be_bytes([wire[8], wire[9], wire[10], wire[11]]) as usize;
            wire = &wire[12..];
            if kind == 0 {
                lengths.push(length);
                wire = &wire[length.min(wire.len())..];
            }
        }
        lengths
    }

    #[tokio::test]
    async fn streams_carry_bytes_in_frames_of_up_to_one_block() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let written = Arc::new(Mutex::new(Vec::new()));
        let tap = Tap {
            inner: a.compat(),
            written: Arc::clone(&written),
        };
        let upgrade = yamux_upgrade();
        let mut client = upgrade
            .clone()
            .upgrade_outbound(tap, PROTOCOL)
            .await
            .unwrap();
        let mut server = upgrade.upgrade_inbound(b.compat(), PROTOCOL).await.unwrap();

        let mut outbound = poll_fn(|cx| Pin::new(&mut client).poll_outbound(cx))
            .await
            .unwrap();
        let client_task = drive(client);
        let data: Vec<u8> = (0..3 * SPLIT_SEND + 1000)
            .map(|i| (i % 253) as u8)
            .collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            outbound.write_all(&sent).await.unwrap();
            outbound.close().await.unwrap();
        });
        let mut inbound = poll_fn(|cx| Pin::new(&mut server).poll_inbound(cx))
            .await
            .unwrap();
        let server_task = drive(server);
        let mut got = Vec::new();
        inbound.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, data);

        let lengths = data_frame_lengths(&written.lock().unwrap());
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        assert_eq!(lengths.iter().max(), Some(&SPLIT_SEND), "{lengths:?}");
        client_task.abort();
        server_task.abort();
    }
}
