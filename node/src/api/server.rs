//! The RPC API's HTTP server: binding (refusing a non-loopback address without a token
//! file), the `<repo>/api` file that tells clients where it listens, and the warp filter
//! that turns every request into an authorised [`Call`] to one of the [`Commands`].
//!
//! Request flow: any method and path reach [`handle`]; a path under a mount (`/pins`) goes
//! to the mount with the auth check's outcome; other non-`/api/v0/` paths are 404, other
//! methods than POST 405, a bad or missing token 401 (all before the body is read); then the
//! query string is split into `arg`s and options and the command runs. Every failure is
//! answered in Kubo's error shape.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Buf;
use futures::{Future, StreamExt};
use tokio::net::TcpListener;
use warp::Filter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::auth::Auth;
use super::error::ApiError;
use super::registry::{BodyStream, Call, Commands, Mounted};

/// File in the repository holding the API's multiaddr while a daemon serves it.
pub const API_FILE: &str = "api";

/// Path prefix of every command.
const PREFIX: &str = "/api/v0/";

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(
        "refusing to serve the RPC API on {0} without authentication: pass --api-token-file, or bind a loopback address"
    )]
    NoAuthOffLoopback(SocketAddr),
    #[error("binding the RPC API to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    ApiFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Bind the API's address, checking that it is safe to serve there with `auth`.
pub async fn bind(addr: SocketAddr, auth: &Auth) -> Result<TcpListener, ServeError> {
    if !addr.ip().is_loopback() && !auth.is_required() {
        return Err(ServeError::NoAuthOffLoopback(addr));
    }
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// `addr` as the multiaddr Kubo writes to `<repo>/api`.
pub fn multiaddr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("/ip4/{}/tcp/{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("/ip6/{}/tcp/{}", a.ip(), a.port()),
    }
}

/// Write `<repo>/api` (atomically: clients never see half a file).
pub fn write_api_file(repo: &Path, addr: SocketAddr) -> Result<(), ServeError> {
    let path = repo.join(API_FILE);
    let tmp = repo.join("api.tmp");
    let err = |source| ServeError::ApiFile {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, multiaddr(addr)).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// Remove `<repo>/api` at shutdown.
pub fn remove_api_file(repo: &Path) {
    let _ = std::fs::remove_file(repo.join(API_FILE));
}

/// Serve `commands` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    commands: Arc<Commands>,
    auth: Arc<Auth>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let route = warp::path::full()
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::body::stream())
        .then(
            move |path: warp::path::FullPath, method, headers, query: String, body| {
                let commands = Arc::clone(&commands);
                let auth = Arc::clone(&auth);
                let body = boxed_body(body);
                async move {
                    if let Some(mount) = commands.mounted(path.as_str()) {
                        let authorized = auth.check(&headers);
                        return mount(Mounted {
                            method,
                            path: path.as_str().to_owned(),
                            query,
                            headers,
                            body,
                            authorized,
                        })
                        .await;
                    }
                    let request = Request {
                        path: path.as_str(),
                        method: &method,
                        headers,
                        query: &query,
                    };
                    handle(&commands, &auth, request, body)
                        .await
                        .unwrap_or_else(ApiError::into_response)
                }
            },
        );
    warp::serve(route)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

/// The request body as a [`BodyStream`].
fn boxed_body<S, B>(body: S) -> BodyStream
where
    S: futures::Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(body.map(|chunk| match chunk {
        Ok(mut buf) => Ok(buf.copy_to_bytes(buf.remaining())),
        Err(e) => Err(ApiError::BadRequest(format!(
            "reading the request body: {e}"
        ))),
    }))
}

/// What [`handle`] needs of a request besides its body.
struct Request<'a> {
    path: &'a str,
    method: &'a Method,
    headers: HeaderMap,
    query: &'a str,
}

async fn handle(
    commands: &Commands,
    auth: &Auth,
    request: Request<'_>,
    body: BodyStream,
) -> Result<Response, ApiError> {
    let name = request
        .path
        .strip_prefix(PREFIX)
        .map(|n| n.trim_end_matches('/'))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::NotFound(format!("{} is not an API path", request.path)))?;
    if request.method != Method::POST {
        return Err(ApiError::MethodNotAllowed(request.method.to_string()));
    }
    auth.check(&request.headers)?;
    if !commands.contains(name) {
        return Err(ApiError::NotFound(format!("unknown command {name:?}")));
    }
    let (args, options) = split_query(request.query);
    let call = Call {
        args,
        options,
        headers: request.headers,
        body,
    };
    tracing::debug!(command = name, "API call");
    commands.dispatch(name, call).await
}

/// The query string's `arg`s and the other parameters, URL-decoded, in order.
fn split_query(query: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut args = Vec::new();
    let mut options = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "arg" {
            args.push(v.into_owned());
        } else {
            options.push((k.into_owned(), v.into_owned()));
        }
    }
    (args, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_splits_into_args_and_options() {
        let (args, options) = split_query("arg=a%2Fb&progress=true&arg=ipfs%3A%2F%2Fx&q");
        assert_eq!(args, vec!["a/b", "ipfs://x"]);
        assert_eq!(
            options,
            vec![
                ("progress".to_owned(), "true".to_owned()),
                ("q".to_owned(), String::new())
            ]
        );
    }

    #[test]
    fn multiaddr_of_socket_addresses() {
        assert_eq!(
            multiaddr("127.0.0.1:5001".parse().unwrap()),
            "/ip4/127.0.0.1/tcp/5001"
        );
        assert_eq!(multiaddr("[::1]:80".parse().unwrap()), "/ip6/::1/tcp/80");
    }
}
