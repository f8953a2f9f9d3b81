//! Single-key endpoints and input errors.

use http::{Method, StatusCode};
use serde_json::json;

use super::{MAX_VALUE, app, put_text, req};

#[tokio::test]
async fn put_get_head_delete_round_trip() {
    let (app, _) = app();
    let put = put_text(&app, "user:1", "alice").await;
    assert_eq!(put.status, StatusCode::OK);
    let body = put.json();
    assert_eq!((body["key"].as_str(), body["status"].as_str()), (Some("user:1"), Some("success")));
    assert!(body["timestamp"].as_i64().unwrap_or_default() > 1_600_000_000_000_000, "µs: {body}");
    assert_eq!(put.header("x-causal-context"), body["context"].as_str());

    let got = req(Method::GET, "/api/v1/keys/user:1").send(&app).await;
    assert_eq!(got.status, StatusCode::OK);
    let body = got.json();
    assert_eq!((body["value"].as_str(), body["version"].as_u64()), (Some("alice"), Some(1)));
    assert!(body.get("ttl_remaining").is_none());
    assert!(got.header("x-causal-context").is_some());

    let raw = req(Method::GET, "/api/v1/keys/user:1?raw=true").send(&app).await;
    assert_eq!((raw.status, &raw.body[..]), (StatusCode::OK, &b"alice"[..]));
    let accept = req(Method::GET, "/api/v1/keys/user:1").header("accept", "application/octet-stream").send(&app).await;
    assert_eq!(&accept.body[..], b"alice");

    assert_eq!(req(Method::HEAD, "/api/v1/keys/user:1").send(&app).await.status, StatusCode::OK);
    let deleted = req(Method::DELETE, "/api/v1/keys/user:1").send(&app).await;
    assert_eq!(deleted.json()["deleted"], true);
    let again = req(Method::DELETE, "/api/v1/keys/user:1").send(&app).await;
    assert_eq!(again.json()["deleted"], false);

    let head = req(Method::HEAD, "/api/v1/keys/user:1").send(&app).await;
    assert_eq!((head.status, head.body.len()), (StatusCode::NOT_FOUND, 0));
    let missing = req(Method::GET, "/api/v1/keys/user:1").send(&app).await;
    missing.assert_error(StatusCode::NOT_FOUND, "RKV-NOT-FOUND");
    assert_eq!(missing.json()["key"], "user:1");
}

#[tokio::test]
async fn raw_put_with_ttl_and_binary_values() {
    let (app, _) = app();
    let put = req(Method::PUT, "/api/v1/keys/bin?ttl=60").raw(vec![0xffu8, 0x00, 0x01]).send(&app).await;
    assert_eq!(put.status, StatusCode::OK);
    let body = req(Method::GET, "/api/v1/keys/bin").send(&app).await.json();
    assert_eq!(body["value_base64"], "_wAB");
    assert!(body.get("value").is_none());
    let ttl = body["ttl_remaining"].as_i64().unwrap_or_default();
    assert!((59..=60).contains(&ttl), "{body}");

    let b64 = req(Method::PUT, "/api/v1/keys/b").json(json!({ "value_base64": "aGk" })).send(&app).await;
    assert_eq!(b64.status, StatusCode::OK);
    assert_eq!(req(Method::GET, "/api/v1/keys/b").send(&app).await.json()["value"], "hi");
    let bad = req(Method::PUT, "/api/v1/keys/b").json(json!({ "value_base64": "***" })).send(&app).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-BASE64");
    let both = req(Method::PUT, "/api/v1/keys/b").json(json!({ "value": "x", "value_base64": "eA" })).send(&app).await;
    both.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-REQUEST");
}

