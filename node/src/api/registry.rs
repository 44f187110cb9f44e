//! The command table: `/api/v0/<name>` → handler, and the [`Call`] a handler receives
//! (positional `arg`s, named options, headers, the request body as a stream).
//!
//! Handlers are registered by name with the state they need ([`Commands::add`]); a later
//! registration of the same name replaces the earlier one, so a module can take over a
//! command (a cluster's `pin/add`).
//!
//! A [`Mount`] serves every method under a path outside `/api/v0/` (the cluster's Pinning
//! Service API at `/pins`); it receives the outcome of the API's one auth check, so it
//! answers an unauthorised request in its own error shape.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use super::error::ApiError;

/// The request body, chunk by chunk.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>;

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;
type Handler = Arc<dyn Fn(Call) -> HandlerFuture + Send + Sync>;

/// One request to a command.
pub struct Call {
    /// The `arg` parameters, in order.
    pub args: Vec<String>,
    /// Every other query parameter, in order.
    pub options: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: BodyStream,
}

impl Call {
    /// The `i`-th positional argument, required; `what` names it in the error.
    pub fn arg(&self, i: usize, what: &str) -> Result<&str, ApiError> {
        self.args
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| ApiError::BadRequest(format!("argument {what:?} is required")))
    }

    /// At least one positional argument.
    pub fn required_args(&self, what: &str) -> Result<&[String], ApiError> {
        if self.args.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "argument {what:?} is required"
            )));
        }
        Ok(&self.args)
    }

    /// The last value of option `name`.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean option: `true`/`false` (an empty value means `true`, as in Kubo).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.option(name) {
            None => Ok(default),
            Some("" | "true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ApiError::BadRequest(format!(
                "option {name:?}: {other:?} is not a boolean (true or false)"
            ))),
        }
    }

    /// An option parsed with `FromStr`.
    pub fn parsed<T>(&self, name: &str) -> Result<Option<T>, ApiError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.option(name)
            .map(|v| {
                v.parse().map_err(|e: T::Err| {
                    ApiError::BadRequest(format!("option {name:?}: invalid value {v:?}: {e}"))
                })
            })
            .transpose()
    }
}

/// One request to a [`Mount`]: any method, the full path, the raw query string.
pub struct Mounted {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: BodyStream,
    /// The API's auth check on this request (`Err` when a token was needed and missing).
    pub authorized: Result<(), ApiError>,
}

type MountFuture = Pin<Box<dyn Future<Output = Response> + Send>>;
/// A handler of every request under one path prefix.
pub type Mount = Arc<dyn Fn(Mounted) -> MountFuture + Send + Sync>;

/// The commands the API serves, by name (`pin/add`, `id`, …), and the mounts beside them.
#[derive(Default, Clone)]
pub struct Commands {
    handlers: HashMap<String, Handler>,
    mounts: Vec<(String, Mount)>,
}

impl Commands {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serve `name` by calling `handler(state, call)`.
    pub fn add<S, F, Fut>(&mut self, name: &str, state: &Arc<S>, handler: F)
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response, ApiError>> + Send + 'static,
    {
        let state = Arc::clone(state);
        let handler: Handler = Arc::new(move |call| Box::pin(handler(Arc::clone(&state), call)));
        self.handlers.insert(name.to_owned(), handler);
    }

    /// Serve every request at `prefix` or below it (`/pins`, `/pins/…`) with `handler`.
    pub fn mount<S, F, Fut>(&mut self, prefix: &str, state: &Arc<S>, handler: F)
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, Mounted) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let state = Arc::clone(state);
        let mount: Mount = Arc::new(move |req| Box::pin(handler(Arc::clone(&state), req)));
        self.mounts.retain(|(p, _)| p != prefix);
        self.mounts.push((prefix.to_owned(), mount));
    }

    /// The mount serving `path`, if any.
    pub fn mounted(&self, path: &str) -> Option<&Mount> {
        self.mounts.iter().find_map(|(prefix, mount)| {
            let rest = path.strip_prefix(prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some(mount)
        })
    }

    /// Whether `name` is served.
    pub fn contains(&self, name: &str) -> bool {
        self.handlers.contains_key(name)
    }

    /// Run command `name`.
    pub async fn dispatch(&self, name: &str, call: Call) -> Result<Response, ApiError> {
        let handler = self
            .handlers
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("unknown command {name:?}")))?;
        handler(call).await
    }
}
