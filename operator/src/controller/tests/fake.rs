//! The fake API server (objects by path, every request recorded with its
//! parsed body) and fakes of the Admin API and the metrics scraper.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use crate::admin::{AdminError, NodeAdmin};
use crate::autoscale::scrape::{MetricsScraper, NodeSample};
use crate::plan::NodeObserved;

#[derive(Debug, Clone)]
pub(super) struct Recorded {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) content_type: String,
    pub(super) body: Value,
    /// The body as sent (for byte-for-byte comparisons).
    pub(super) raw: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct FakeApi {
    pub(super) objects: Mutex<BTreeMap<String, Value>>,
    pub(super) requests: Mutex<Vec<Recorded>>,
    /// `"METHOD path"` answered with this error code instead.
    pub(super) failures: Mutex<BTreeMap<String, u16>>,
}

const COLLECTIONS: &[&str] = &[
    "pods",
    "persistentvolumeclaims",
    "statefulsets",
    "nodes",
    "configmaps",
    "services",
    "secrets",
    "persistentvolumes",
];

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = code;
    r
}

fn not_found() -> Response<Body> {
    respond(
        StatusCode::NOT_FOUND,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

impl FakeApi {
    pub(super) fn put(&self, path: &str, obj: Value) {
        self.objects.lock().expect("lock").insert(path.into(), obj);
    }

    pub(super) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    pub(super) fn find(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == method && r.path == path).collect()
    }

    /// Makes every `method` on `path` fail with `code`.
    pub(super) fn fail(&self, method: &str, path: &str, code: u16) {
        self.failures.lock().expect("lock").insert(format!("{method} {path}"), code);
    }

    fn handle(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Response<Body> {
        if let Some(code) = self.failures.lock().expect("lock").get(&format!("{method} {path}")) {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return respond(
                status,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": code, "message": format!("fake: {method} refused")}),
            );
        }
        let mut objects = self.objects.lock().expect("lock");
        let last = path.rsplit('/').next().unwrap_or_default();
        match method {
            "GET" if objects.contains_key(path) => respond(StatusCode::OK, &objects[path]),
            "GET" if COLLECTIONS.contains(&last) => {
                let prefix = format!("{path}/");
                let items: Vec<Value> = objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .map(|(_, v)| v.clone())
                    .collect();
                respond(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            "GET" => not_found(),
            "POST" => {
                let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("generated");
                objects.insert(format!("{path}/{name}"), body.clone());
                respond(StatusCode::CREATED, body)
            }
            "DELETE" => match objects.remove(path) {
                Some(obj) => respond(StatusCode::OK, &obj),
                None => not_found(),
            },
            "PATCH" if path.ends_with("/scale") => {
                let replicas = body.pointer("/spec/replicas").cloned().unwrap_or(Value::Null);
                respond(
                    StatusCode::OK,
                    &json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "kv"}, "spec": {"replicas": replicas}, "status": {"replicas": 3}}),
                )
            }
            "PATCH" if path.ends_with("/status") => {
                let Some(obj) = objects.get_mut(path.trim_end_matches("/status")) else { return not_found() };
                merge(obj, body);
                respond(StatusCode::OK, obj)
            }
            "PATCH" if content_type.contains("json-patch") => {
                let Some(obj) = objects.get_mut(path) else { return not_found() };
                for op in body.as_array().into_iter().flatten() {
                    let (kind, at) = (op["op"].as_str().unwrap_or(""), op["path"].as_str().unwrap_or(""));
                    match (kind, at) {
                        ("add", "/metadata/finalizers") => obj["metadata"]["finalizers"] = op["value"].clone(),
                        ("add", "/metadata/finalizers/-") => {
                            if let Some(list) = obj["metadata"]["finalizers"].as_array_mut() {
                                list.push(op["value"].clone());
                            }
                        }
                        ("remove", p) if p.starts_with("/metadata/finalizers/") => {
                            let i: usize = p.rsplit('/').next().and_then(|i| i.parse().ok()).unwrap_or(0);
                            if let Some(list) = obj["metadata"]["finalizers"].as_array_mut() {
                                list.remove(i);
                            }
                        }
                        _ => {}
                    }
                }
                respond(StatusCode::OK, obj)
            }
            "PATCH" => {
                // Server-side apply: the applied object becomes the stored one (status kept).
                let mut obj = body.clone();
                if let Some(status) = objects.get(path).and_then(|o| o.get("status")) {
                    obj["status"] = status.clone();
                }
                objects.insert(path.into(), obj.clone());
                respond(StatusCode::OK, &obj)
            }
            _ => not_found(),
        }
    }
}

/// Serves `api` on a mocked tower service; returns a client.
pub(super) fn serve(api: Arc<FakeApi>) -> Client {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut handle = std::pin::pin!(handle);
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let content_type =
                req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let response = api.handle(&method, &path, &content_type, &body);
            let raw = bytes.to_vec();
            api.requests.lock().expect("lock").push(Recorded { method, path, content_type, body, raw });
            send.send_response(response);
        }
    });
    Client::new(service, "db")
}

/// The Admin API of a fake cluster. Like a real node, it refuses a
/// `Decommission` for any host but the one at that endpoint.
#[derive(Debug, Default)]
pub(super) struct FakeAdmin {
    /// What every endpoint answers to ClusterStatus, unless `views` says otherwise.
    pub(super) nodes: Option<Vec<NodeObserved>>,
    /// ClusterStatus by endpoint (one node's own view of the membership).
    pub(super) views: BTreeMap<String, Vec<NodeObserved>>,
    /// Endpoints that do not answer.
    pub(super) unreachable: Vec<String>,
    /// Every Decommission call: (endpoint, host id), refused ones included.
    pub(super) decommissioned: Mutex<Vec<(String, String)>>,
}

impl FakeAdmin {
    /// The endpoint of the node `host_id` itself (its advertised gRPC address).
    fn own_endpoint(&self, host_id: &str) -> Option<String> {
        let n = self.nodes.iter().flatten().find(|n| n.host_id == host_id)?;
        Some(format!("http://{}", n.grpc_addr))
    }
}

impl NodeAdmin for FakeAdmin {
    fn cluster_status<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<Vec<NodeObserved>, AdminError>> {
        let unreachable = |reason: &str| AdminError::Unreachable { endpoint: endpoint.into(), reason: reason.into() };
        let r = if self.unreachable.iter().any(|e| e == endpoint) {
            Err(unreachable("fake: connection refused"))
        } else {
            self.views.get(endpoint).cloned().or_else(|| self.nodes.clone()).ok_or(unreachable("fake: no cluster"))
        };
        Box::pin(async move { r })
    }
    fn decommission<'a>(&'a self, endpoint: &'a str, host_id: &'a str) -> BoxFuture<'a, Result<(), AdminError>> {
        self.decommissioned.lock().expect("lock").push((endpoint.into(), host_id.into()));
        let r = if self.own_endpoint(host_id).as_deref() == Some(endpoint) {
            Ok(())
        } else {
            Err(AdminError::Call {
                call: "Decommission",
                endpoint: endpoint.into(),
                code: "FailedPrecondition".into(),
                message: "[RKV-TOPOLOGY-PRECONDITION] a node decommissions itself; send it to that node".into(),
            })
        };
        Box::pin(async move { r })
    }
}

#[derive(Debug)]
pub(super) struct FakeScraper(pub(super) NodeSample);

impl MetricsScraper for FakeScraper {
    fn scrape<'a>(&'a self, _ip: &'a str) -> BoxFuture<'a, Option<NodeSample>> {
        let s = self.0;
        Box::pin(async move { Some(s) })
    }
}
