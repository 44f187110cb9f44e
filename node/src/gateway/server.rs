//! The HTTP side on warp: one catch-all filter hands method, raw path, query and headers to
//! [`request::parse`]; content requests are answered by [`respond`] on the connection's task
//! when the blocks are local and few ([`InlineSource`]), otherwise on a blocking thread
//! (block reads may wait for Bitswap), and streamed bodies are written by their job on
//! another blocking thread into a bounded channel the response body drains, so bytes leave
//! as soon as they are read and verified.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use warp::Filter;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use warp::reply::{Reply as _, Response};

use super::cache::BlockCache;
use super::error::GatewayError;
use super::inline::InlineSource;
use super::metrics::GatewayMetrics;
use super::reply::{Body, BodyJob, Reply};
use super::request::{self, RequestHead, Route};
use super::respond::respond;
use crate::daemon::source::NetworkSource;
use crate::net::bitswap::Bitswap;
use crate::repo::Repo;

/// Chunks of a streamed body in flight between the reading thread and the connection.
const BODY_QUEUE: usize = 8;
/// Size of the chunks a streamed body is cut into.
const CHUNK: usize = 64 << 10;

/// Everything the gateway serves from.
pub struct Gateway {
    pub repo: Arc<Repo>,
    pub bitswap: Bitswap,
    /// How long a request may wait for blocks from the network before it is a 504.
    pub retrieval_timeout: Duration,
    /// Base domain of subdomain mode (`<cid>.ipfs.<host>`), if enabled.
    pub subdomain_host: Option<String>,
    pub metrics: GatewayMetrics,
    /// Hot blocks served without reading them again (see [`BlockCache`]).
    pub cache: BlockCache,
}

/// Bind `addr`, serve the gateway on it in a new task, and return its URL (an unspecified
/// address is shown as loopback, which reaches it from this machine).
pub async fn start(addr: SocketAddr, gateway: Gateway) -> std::io::Result<String> {
    let listener = TcpListener::bind(addr).await?;
    let mut shown = listener.local_addr()?;
    if shown.ip().is_unspecified() {
        shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{shown}");
    tracing::info!(%url, "gateway listening");
    tokio::spawn(serve(listener, Arc::new(gateway)));
    Ok(url)
}

/// Serve HTTP on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .then(
            move |method: Method, path: warp::path::FullPath, query: String, headers: HeaderMap| {
                let gateway = Arc::clone(&gateway);
                async move {
                    gateway
                        .handle(method, path.as_str(), &query, &headers)
                        .await
                }
            },
        );
    warp::serve(route).incoming(listener).run().await;
}

impl Gateway {
    fn retry_after(&self) -> u64 {
        self.retrieval_timeout.as_secs().max(1)
    }

    async fn handle(
        self: Arc<Self>,
        method: Method,
        path: &str,
        query: &str,
        headers: &HeaderMap,
    ) -> Response {
        let timer = self.metrics.start();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let head = RequestHead {
            method: method.as_str(),
            path,
            query,
            host: header("host"),
            accept: header("accept"),
            range: header("range"),
            if_none_match: header("if-none-match"),
            forwarded_proto: header("x-forwarded-proto"),
        };
        let reply = match request::parse(&head, self.subdomain_host.as_deref()) {
            Ok(Route::Redirect(location)) => Reply::redirect(location),
            Ok(Route::Options) => Reply::new(204)
                .header("Allow", "GET, HEAD, OPTIONS")
                .header("Access-Control-Allow-Origin", "*")
                .header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
                .header(
                    "Access-Control-Allow-Headers",
                    "Range, Accept, If-None-Match",
                ),
            Ok(Route::Content(req)) => {
                let inline = {
                    let source = InlineSource::new(self.repo.blocks(), &self.cache);
                    let answer = respond(&source, &req);
                    (!source.deferred()).then_some(answer)
                };
                match inline {
                    Some(answer) => answer.unwrap_or_else(|e| Reply::error(&e, self.retry_after())),
                    None => self.respond_blocking(req).await,
                }
            }
            Err(e) => Reply::error(&e, self.retry_after()),
        };
        if reply.status >= 500 {
            tracing::warn!(status = reply.status, path, "gateway error");
        }
        let status = reply.status;
        let response = self.to_http(reply, method == Method::HEAD);
        timer.finish(status);
        response
    }

    /// Answer on a blocking thread, where block reads may wait for the network.
    async fn respond_blocking(self: &Arc<Self>, req: Box<request::ContentRequest>) -> Reply {
        let gateway = Arc::clone(self);
        let runtime = Handle::current();
        let answered = tokio::task::spawn_blocking(move || {
            let source = gateway.source(runtime);
            respond(&source, &req)
        })
        .await;
        match answered {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => Reply::error(&e, self.retry_after()),
            Err(e) => Reply::error(&GatewayError::Internal(e.to_string()), 1),
        }
    }

    fn source(&self, runtime: Handle) -> NetworkSource<'_> {
        NetworkSource::new(
            self.repo.blocks(),
            self.bitswap.clone(),
            runtime,
            self.retrieval_timeout,
        )
    }

    fn to_http(self: &Arc<Self>, reply: Reply, head: bool) -> Response {
        let (mut response, len) = match reply.body {
            Body::Empty => (Vec::<u8>::new().into_response(), None),
            Body::Bytes(b) if head => (Vec::<u8>::new().into_response(), Some(b.len() as u64)),
            Body::Bytes(b) => (warp::http::Response::new(b).into_response(), None),
            Body::Stream { len, .. } if head => (Vec::<u8>::new().into_response(), len),
            Body::Stream { len, job } => (self.stream(job).into_response(), len),
        };
        *response.status_mut() =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        for (name, value) in reply.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.insert(n, v);
                }
                _ => tracing::warn!(name, "dropping a header that is not valid"),
            }
        }
        if let Some(len) = len {
            headers.insert(warp::http::header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        response
    }

    /// Run `job` on a blocking thread; its output is the returned reply's body.
    fn stream(self: &Arc<Self>, job: BodyJob) -> impl warp::Reply {
        let (tx, rx) = mpsc::channel(BODY_QUEUE);
        let gateway = Arc::clone(self);
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            let source = gateway.source(runtime);
            let mut out = std::io::BufWriter::with_capacity(CHUNK, ChannelWriter(tx.clone()));
            let result = job(&source, &mut out).and_then(|()| {
                out.flush()
                    .map_err(|e| GatewayError::Internal(e.to_string()))
            });
            drop(out);
            if let Err(e) = result {
                // Headers are gone already: all that is left is to cut the response short.
                tracing::warn!(error = %e, "gateway response aborted");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        });
        warp::reply::stream(ChunkStream(rx))
    }
}

/// Body bytes written on a blocking thread, sent to the connection.
struct ChannelWriter(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK);
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The receiving end as a body stream.
struct ChunkStream(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures::Stream for ChunkStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
