//! A small in-memory Kubernetes API server for the reconcile tests (no kube-apiserver can run
//! here). It serves the REST paths of any namespaced resource
//! (`/api/v1/namespaces/NS/PLURAL[/NAME[/SUB]]`, `/apis/G/V/namespaces/NS/...`, and the
//! all-namespaces list/watch forms) from one map of JSON objects, with:
//! - get, list and watch (`?watch=true`: newline-delimited JSON events over a chunked body,
//!   replayed from the given `resourceVersion`), label selectors of the `k=v,k2=v2` form;
//! - create (POST, `generateName`), replace (PUT, `resourceVersion` conflicts → 409);
//! - patches: merge (RFC 7386; strategic merge is treated as merge), JSON patch (RFC 6902), and
//!   server-side apply (`application/apply-patch+yaml`) SIMPLIFIED as: create when absent, else
//!   a deep merge where maps merge and lists are replaced (lists are atomic). Field ownership
//!   is kept per field manager (`?fieldManager=`) and subresource, for apply only: a field a
//!   manager applied before and no longer sends is removed unless another apply manager still
//!   sends it (fields written by merge/JSON patch or PUT are owned by nobody);
//! - the `status` subresource (writes to it change only `.status`; writes to the object keep
//!   the old `.status`), `generation` bumped when anything but metadata/status changes;
//! - the `scale` subresource (GET, PATCH, PUT of an `autoscaling/v1` Scale) of custom
//!   resources whose stored CRD declares one (paths from `subresources.scale`), and of
//!   StatefulSets and Deployments;
//! - delete: with finalizers it sets `deletionTimestamp` and the object goes when the last
//!   finalizer is removed; then every object whose `ownerReferences` name its uid is deleted
//!   too (cascade, like the garbage collector); an object created with owners that are all
//!   gone is deleted at once (the collector's orphan sweep).
//!
//! Not supported: admission, defaulting, validation, `managedFields` in the objects, field
//! ownership of non-apply writes, conflicts between apply managers (every apply is forced).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

type Body = BoxBody<Bytes, Infallible>;

/// `group/version/plural` of a resource.
type ResourceKey = String;

#[derive(Clone, Debug)]
pub struct Change {
    rv: u64,
    kind: &'static str,
    resource: ResourceKey,
    namespace: String,
    object: Value,
}

/// (resource, namespace, name) of a stored object.
type ObjectKey = (ResourceKey, String, String);

#[derive(Default)]
struct State {
    rv: u64,
    uid: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: Vec<Change>,
    /// Leaf paths (JSON pointers; lists count as leaves) each apply manager sent last, per
    /// object and subresource (`""` for the object itself).
    owned: BTreeMap<(ObjectKey, String, String), BTreeSet<String>>,
}

/// Cloneable read access to the stored objects.
#[derive(Clone)]
pub struct Store(Arc<Mutex<State>>);

impl Store {
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        let s = self.0.lock().unwrap();
        s.objects
            .iter()
            .filter(|((r, _, _), _)| r == resource)
            .map(|(_, o)| o.clone())
            .collect()
    }
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Change>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Target {
    resource: ResourceKey,
    api_version: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        rest => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    let api_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(Target {
        resource: format!("{group}/{version}/{plural}"),
        api_version,
        namespace,
        name,
        sub,
    })
}

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    json_response(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code.as_u16()}),
    )
}

fn query_map(q: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn matches_selector(obj: &Value, labels: Option<&String>, fields: Option<&String>) -> bool {
    let pairs = |s: &str| -> Vec<(String, String)> {
        s.split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.trim_end_matches('=').to_string(), v.to_string()))
            })
            .collect()
    };
    let label_ok = labels.is_none_or(|sel| {
        pairs(sel)
            .iter()
            .all(|(k, v)| obj["metadata"]["labels"][k].as_str() == Some(v.as_str()))
    });
    let field_ok = fields.is_none_or(|sel| {
        pairs(sel).iter().all(|(k, v)| match k.as_str() {
            "metadata.name" => obj["metadata"]["name"].as_str() == Some(v.as_str()),
            "metadata.namespace" => obj["metadata"]["namespace"].as_str() == Some(v.as_str()),
            _ => true,
        })
    });
    label_ok && field_ok
}