#[tokio::test]
async fn concurrent_writes_with_a_stale_context_give_siblings() {
    let (app, _) = app();
    let first = put_text(&app, "k", "v1").await.json();
    let stale = first["context"].as_str().unwrap_or_default().to_owned();
    for value in ["v2", "v3"] {
        let body = json!({ "value": value, "context": stale });
        let put = req(Method::PUT, "/api/v1/keys/k").json(body).send(&app).await;
        assert_eq!(put.status, StatusCode::OK);
    }
    let got = req(Method::GET, "/api/v1/keys/k").send(&app).await;
    assert_eq!(got.status, StatusCode::MULTIPLE_CHOICES);
    let body = got.json();
    let values: Vec<&str> =
        body["siblings"].as_array().into_iter().flatten().filter_map(|s| s["value"].as_str()).collect();
    assert_eq!(values, ["v2", "v3"]);

    // Writing back with the merged context (header form) resolves the conflict.
    let merged = got.header("x-causal-context").unwrap_or_default().to_owned();
    let put = req(Method::PUT, "/api/v1/keys/k").header("x-causal-context", &merged).raw("v4").send(&app).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(req(Method::GET, "/api/v1/keys/k").send(&app).await.json()["value"], "v4");
}

#[tokio::test]
async fn if_not_exists_answers_412_when_present() {
    let (app, _) = app();
    let body = json!({ "value": "a", "if_not_exists": true });
    assert_eq!(req(Method::PUT, "/api/v1/keys/once").json(body.clone()).send(&app).await.status, StatusCode::OK);
    let second = req(Method::PUT, "/api/v1/keys/once").json(body).send(&app).await;
    assert_eq!(second.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(second.json()["status"], "exists");
    let raw = req(Method::PUT, "/api/v1/keys/once?if_not_exists=true").raw("b").send(&app).await;
    assert_eq!(raw.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn oversize_keys_values_and_bodies_are_413_naming_the_limit() {
    let (app, _) = app();
    let key = "k".repeat(1025);
    let msg = put_text(&app, &key, "v").await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "RKV-KEY-TOO-LARGE");
    assert!(msg.contains("1024") && msg.contains("server.max_key_bytes"), "{msg}");

    let value = "v".repeat(MAX_VALUE + 1);
    let raw = req(Method::PUT, "/api/v1/keys/big").raw(value.clone()).send(&app).await;
    let msg = raw.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "RKV-VALUE-TOO-LARGE");
    assert!(msg.contains("server.max_value_bytes"), "{msg}");
    put_text(&app, "big", &value).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "RKV-VALUE-TOO-LARGE");

    let huge = vec![b'x'; 200 * 1024];
    let body = req(Method::PUT, "/api/v1/keys/big").header("content-length", "204800").raw(huge).send(&app).await;
    let msg = body.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "RKV-BODY-TOO-LARGE");
    assert!(msg.contains("204800 bytes") && msg.contains("server.max_value_bytes"), "{msg}");
}

#[tokio::test]
async fn malformed_input_is_a_json_400() {
    let (app, _) = app();
    let put =
        |body: &'static str| req(Method::PUT, "/api/v1/keys/k").header("content-type", "application/json").raw(body);
    let msg = put("{\"value\": ").send(&app).await.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-JSON");
    assert!(msg.contains("EOF"), "{msg}");
    let msg = put("{\"valeu\": \"x\"}").send(&app).await.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-JSON");
    assert!(msg.contains("valeu"), "{msg}");
    put("").send(&app).await.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-JSON");

    let empty = req(Method::GET, "/api/v1/keys/").send(&app).await;
    empty.assert_error(StatusCode::BAD_REQUEST, "RKV-EMPTY-KEY");
    let ks = req(Method::GET, "/api/v1/keys/k?keyspace=nope").send(&app).await;
    ks.assert_error(StatusCode::BAD_REQUEST, "RKV-UNKNOWN-KEYSPACE");
    let typo = req(Method::GET, "/api/v1/keys/k?keyspce=x").send(&app).await;
    typo.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-QUERY");
    let ttl = req(Method::PUT, "/api/v1/keys/k?ttl=soon").raw("v").send(&app).await;
    ttl.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-QUERY");
    let range = req(Method::PUT, "/api/v1/keys/k").json(json!({ "value": "v", "ttl": u64::MAX })).send(&app).await;
    range.assert_error(StatusCode::BAD_REQUEST, "RKV-TTL-RANGE");
    let negative = req(Method::PUT, "/api/v1/keys/k").json(json!({ "value": "v", "ttl": -1 })).send(&app).await;
    negative.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-JSON");
    let ctx = req(Method::DELETE, "/api/v1/keys/k?context=AAAA").send(&app).await;
    ctx.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-CONTEXT");
    let non_utf8 = req(Method::GET, "/api/v1/keys/%FF").send(&app).await;
    non_utf8.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-PATH");
    req(Method::GET, "/api/v2/nothing").send(&app).await.assert_error(StatusCode::NOT_FOUND, "RKV-NO-ROUTE");
    let method = req(Method::PATCH, "/api/v1/keys/k").send(&app).await;
    method.assert_error(StatusCode::METHOD_NOT_ALLOWED, "RKV-METHOD-NOT-ALLOWED");
}

