//! Tests of the human-readable renderers.

use super::*;

fn sibling(value: &[u8]) -> Sibling {
    Sibling { value: Bytes::copy_from_slice(value), timestamp_micros: 1, ..Default::default() }
}

fn record(siblings: Vec<Sibling>) -> Record {
    Record { siblings, context: Bytes::from_static(&[1, 2, 3]), version: 2, ttl_remaining_ms: None }
}

#[test]
fn get_prints_a_single_value_raw() {
    let out = get(&record(vec![sibling(b"hello")]));
    assert_eq!(out, Rendered { stdout: "hello\n".into(), note: None });
}

#[test]
fn get_prints_binary_values_as_base64_with_a_note() {
    let out = get(&record(vec![sibling(&[0xff, 0])]));
    assert_eq!(out.stdout, "/wA=\n");
    assert!(out.note.is_some_and(|n| n.contains("base64")));
}

#[test]
fn get_prints_each_sibling_and_the_context() {
    let mut deleted = sibling(b"");
    deleted.tombstone = true;
    let out = get(&record(vec![sibling(b"v1"), sibling(&[0xff]), deleted]));
    assert_eq!(out.stdout, "sibling 1/3: v1\nsibling 2/3 (base64): /w==\nsibling 3/3: (deleted)\ncontext: AQID\n");
    assert!(out.note.is_some_and(|n| n.contains("--context")));
}

#[test]
fn batch_get_marks_missing_and_conflicted_keys() {
    let results = vec![
        (Bytes::from_static(b"a"), Some(record(vec![sibling(b"1")]))),
        (Bytes::from_static(b"b"), None),
        (Bytes::from_static(b"c"), Some(record(vec![sibling(b"x"), sibling(b"y")]))),
    ];
    assert_eq!(batch_get(&results), "a\t1\nb\t(not found)\nc\t(2 siblings; use `kvctl get`)\n");
}

#[test]
fn entries_one_per_line_with_optional_values() {
    let page = vec![
        Entry { key: Bytes::from_static(b"k1"), value: Bytes::from_static(b"v1") },
        Entry { key: Bytes::from_static(&[0xfe]), value: Bytes::new() },
    ];
    assert_eq!(entries(&page, false), "k1\nbase64:/g==\n");
    assert_eq!(entries(&page, true), "k1\tv1\nbase64:/g==\t\n");
    assert_eq!(entries(&[], true), "");
    assert_eq!(more_hint(&[1, 2, 3], true), "more keys: continue with --cursor AQID, or use --all");
}

#[test]
fn status_is_an_aligned_table() {
    let response = ClusterStatusResponse {
        cluster_name: "dev".into(),
        replication_factor: 3,
        answered_by: "n1".into(),
        nodes: vec![
            NodeStatus {
                host_id: "n1".into(),
                grpc_addr: "127.0.0.1:7100".into(),
                zone: "z1".into(),
                state: NodeState::Normal as i32,
                liveness: Liveness::Alive as i32,
                ownership: 0.5,
                load_bytes: 1536,
                ..Default::default()
            },
            NodeStatus {
                host_id: "node-2".into(),
                grpc_addr: "127.0.0.1:7101".into(),
                state: NodeState::Joining as i32,
                liveness: 42,
                ownership: 0.125,
                streaming_progress: Some(0.4),
                pending_hints: 7,
                ..Default::default()
            },
        ],
    };
    let expected = "\
cluster dev, replication factor 3, 2 node(s), answered by n1
HOST ID  ADDRESS         ZONE  STATE                    LIVENESS     OWNS   LOAD     HINTS
n1       127.0.0.1:7100  z1    NORMAL                   ALIVE        50.0%  1.5 KiB  0
node-2   127.0.0.1:7101  -     JOINING (streaming 40%)  UNKNOWN(42)  12.5%  -        7
";
    assert_eq!(status(&response), expected);
}

#[test]
fn bytes_use_binary_units() {
    assert_eq!(format_bytes(0), "0 B");
    assert_eq!(format_bytes(1023), "1023 B");
    assert_eq!(format_bytes(1024), "1.0 KiB");
    assert_eq!(format_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    assert_eq!(format_bytes(u64::MAX), "16384.0 PiB");
}

#[test]
fn a_node_waiting_for_its_turn_says_so() {
    let node = NodeStatus {
        host_id: "n3".into(),
        state: NodeState::Joining as i32,
        waiting: Some("n2 is JOINING; one topology change at a time".into()),
        ..Default::default()
    };
    assert_eq!(node_row(&node)[3], "JOINING (waiting for its turn)");
    assert!(!node_row(&NodeStatus { waiting: None, ..node })[3].contains("waiting"));
}