/// Maps merge recursively, everything else (lists included) is replaced.
fn deep_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => deep_merge(slot, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn without_meta_and_status(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl State {
    fn record(
        &mut self,
        tx: &broadcast::Sender<Change>,
        kind: &'static str,
        resource: &str,
        ns: &str,
        obj: Value,
    ) {
        let change = Change {
            rv: self.rv,
            kind,
            resource: resource.to_string(),
            namespace: ns.to_string(),
            object: obj,
        };
        self.history.push(change.clone());
        let _ = tx.send(change);
    }

    /// True when `obj` names owners and none of them exists.
    fn owners_gone(&self, obj: &Value) -> bool {
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            return false;
        };
        !refs.is_empty()
            && refs.iter().all(|r| {
                !self
                    .objects
                    .values()
                    .any(|o| o["metadata"]["uid"] == r["uid"])
            })
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `obj` as the new state of an existing object (or deletes it if it was being
    /// deleted and lost its last finalizer).
    fn store(
        &mut self,
        tx: &broadcast::Sender<Change>,
        key: (ResourceKey, String, String),
        mut obj: Value,
    ) -> Value {
        // Like the API server, a write that changes nothing keeps the resourceVersion and
        // sends no watch event.
        if let Some(old) = self.objects.get(&key) {
            let mut same = obj.clone();
            same["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
            if &same == old {
                return same;
            }
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let deleting = !obj["metadata"]["deletionTimestamp"].is_null();
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if deleting && !finalizers {
            self.remove(tx, &key);
            return obj;
        }
        self.objects.insert(key.clone(), obj.clone());
        self.record(tx, "MODIFIED", &key.0, &key.1, obj.clone());
        obj
    }

    fn remove(&mut self, tx: &broadcast::Sender<Change>, key: &(ResourceKey, String, String)) {
        let Some(mut obj) = self.objects.remove(key) else {
            return;
        };
        self.owned.retain(|(k, _, _), _| k != key);
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_string();
        self.record(tx, "DELETED", &key.0, &key.1, obj);
        // Garbage collection of dependents.
        let dependents: Vec<_> = self
            .objects
            .iter()
            .filter(|(_, o)| {
                o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| {
                        refs.iter().any(|r| r["uid"].as_str() == Some(uid.as_str()))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependents {
            self.delete(tx, &k);
        }
    }

    fn delete(
        &mut self,
        tx: &broadcast::Sender<Change>,
        key: &(ResourceKey, String, String),
    ) -> Option<Value> {
        let obj = self.objects.get(key)?.clone();
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            if obj["metadata"]["deletionTimestamp"].is_null() {
                let mut obj = obj;
                obj["metadata"]["deletionTimestamp"] = json!(now());
                return Some(self.store(tx, key.clone(), obj));
            }
            return Some(obj);
        }
        self.remove(tx, key);
        Some(obj)
    }
}

impl FakeApiServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (changes, _) = broadcast::channel(65536);
        let (st, tx) = (state.clone(), changes.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, tx) = (st.clone(), tx.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (st, tx) = (st.clone(), tx.clone());
                        async move { Ok::<_, Infallible>(handle(req, &st, &tx).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            changes,
            task,
        }
    }

    /// A client of this server, defaulting to `namespace`.
    pub fn client(&self, namespace: &str) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        config.default_namespace = namespace.to_string();
        kube::Client::try_from(config).unwrap()
    }

    /// A read handle on the store (for the test kubelet).
    pub fn store(&self) -> Store {
        Store(self.state.clone())
    }

    /// Every stored object of `resource` (`group/version/plural`), for assertions.
    pub fn objects(&self, resource: &str) -> Vec<Value> {
        self.store().objects(resource)
    }

    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let s = self.state.lock().unwrap();
        s.objects
            .get(&(
                resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
            .cloned()
    }

    /// Number of watch events sent so far (for "no hot loop" checks).
    pub fn history_len(&self) -> usize {
        self.state.lock().unwrap().history.len()
    }

    /// Every version of `resource`'s objects written so far (event kind, object), oldest
    /// first: what a watch from the beginning would have seen.
    pub fn history(&self, resource: &str) -> Vec<(&'static str, Value)> {
        let s = self.state.lock().unwrap();
        s.history
            .iter()
            .filter(|c| c.resource == resource)
            .map(|c| (c.kind, c.object.clone()))
            .collect()
    }

    #[allow(dead_code)]
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

async fn handle(
    req: Request<Incoming>,
    st: &Arc<Mutex<State>>,
    tx: &broadcast::Sender<Change>,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let q = query_map(req.uri().query());
    let ctype = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
    };
    let Some(t) = parse_path(&path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no route {path}"),
        );
    };
    let parse = |b: &Bytes| -> Result<Value, String> {
        if ctype.starts_with("application/apply-patch+yaml") {
            yaml_serde::from_slice(b).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(b).map_err(|e| e.to_string())
        }
    };
    if t.sub.as_deref() == Some("scale") {
        return scale(&method, &t, &ctype, &body, st, tx);
    }
    match (method, t.name.clone()) {
        (Method::GET, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(st, tx, &t, &q)
        }
        (Method::GET, None) => {
            let s = st.lock().unwrap();
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((r, ns, _), o)| {
                    *r == t.resource
                        && t.namespace.as_ref().is_none_or(|n| n == ns)
                        && matches_selector(o, q.get("labelSelector"), q.get("fieldSelector"))
                })
                .map(|(_, o)| o.clone())
                .collect();
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": t.api_version, "kind": "List",
                        "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}),
            )
        }
        (Method::GET, Some(name)) => {
            let s = st.lock().unwrap();
            let key = (
                t.resource.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            match s.objects.get(&key) {
                Some(o) => json_response(StatusCode::OK, o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name:?} not found", t.resource),
                ),
            }
        }
        (Method::POST, None) => {
            let mut obj = match parse(&body) {
                Ok(v) => v,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e),
            };
            let mut s = st.lock().unwrap();
            let ns = t.namespace.clone().unwrap_or_default();
            let name = match obj["metadata"]["name"].as_str() {
                Some(n) => n.to_string(),
                None => {
                    let prefix = obj["metadata"]["generateName"]
                        .as_str()
                        .unwrap_or("obj-")
                        .to_string();
                    s.uid += 1;
                    format!("{prefix}{:05}", s.uid)
                }
            };
            let key = (t.resource.clone(), ns.clone(), name.clone());
            if s.objects.contains_key(&key) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{name:?} already exists"),
                );
            }
            create(&mut s, tx, key, &mut obj, &ns, &name);
            json_response(StatusCode::CREATED, &obj)
        }
        (Method::PUT, Some(name)) => {
            let new = match parse(&body) {
                Ok(v) => v,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e),
            };
            let mut s = st.lock().unwrap();
            let key = (
                t.resource.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            let Some(old) = s.objects.get(&key).cloned() else {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{name:?} not found"),
                );
            };
            if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
                && Some(rv) != old["metadata"]["resourceVersion"].as_str()
            {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    format!("{name:?} was modified"),
                );
            }
            let obj = update(&old, new, t.sub.as_deref());
            let obj = s.store(tx, key, obj);
            json_response(StatusCode::OK, &obj)
        }
        (Method::PATCH, Some(name)) => {
            let mut s = st.lock().unwrap();
            let ns = t.namespace.clone().unwrap_or_default();
            let key = (t.resource.clone(), ns.clone(), name.clone());
            let old = s.objects.get(&key).cloned();
            let result = if ctype.starts_with("application/apply-patch+yaml") {
                let manager = q.get("fieldManager").cloned().unwrap_or_default();
                let sub = t.sub.clone().unwrap_or_default();
                let owner = (key.clone(), manager, sub);
                match parse(&body) {
                    Ok(applied) => {
                        let sent = applied_paths(&applied, &owner.2);
                        match &old {
                            None if t.sub.is_none() => {
                                let mut obj = applied;
                                s.owned.insert(owner, sent);
                                create(&mut s, tx, key, &mut obj, &ns, &name);
                                return json_response(StatusCode::CREATED, &obj);
                            }
                            None => Err((StatusCode::NOT_FOUND, format!("{name:?} not found"))),
                            Some(old) => {
                                let mut merged = old.clone();
                                for path in s.dropped_fields(&owner, &sent) {
                                    remove_path(&mut merged, &pointer_tokens(&path));
                                }
                                deep_merge(&mut merged, &applied);
                                s.owned.insert(owner, sent);
                                Ok(merged)
                            }
                        }
                    }
                    Err(e) => Err((StatusCode::BAD_REQUEST, e)),
                }
            } else {
                let Some(old) = &old else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{} {name:?} not found", t.resource),
                    );
                };
                let mut doc = old.clone();
                if ctype.starts_with("application/json-patch+json") {
                    match serde_json::from_slice::<json_patch::Patch>(&body) {
                        Ok(p) => null_tests(&doc, p.0)
                            .and_then(|ops| {
                                json_patch::patch(&mut doc, &ops).map_err(|e| e.to_string())
                            })
                            .map(|_| doc)
                            .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e)),
                        Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
                    }
                } else {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(p) => {
                            json_patch::merge(&mut doc, &p);
                            Ok(doc)
                        }
                        Err(e) => Err((StatusCode::BAD_REQUEST, e.to_string())),
                    }
                }
            };
            match result {
                Ok(new) => {
                    let old = old.unwrap_or(Value::Null);
                    let obj = update(&old, new, t.sub.as_deref());
                    let obj = s.store(tx, key, obj);
                    json_response(StatusCode::OK, &obj)
                }
                Err((code, msg)) => status(code, "Invalid", msg),
            }
        }
        (Method::DELETE, Some(name)) => {
            let mut s = st.lock().unwrap();
            let key = (
                t.resource.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            match s.delete(tx, &key) {
                Some(o) => json_response(StatusCode::OK, &o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} {name:?} not found", t.resource),
                ),
            }
        }
        (m, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{m} {path}"),
        ),
    }
}