#[tokio::test]
async fn consistency_level_header_is_checked() {
    let (app, _) = app();
    let ok = req(Method::GET, "/api/v1/keys/k").header("consistency-level", "one").send(&app).await;
    assert_eq!(ok.status, StatusCode::NOT_FOUND);
    let quorum = req(Method::PUT, "/api/v1/keys/k").header("Consistency-Level", "QUORUM").raw("v").send(&app).await;
    assert_eq!(quorum.status, StatusCode::OK);
    let unknown = req(Method::GET, "/api/v1/keys/k").header("consistency-level", "EVENTUAL").send(&app).await;
    let msg = unknown.assert_error(StatusCode::BAD_REQUEST, "RKV-UNKNOWN-CONSISTENCY");
    assert!(msg.contains("EVENTUAL") && msg.contains("QUORUM") && msg.contains("LOCAL_QUORUM"), "{msg}");
    let too_many = req(Method::PUT, "/api/v1/keys/k").header("consistency-level", "w=2").raw("v").send(&app).await;
    too_many.assert_error(StatusCode::BAD_REQUEST, "RKV-CONSISTENCY");
}

#[tokio::test]
async fn compare_and_set_applies_or_reports_the_current_value() {
    let (app, _) = app();
    let cas = |body| req(Method::POST, "/api/v1/keys/c/cas").json(body);
    let created = cas(json!({ "expect_absent": true, "new_value": "1" })).send(&app).await;
    assert_eq!((created.status, created.json()["success"].as_bool()), (StatusCode::OK, Some(true)));
    let version = created.json()["new_version"].as_u64().unwrap_or_default();

    let stale = cas(json!({ "expected_version": version + 5, "new_value": "x" })).send(&app).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let body = stale.json();
    assert_eq!((body["success"].as_bool(), body["current"][0]["value"].as_str()), (Some(false), Some("1")));

    let swapped = cas(json!({ "expected_value": "1", "new_value": "2" })).send(&app).await;
    assert_eq!(swapped.status, StatusCode::OK);
    let context = swapped.json()["context"].as_str().unwrap_or_default().to_owned();
    let by_context = cas(json!({ "expected_context": context, "new_value": "3" })).send(&app).await;
    assert_eq!(by_context.status, StatusCode::OK);
    assert_eq!(req(Method::GET, "/api/v1/keys/c").send(&app).await.json()["value"], "3");

    let none = cas(json!({ "new_value": "x" })).send(&app).await;
    none.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-REQUEST");
    let two = cas(json!({ "expected_version": 1, "expect_absent": true, "new_value": "x" })).send(&app).await;
    assert!(two.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-REQUEST").contains("got 2"));
}

#[tokio::test]
async fn ttl_and_increment() {
    let (app, _) = app();
    let missing = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl_seconds": 60 })).send(&app).await;
    missing.assert_error(StatusCode::NOT_FOUND, "RKV-NOT-FOUND");
    put_text(&app, "t", "v").await;
    let touched = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl_seconds": 60 })).send(&app).await;
    assert_eq!((touched.status, touched.json()["ttl_seconds"].as_u64()), (StatusCode::OK, Some(60)));
    assert!(req(Method::GET, "/api/v1/keys/t").send(&app).await.json()["ttl_remaining_ms"].as_i64().is_some());
    let cleared = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl_seconds": 0 })).send(&app).await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert!(req(Method::GET, "/api/v1/keys/t").send(&app).await.json().get("ttl_remaining").is_none());

    let first = req(Method::POST, "/api/v1/keys/n/incr").send(&app).await;
    assert_eq!((first.status, first.json()["value"].as_i64()), (StatusCode::OK, Some(1)));
    let more = req(Method::POST, "/api/v1/keys/n/incr").json(json!({ "delta": 41 })).send(&app).await;
    assert_eq!(more.json()["value"], 42);
    let text = req(Method::POST, "/api/v1/keys/t/incr").send(&app).await;
    text.assert_error(StatusCode::CONFLICT, "RKV-NOT-AN-INTEGER");
}

#[tokio::test]
async fn an_explicit_ttl_of_zero_is_refused_and_writes_nothing() {
    let (app, _) = app();
    let refusals = [
        req(Method::PUT, "/api/v1/keys/z?ttl=0").raw("v"),
        req(Method::PUT, "/api/v1/keys/z").json(json!({ "value": "v", "ttl": 0 })),
        req(Method::POST, "/api/v1/keys/z/cas").json(json!({ "expect_absent": true, "new_value": "v", "ttl": 0 })),
        req(Method::POST, "/api/v1/keys/z/incr").json(json!({ "delta": 1, "ttl": 0 })),
    ];
    for request in refusals {
        let msg = request.send(&app).await.assert_error(StatusCode::BAD_REQUEST, "RKV-TTL-RANGE");
        assert!(msg.contains("ttl of 0 s") && msg.contains("use 1 to"), "{msg}");
    }
    // A non-atomic batch reports the refusal per operation.
    let ops = json!({ "operations": [{ "key": "z", "value": "v", "ttl": 0 }] });
    let batch = req(Method::POST, "/api/v1/batch/put").json(ops).send(&app).await.json();
    assert_eq!((batch["success_count"].as_u64(), &batch["results"][0]["code"]), (Some(0), &json!("RKV-TTL-RANGE")));
    let get = req(Method::GET, "/api/v1/keys/z").send(&app).await;
    assert_eq!(get.status, StatusCode::NOT_FOUND, "a refused write wrote: {}", get.json());
}

#[tokio::test]
async fn the_ttl_endpoint_takes_ttl_like_put_and_ttl_seconds_as_an_alias() {
    let (app, _) = app();
    put_text(&app, "t", "v").await;
    let touched = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl": 60 })).send(&app).await;
    assert_eq!(touched.status, StatusCode::OK);
    assert_eq!((touched.json()["ttl"].as_u64(), touched.json()["ttl_seconds"].as_u64()), (Some(60), Some(60)));
    let ms = req(Method::GET, "/api/v1/keys/t").send(&app).await.json()["ttl_remaining_ms"].as_i64();
    assert!(ms.is_some_and(|ms| ms > 50_000 && ms <= 60_000), "{ms:?}");
    let alias = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl_seconds": 30 })).send(&app).await;
    assert_eq!((alias.status, alias.json()["ttl"].as_u64()), (StatusCode::OK, Some(30)));
    let both = req(Method::POST, "/api/v1/keys/t/ttl").json(json!({ "ttl": 1, "ttl_seconds": 2 })).send(&app).await;
    both.assert_error(StatusCode::BAD_REQUEST, "RKV-BAD-JSON");
}
