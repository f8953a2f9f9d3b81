//! Batches, paging, admin and operational endpoints.

use std::collections::BTreeSet;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{app, put_text, req};

#[tokio::test]
async fn batch_put_and_get() {
    let (app, _) = app();
    let ops = json!({ "operations": [
        { "key": "a", "value": "1" },
        { "key": "b", "value_base64": "Mg", "ttl": 60 },
        { "key": "c", "value": "x", "ttl": u64::MAX },
    ] });
    let put = req(Method::POST, "/api/v1/batch/put").json(ops).send(&app).await.json();
    assert_eq!(put["success_count"], 2);
    assert_eq!(put["failed_keys"], json!(["c"]));
    assert_eq!(put["results"][2]["code"], "RKV-TTL-RANGE");

    let atomic = json!({ "atomic": true, "operations": [
        { "key": "a", "delete": true },
        { "key": "d", "value": "x", "ttl": u64::MAX },
    ] });
    let refused = req(Method::POST, "/api/v1/batch/put").json(atomic).send(&app).await;
    refused.assert_error(StatusCode::BAD_REQUEST, "RKV-TTL-RANGE");

    let get = req(Method::POST, "/api/v1/batch/get").json(json!({ "keys": ["a", "b", "zz"] })).send(&app).await.json();
    let results = get["results"].as_array().cloned().unwrap_or_default();
    let view: Vec<(Value, Value, Value)> =
        results.iter().map(|r| (r["key"].clone(), r["found"].clone(), r["value"].clone())).collect();
    assert_eq!(
        view,
        [
            (json!("a"), json!(true), json!("1")),
            (json!("b"), json!(true), json!("2")),
            (json!("zz"), json!(false), Value::Null)
        ]
    );

    let delete = json!({ "operations": [{ "key": "a", "delete": true }], "atomic": true });
    let deleted = req(Method::POST, "/api/v1/batch/put").json(delete).send(&app).await.json();
    assert_eq!(deleted["success_count"], 1);
    assert_eq!(req(Method::GET, "/api/v1/keys/a").send(&app).await.status, StatusCode::NOT_FOUND);
    let both = json!({ "operations": [{ "key": "a", "delete": true, "value": "x" }] });
    let both = req(Method::POST, "/api/v1/batch/put").json(both).send(&app).await;
    both.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-REQUEST");
}

/// Follows cursors from `first` until the last page; returns every key seen.
async fn walk(app: &Router, first: &str, cursor_field: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut uri = first.to_owned();
    for _ in 0..100 {
        let page = req(Method::GET, &uri).send(app).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let body = page.json();
        keys.extend(body["keys"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)));
        match body[cursor_field].as_str() {
            Some(cursor) => uri = format!("{first}&cursor={cursor}"),
            None => return keys,
        }
    }
    panic!("paging did not finish");
}

#[tokio::test]
async fn list_pages_visit_every_prefixed_key_once() {
    let (app, _) = app();
    for i in 0..25 {
        put_text(&app, &format!("user:{i:02}"), "v").await;
    }
    put_text(&app, "other", "v").await;
    req(Method::DELETE, "/api/v1/keys/user:03").send(&app).await;

    let keys = walk(&app, "/api/v1/keys?prefix=user:&limit=7", "cursor").await;
    let expected: Vec<String> = (0..25).filter(|i| *i != 3).map(|i| format!("user:{i:02}")).collect();
    assert_eq!(keys, expected);

    let page = req(Method::GET, "/api/v1/keys?prefix=user:&limit=2&values=true").send(&app).await.json();
    assert_eq!(page["has_more"], true);
    assert_eq!(page["entries"][0], json!({ "key": "user:00", "value": "v" }));
    let bad = req(Method::GET, "/api/v1/keys?cursor=!!").send(&app).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-CURSOR");
    let bad_limit = req(Method::GET, "/api/v1/keys?limit=-1").send(&app).await;
    bad_limit.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-QUERY");
}

#[tokio::test]
async fn scan_pages_visit_every_key_once() {
    let (app, _) = app();
    for i in 0..30 {
        put_text(&app, &format!("k{i}"), "v").await;
    }
    let keys = walk(&app, "/api/v1/scan?count=4", "next_cursor").await;
    assert_eq!(keys.len(), 30, "{keys:?}");
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), 30);
    let last = req(Method::GET, "/api/v1/scan?count=1000").send(&app).await.json();
    assert_eq!((last["done"].as_bool(), last["next_cursor"].is_null()), (Some(true), true));
}

#[tokio::test]
async fn operational_endpoints() {
    let (app, state) = app();
    put_text(&app, "m", "v").await;
    req(Method::GET, "/api/v1/keys/m?keyspace=nope").send(&app).await;

    let metrics = req(Method::GET, "/metrics").send(&app).await;
    assert!(metrics.header("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains(r#"ringkv_requests_total{api="http",op="put",outcome="ok"} 1"#), "{text}");
    assert!(text.contains(r#"op="get",outcome="RKV-UNKNOWN-KEYSPACE""#), "{text}");

    let health = req(Method::GET, "/healthz").send(&app).await;
    assert_eq!((health.status, &health.body[..]), (StatusCode::OK, &b"ok"[..]));
    assert_eq!(req(Method::GET, "/readyz").send(&app).await.status, StatusCode::SERVICE_UNAVAILABLE);
    state.readiness.set(true);
    let ready = req(Method::GET, "/readyz").send(&app).await;
    assert_eq!((ready.status, &ready.body[..]), (StatusCode::OK, &b"ready"[..]));

    let status = req(Method::GET, "/api/v1/admin/cluster/status").send(&app).await.json();
    assert_eq!(
        status["nodes"][0]["node_id"],
        format!("{:016x}", 1),
        "the host id of a cluster of one (NodeParts::solo)"
    );
    assert_eq!(status["answered_by"], "host-1");
    assert_eq!(status["nodes"][0]["status"], "healthy");
    assert_eq!(status["replication_factor"], 1);
    let keyspaces = req(Method::GET, "/api/v1/admin/keyspaces").send(&app).await.json();
    assert_eq!(keyspaces["keyspaces"][0]["name"], "default");
}

#[tokio::test]
async fn serve_answers_until_cancelled() {
    let (app, _) = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(super::super::serve(listener, app, shutdown.clone()));

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect: {e}"));
    let request = "GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("write: {e}"));
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap_or_else(|e| panic!("read: {e}"));
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("ok"), "{response}");

    shutdown.cancel();
    let done = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(matches!(done, Ok(Ok(Ok(())))), "server did not stop: {done:?}");
}