impl State {
    /// Fields `owner` applied last time, does not send now (`sent`), and no other apply
    /// manager of the same object and subresource sends: server-side apply removes them.
    fn dropped_fields(
        &self,
        owner: &(ObjectKey, String, String),
        sent: &BTreeSet<String>,
    ) -> Vec<String> {
        let (key, manager, sub) = owner;
        let Some(before) = self.owned.get(owner) else {
            return Vec::new();
        };
        let others: BTreeSet<&String> = self
            .owned
            .iter()
            .filter(|((k, m, s), _)| k == key && s == sub && m != manager)
            .flat_map(|(_, paths)| paths)
            .collect();
        before
            .iter()
            .filter(|p| !sent.contains(*p) && !others.contains(p))
            .cloned()
            .collect()
    }
}

/// The leaf fields of an applied object as JSON pointers (maps are walked, lists and scalars
/// are leaves), limited to what an applier owns: under `/status` for the status subresource,
/// else everything but `/status` and the server-owned metadata.
fn applied_paths(applied: &Value, sub: &str) -> BTreeSet<String> {
    fn walk(v: &Value, at: String, out: &mut BTreeSet<String>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    let token = k.replace('~', "~0").replace('/', "~1");
                    walk(child, format!("{at}/{token}"), out);
                }
            }
            _ => {
                out.insert(at);
            }
        }
    }
    let mut all = BTreeSet::new();
    walk(applied, String::new(), &mut all);
    let owned_metadata = [
        "/metadata/labels/",
        "/metadata/annotations/",
        "/metadata/ownerReferences",
        "/metadata/finalizers",
    ];
    all.into_iter()
        .filter(|p| match sub {
            "status" => p.starts_with("/status/") || p == "/status",
            _ => {
                !(p.starts_with("/status") || p == "/apiVersion" || p == "/kind")
                    && (!p.starts_with("/metadata/")
                        || owned_metadata.iter().any(|m| p.starts_with(m)))
            }
        })
        .collect()
}

fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Removes the field at `tokens`, and the maps left empty on the way up. Returns whether `v`
/// itself is now an empty map.
fn remove_path(v: &mut Value, tokens: &[String]) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return false;
    };
    let Some(map) = v.as_object_mut() else {
        return false;
    };
    let emptied = if rest.is_empty() {
        map.remove(first).is_some()
    } else {
        let child_emptied = map.get_mut(first).is_some_and(|c| remove_path(c, rest));
        child_emptied && map.remove(first).is_some()
    };
    emptied && map.is_empty()
}

/// JSON pointer of a CRD's `.spec.replicas`-style path.
fn json_path_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// (spec replicas, status replicas, label selector) pointers of `resource`'s scale
/// subresource, from its stored CRD or the built-in workload kinds.
fn scale_paths(s: &State, resource: &str) -> Option<(String, String, Option<String>)> {
    if resource == "apps/v1/statefulsets" || resource == "apps/v1/deployments" {
        return Some(("/spec/replicas".into(), "/status/replicas".into(), None));
    }
    let mut parts = resource.splitn(3, '/');
    let (group, version, plural) = (parts.next()?, parts.next()?, parts.next()?);
    let crd = s.objects.iter().find_map(|((r, _, _), o)| {
        (r == "apiextensions.k8s.io/v1/customresourcedefinitions"
            && o["spec"]["group"] == json!(group)
            && o["spec"]["names"]["plural"] == json!(plural))
        .then_some(o)
    })?;
    let version = crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == json!(version))?;
    let scale = version["subresources"]["scale"].as_object()?;
    let path = |k: &str| scale.get(k).and_then(Value::as_str).map(json_path_pointer);
    Some((
        path("specReplicasPath")?,
        path("statusReplicasPath")?,
        path("labelSelectorPath"),
    ))
}

