//! Tests of the JSON renderers: parse the line back and check fields.

use super::*;

fn parsed(line: &str) -> Value {
    assert!(line.ends_with('\n') && !line.trim_end().contains('\n'), "one line: {line:?}");
    serde_json::from_str(line).unwrap_or_else(|err| panic!("{line:?}: {err}"))
}

fn record() -> Record {
    Record {
        siblings: vec![
            Sibling {
                value: Bytes::from_static(b"v1"),
                timestamp_micros: 10,
                expires_at_ms: Some(99),
                tombstone: false,
            },
            Sibling { value: Bytes::from_static(&[0xff]), timestamp_micros: 11, ..Default::default() },
        ],
        context: Bytes::from_static(&[1, 2, 3]),
        version: 4,
        ttl_remaining_ms: Some(5000),
    }
}

#[test]
fn get_found_lists_siblings_with_base64_for_binary() {
    let value = parsed(&get(b"k", Some(&record())));
    assert_eq!(value["key"], "k");
    assert_eq!(value["found"], true);
    assert_eq!(value["context"], "AQID");
    assert_eq!(value["version"], 4);
    assert_eq!(value["ttl_remaining_ms"], 5000);
    assert_eq!(
        value["siblings"][0],
        json!({
            "value": "v1", "timestamp_micros": 10, "expires_at_ms": 99, "tombstone": false
        })
    );
    assert_eq!(value["siblings"][1]["value_base64"], "/w==");
    assert!(value["siblings"][1].get("value").is_none());
    assert_eq!(value["siblings"][1]["expires_at_ms"], Value::Null);
}

#[test]
fn get_missing_is_found_false() {
    let value = parsed(&get(&[0xfe], None));
    assert_eq!(value["key_base64"], "/g==");
    assert_eq!(value["found"], false);
    assert_eq!(value["siblings"], json!([]));
    assert!(value.get("ttl_remaining_ms").is_none());
}

#[test]
fn batch_get_has_one_result_per_key() {
    let results = vec![(Bytes::from_static(b"a"), Some(record())), (Bytes::from_static(b"b"), None)];
    let value = parsed(&batch_get(&results));
    assert_eq!(value["results"][0]["found"], true);
    assert_eq!(value["results"][1], json!({"key": "b", "found": false, "siblings": [], "context": "", "version": 0}));
}

#[test]
fn writes_report_version_and_context() {
    let response = PutResponse { applied: true, context: Bytes::from_static(&[9]), version: 7, timestamp_micros: 5 };
    assert_eq!(
        parsed(&put(b"k", &response)),
        json!({"key": "k", "applied": true, "version": 7, "context": "CQ==", "timestamp_micros": 5})
    );
    let response = DeleteResponse { existed: false, context: Bytes::new(), version: 8 };
    assert_eq!(parsed(&delete(b"k", &response)), json!({"key": "k", "existed": false, "version": 8, "context": ""}));
    let response =
        CompareAndSetResponse { applied: false, version: 3, context: Bytes::new(), current: record().siblings };
    let value = parsed(&cas(b"k", &response));
    assert_eq!((value["applied"].clone(), value["version"].clone()), (json!(false), json!(3)));
    assert_eq!(value["current"][0]["value"], "v1");
    assert_eq!(
        parsed(&incr(b"c", &IncrementResponse { value: -4, version: 2 })),
        json!({"key": "c", "value": -4, "version": 2})
    );
    assert_eq!(parsed(&touch(b"k", None)), json!({"key": "k", "found": false, "version": 0}));
}

#[test]
fn pages_carry_cursor_and_flags() {
    let page = ListResponse {
        entries: vec![Entry { key: Bytes::from_static(b"a"), value: Bytes::from_static(b"1") }],
        next_cursor: Bytes::from_static(&[1]),
        has_more: true,
    };
    assert_eq!(
        parsed(&list(&page, false)),
        json!({"entries": [{"key": "a"}], "next_cursor": "AQ==", "has_more": true})
    );
    let page = ScanResponse { entries: page.entries, next_cursor: Bytes::new(), done: true };
    assert_eq!(
        parsed(&scan(&page, true)),
        json!({"entries": [{"key": "a", "value": "1"}], "next_cursor": "", "done": true})
    );
}

#[test]
fn status_uses_short_enum_names() {
    let response = ClusterStatusResponse {
        cluster_name: "dev".into(),
        replication_factor: 3,
        answered_by: "n1".into(),
        nodes: vec![NodeStatus { host_id: "n1".into(), state: 2, liveness: 3, ownership: 1.0, ..Default::default() }],
    };
    let value = parsed(&status(&response));
    assert_eq!(value["nodes"][0]["state"], "NORMAL");
    assert_eq!(value["nodes"][0]["liveness"], "DOWN");
    assert_eq!(value["nodes"][0]["streaming_progress"], Value::Null);
    assert_eq!(value["replication_factor"], 3);
}
