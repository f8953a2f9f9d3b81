//! [`Etcd`]: an etcd v3 cluster over its gRPC KV API (`etcdserverpb.KV`,
//! generated from the vendored protos in [`crate::bench::etcdpb`]).
//!
//! Operations map onto etcd's API as YCSB's etcd binding does:
//! - read: `Range(key)`; update and insert: `Put(key, value)`;
//! - scan: `Range(start, range_end = end of the key prefix, limit = count)`
//!   (etcd returns a range in key order);
//! - read-modify-write: `Range` then `Put`, not atomic (no `Txn`), like the
//!   Redis target.
//!
//! Reads are etcd's default, linearizable (a ReadIndex round through the
//! leader), not `serializable`, so they are comparable with a RingKV QUORUM
//! read. `endpoints` may name several members; `connections` channels (at
//! least one per member) are opened, channel `i` to member `i mod members`,
//! and requests go to them round-robin. A follower forwards writes to the
//! leader itself, so naming only one member is also valid. No retries: a
//! benchmark counts failures, it does not hide them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tonic::transport::{Channel, Endpoint};

use crate::bench::etcdpb::KvClient;
use crate::bench::etcdpb::etcdserverpb::{PutRequest, RangeRequest};
use crate::bench::keys::KEY_PREFIX;
use crate::bench::target::{Target, TargetError, TargetInfo};

/// An etcd cluster reached through `connections` round-robin gRPC channels.
#[derive(Debug)]
pub struct Etcd {
    clients: Vec<KvClient<Channel>>,
    next: AtomicUsize,
    endpoints: Vec<String>,
    /// `range_end` of a scan: the first key after every key with [`KEY_PREFIX`].
    scan_end: Bytes,
}

impl Etcd {
    /// Connects to `endpoints`, a comma-separated list of `host:port` (or
    /// `http://host:port`) members, with `connections` channels in all (at
    /// least one per member).
    pub async fn connect(endpoints: &str, connections: usize) -> Result<Self, TargetError> {
        let endpoints = split_endpoints(endpoints);
        if endpoints.is_empty() {
            return Err(TargetError::Connect { endpoint: String::new(), reason: "no etcd endpoint given".to_owned() });
        }
        let count = connections.max(endpoints.len());
        let mut clients = Vec::with_capacity(count);
        for i in 0..count {
            let endpoint = &endpoints[i % endpoints.len()];
            let connect_error = |reason: String| TargetError::Connect { endpoint: endpoint.clone(), reason };
            let uri = if endpoint.contains("://") { endpoint.clone() } else { format!("http://{endpoint}") };
            let channel = Endpoint::from_shared(uri)
                .map_err(|e| connect_error(e.to_string()))?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| connect_error(format!("{e} (is etcd running? scripts/peers.sh start etcd)")))?;
            clients.push(KvClient::new(channel));
        }
        Ok(Self { clients, next: AtomicUsize::new(0), endpoints, scan_end: prefix_end(KEY_PREFIX.as_bytes()) })
    }

    /// A handle on the next channel (clones share the HTTP/2 connection).
    fn client(&self) -> KvClient<Channel> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.clients[i].clone()
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        let request = PutRequest { key: Bytes::copy_from_slice(key.as_bytes()), value, ..PutRequest::default() };
        self.client().put(request).await.map_err(|source| TargetError::Etcd { op: "Put", source })?;
        Ok(())
    }

    async fn range(&self, request: RangeRequest) -> Result<usize, TargetError> {
        let response =
            self.client().range(request).await.map_err(|source| TargetError::Etcd { op: "Range", source })?;
        Ok(response.into_inner().kvs.len())
    }
}

/// Splits `a,b, c` into trimmed, non-empty endpoints.
fn split_endpoints(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect()
}

/// etcd's "prefix end": `prefix` with its last byte below 0xff incremented
/// and what follows dropped, so `[prefix, end)` holds exactly the keys that
/// start with `prefix`; `"\0"` (every key from `prefix` on) when all bytes are 0xff.
fn prefix_end(prefix: &[u8]) -> Bytes {
    match prefix.iter().rposition(|&b| b < 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            Bytes::from(end)
        }
        None => Bytes::from_static(b"\0"),
    }
}

impl Target for Etcd {
    fn info(&self) -> TargetInfo {
        TargetInfo {
            name: "etcd".to_owned(),
            endpoint: self.endpoints.join(","),
            settings: BTreeMap::from([
                (
                    "connections".to_owned(),
                    format!(
                        "{} gRPC channels over {} member(s), round-robin",
                        self.clients.len(),
                        self.endpoints.len()
                    ),
                ),
                ("reads".to_owned(), "Range, linearizable (etcd default)".to_owned()),
                ("writes".to_owned(), "Put".to_owned()),
                ("scan".to_owned(), "Range [start, prefix end) LIMIT n".to_owned()),
                ("read-modify-write".to_owned(), "Range then Put (not a Txn)".to_owned()),
            ]),
        }
    }

    async fn read(&self, key: &str) -> Result<bool, TargetError> {
        let found =
            self.range(RangeRequest { key: Bytes::copy_from_slice(key.as_bytes()), ..RangeRequest::default() }).await?;
        Ok(found > 0)
    }

    async fn update(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.put(key, value).await
    }

    async fn insert(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.put(key, value).await
    }

    async fn scan(&self, start: &str, count: u32) -> Result<usize, TargetError> {
        self.range(RangeRequest {
            key: Bytes::copy_from_slice(start.as_bytes()),
            range_end: self.scan_end.clone(),
            limit: i64::from(count),
            ..RangeRequest::default()
        })
        .await
    }

    async fn read_modify_write(&self, key: &str, value: Bytes) -> Result<(), TargetError> {
        self.read(key).await?;
        self.put(key, value).await
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"user"), Bytes::from_static(b"uses"));
        assert_eq!(prefix_end(b"a\xff"), Bytes::from_static(b"b"));
        assert_eq!(prefix_end(b"\xff\xff"), Bytes::from_static(b"\0"));
    }

    #[test]
    fn endpoints_are_split_on_commas_and_trimmed() {
        assert_eq!(split_endpoints("127.0.0.1:2379, 127.0.0.1:2479,,"), ["127.0.0.1:2379", "127.0.0.1:2479"]);
        assert!(split_endpoints(" , ").is_empty());
    }

    /// The protox-generated messages use etcd's field numbers: a `Put` of
    /// key "k", value "v" is exactly `0a 01 'k' 12 01 'v'` on the wire.
    #[test]
    fn generated_put_request_encodes_with_etcd_field_numbers() {
        let request =
            PutRequest { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v"), ..PutRequest::default() };
        let wire = request.encode_to_vec();
        assert_eq!(wire, [0x0a, 1, b'k', 0x12, 1, b'v']);
        assert_eq!(PutRequest::decode(wire.as_slice()).ok(), Some(request));
        let range = RangeRequest { key: Bytes::from_static(b"a"), limit: 5, ..RangeRequest::default() };
        assert_eq!(range.encode_to_vec(), [0x0a, 1, b'a', 0x18, 5]);
    }

    /// The generated client exists and builds over a lazy channel (nothing
    /// listens there; no RPC is made, so no etcd server is needed).
    #[tokio::test]
    async fn generated_client_builds_over_a_lazy_channel() {
        let channel = Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let _client: KvClient<Channel> = KvClient::new(channel);
    }
}