/// GET, PATCH (merge or JSON patch) and PUT of `.../NAME/scale`.
fn scale(
    method: &Method,
    t: &Target,
    ctype: &str,
    body: &Bytes,
    st: &Arc<Mutex<State>>,
    tx: &broadcast::Sender<Change>,
) -> Response<Body> {
    let mut s = st.lock().unwrap();
    let name = t.name.clone().unwrap_or_default();
    let key = (
        t.resource.clone(),
        t.namespace.clone().unwrap_or_default(),
        name.clone(),
    );
    let Some(old) = s.objects.get(&key).cloned() else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} {name:?} not found", t.resource),
        );
    };
    let Some((spec_path, status_path, selector_path)) = scale_paths(&s, &t.resource) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{} has no scale subresource", t.resource),
        );
    };
    let view = |obj: &Value| {
        let m = &obj["metadata"];
        let mut status = json!({
            "replicas": obj.pointer(&status_path).cloned().unwrap_or(json!(0)),
        });
        if let Some(sel) = selector_path.as_ref().and_then(|p| obj.pointer(p)) {
            status["selector"] = sel.clone();
        }
        json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                         "resourceVersion": m["resourceVersion"],
                         "creationTimestamp": m["creationTimestamp"]},
            "spec": {"replicas": obj.pointer(&spec_path).cloned().unwrap_or(json!(0))},
            "status": status,
        })
    };
    let current = view(&old);
    let wanted = match *method {
        Method::GET => return json_response(StatusCode::OK, &current),
        Method::PUT => serde_json::from_slice::<Value>(body).map_err(|e| e.to_string()),
        Method::PATCH if ctype.starts_with("application/json-patch+json") => {
            serde_json::from_slice::<json_patch::Patch>(body)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    let mut doc = current.clone();
                    json_patch::patch(&mut doc, &p).map_err(|e| e.to_string())?;
                    Ok(doc)
                })
        }
        Method::PATCH => serde_json::from_slice::<Value>(body)
            .map(|p| {
                let mut doc = current.clone();
                json_patch::merge(&mut doc, &p);
                doc
            })
            .map_err(|e| e.to_string()),
        ref m => {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{m} on scale"),
            );
        }
    };
    let replicas = match wanted.map(|w| w["spec"]["replicas"].as_i64()) {
        Ok(Some(n)) if n >= 0 => n,
        Ok(_) => {
            return status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "spec.replicas must be a non-negative integer".into(),
            );
        }
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e),
    };
    let mut obj = old.clone();
    let tokens = pointer_tokens(&spec_path);
    let mut slot = &mut obj;
    for token in &tokens {
        slot = &mut slot[token.as_str()];
    }
    *slot = json!(replicas);
    let obj = update(&old, obj, None);
    let obj = s.store(tx, key, obj);
    json_response(StatusCode::OK, &view(&obj))
}

/// The API server's JSON patch treats `{"op":"test","value":null}` on an absent path as a
/// match (kube's finalizer helper relies on it); the `json_patch` crate calls that path invalid.
/// Such tests are checked here and dropped; the rest is applied by `json_patch`.
fn null_tests(
    doc: &Value,
    ops: Vec<json_patch::PatchOperation>,
) -> Result<Vec<json_patch::PatchOperation>, String> {
    let mut kept = Vec::new();
    for op in ops {
        if let json_patch::PatchOperation::Test(t) = &op
            && t.value.is_null()
        {
            let current = doc.pointer(&t.path.to_string()).unwrap_or(&Value::Null);
            if !current.is_null() {
                return Err(format!("test failed at {}: {current} is not null", t.path));
            }
            continue;
        }
        kept.push(op);
    }
    Ok(kept)
}

fn create(
    s: &mut State,
    tx: &broadcast::Sender<Change>,
    key: (ResourceKey, String, String),
    obj: &mut Value,
    ns: &str,
    name: &str,
) {
    s.uid += 1;
    let rv = s.next_rv();
    let meta = &mut obj["metadata"];
    meta["name"] = json!(name);
    if !ns.is_empty() {
        meta["namespace"] = json!(ns);
    }
    meta["uid"] = json!(format!("uid-{:06}", s.uid));
    meta["resourceVersion"] = json!(rv.to_string());
    meta["creationTimestamp"] = json!(now());
    meta["generation"] = json!(1);
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    s.objects.insert(key.clone(), obj.clone());
    s.record(tx, "ADDED", &key.0, &key.1, obj.clone());
    // The garbage collector deletes an object whose owners are all gone, e.g. one a controller
    // created from a stale view after its owner was deleted.
    if s.owners_gone(obj) {
        s.delete(tx, &key);
    }
}

/// The stored form of a write: through `/status` only `.status` changes; otherwise
/// everything but `.status` and the server-owned metadata.
fn update(old: &Value, mut new: Value, sub: Option<&str>) -> Value {
    if sub == Some("status") {
        let mut obj = old.clone();
        obj["status"] = new["status"].take();
        return obj;
    }
    for key in [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
    ] {
        new["metadata"][key] = old["metadata"][key].clone();
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    match old.get("status") {
        Some(s) => new["status"] = s.clone(),
        None => {
            if let Some(m) = new.as_object_mut() {
                m.remove("status");
            }
        }
    }
    if without_meta_and_status(old) != without_meta_and_status(&new) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(1);
        new["metadata"]["generation"] = json!(g + 1);
    }
    new
}

fn watch(
    st: &Arc<Mutex<State>>,
    tx: &broadcast::Sender<Change>,
    t: &Target,
    q: &BTreeMap<String, String>,
) -> Response<Body> {
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let labels = q.get("labelSelector").cloned();
    let fields = q.get("fieldSelector").cloned();
    let (resource, namespace) = (t.resource.clone(), t.namespace.clone());
    let wanted = move |c: &Change| {
        c.resource == resource
            && namespace.as_ref().is_none_or(|n| *n == c.namespace)
            && matches_selector(&c.object, labels.as_ref(), fields.as_ref())
    };
    let (backlog, mut rx) = {
        let s = st.lock().unwrap();
        let backlog: Vec<(&'static str, Value)> = if from == 0 {
            s.objects
                .iter()
                .map(|((r, ns, _), o)| Change {
                    rv: 0,
                    kind: "ADDED",
                    resource: r.clone(),
                    namespace: ns.clone(),
                    object: o.clone(),
                })
                .filter(&wanted)
                .map(|c| (c.kind, c.object))
                .collect()
        } else {
            s.history
                .iter()
                .filter(|c| c.rv > from && wanted(c))
                .map(|c| (c.kind, c.object.clone()))
                .collect()
        };
        (backlog, tx.subscribe())
    };
    let (out, body_rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    tokio::spawn(async move {
        let line = |kind: &str, obj: Value| {
            Ok(Frame::data(Bytes::from(format!(
                "{}\n",
                json!({"type": kind, "object": obj})
            ))))
        };
        for (kind, obj) in backlog {
            if out.send(line(kind, obj)).await.is_err() {
                return;
            }
        }
        loop {
            match rx.recv().await {
                Ok(c) if wanted(&c) => {
                    if out.send(line(c.kind, c.object)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Lagged or closed: end the stream; the client watches again.
                Err(_) => return,
            }
        }
    });
    let stream =
        futures::stream::unfold(
            body_rx,
            |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
        );
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
