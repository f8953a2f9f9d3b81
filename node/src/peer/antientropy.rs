//! gRPC for anti-entropy: the `ringkv.cluster.v1.AntiEntropy` server over a
//! [`LocalReplica`], the [`GrpcPeer`] client (over the peer layer's
//! [`ChannelPool`] and [`call`](super::call::call): one pooled channel per
//! peer, a deadline on every call), and the test-hook server
//! (`AntiEntropyTestHooks`), registered only when the node runs with
//! `RINGKV_TEST_HOOKS=1`. Nothing from the network panics: malformed input
//! is INVALID_ARGUMENT, malformed answers are [`AeError::Malformed`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::anti_entropy_client::AntiEntropyClient;
use ringkv_proto::cluster::v1::anti_entropy_server::{AntiEntropy, AntiEntropyServer};
use ringkv_proto::cluster::v1::anti_entropy_test_hooks_server::{AntiEntropyTestHooks, AntiEntropyTestHooksServer};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::antientropy::merkle::{Hash, MAX_DEPTH};
use crate::antientropy::{AeError, AntiEntropyPeer, KeyedRecord, LocalReplica, PeerConnector, TreeRef, TreeSummary};
use crate::membership::Member;
use crate::ring::TokenRange;
use crate::storage::{Storage, WriteBatch, WriteOp};
use crate::transport::Peer;

use super::MAX_MESSAGE_BYTES;
use super::convert::{record_from_proto, record_to_proto};
use super::pool::ChannelPool;

/// Deadline of `PrepareTree`, which may rebuild a tree by a throttled scan.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(600);
/// Deadline of the other calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Most buckets or tree nodes one request may name.
const MAX_INDICES: usize = 1 << 16;

fn hash_to_proto(h: Hash) -> pb::Hash128 {
    pb::Hash128 { hi: (h >> 64) as u64, lo: h as u64 }
}

fn hash_from_proto(h: &pb::Hash128) -> Hash {
    (u128::from(h.hi) << 64) | u128::from(h.lo)
}

fn tree_to_proto(t: &TreeRef) -> pb::TreeRange {
    pb::TreeRange { keyspace: t.keyspace.clone(), start: t.range.start, end: t.range.end, depth: t.depth }
}

use super::status::{ae_status as to_status, bad_peer_request as bad, kv_status};

fn tree_from_proto(t: Option<pb::TreeRange>) -> Result<TreeRef, Status> {
    let t = t.ok_or_else(|| bad("missing tree range"))?;
    if t.depth > MAX_DEPTH {
        return Err(bad(format!("tree depth {} over the maximum {MAX_DEPTH}", t.depth)));
    }
    Ok(TreeRef { keyspace: t.keyspace, range: TokenRange { start: t.start, end: t.end }, depth: t.depth })
}

fn keyed_to_proto(records: &[KeyedRecord]) -> Vec<pb::KeyedRecord> {
    records.iter().map(|(k, r)| pb::KeyedRecord { key: k.clone(), record: Some(record_to_proto(r)) }).collect()
}

fn keyed_from_proto(records: Vec<pb::KeyedRecord>) -> Result<Vec<KeyedRecord>, String> {
    records
        .into_iter()
        .map(|kr| {
            let encoded = kr.record.ok_or("a keyed record without its record")?;
            let record = record_from_proto(&encoded, "record").map_err(|e| e.to_string())?;
            Ok((kr.key, record))
        })
        .collect()
}

/// The `ringkv.cluster.v1.AntiEntropy` service of this node.
#[derive(Debug, Clone)]
pub struct AntiEntropyService {
    local: Arc<LocalReplica>,
}

/// The tonic server of the anti-entropy service.
pub fn anti_entropy_server(local: Arc<LocalReplica>) -> AntiEntropyServer<AntiEntropyService> {
    AntiEntropyServer::new(AntiEntropyService { local })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl AntiEntropy for AntiEntropyService {
    async fn prepare_tree(
        &self,
        request: Request<pb::PrepareTreeRequest>,
    ) -> Result<Response<pb::PrepareTreeResponse>, Status> {
        let req = request.into_inner();
        let tree = tree_from_proto(req.range)?;
        let s = self.local.prepare_tree(&tree, Duration::from_millis(req.max_age_ms)).await.map_err(to_status)?;
        Ok(Response::new(pb::PrepareTreeResponse {
            root: Some(hash_to_proto(s.root)),
            records: s.records,
            bytes: s.bytes,
            built_at_ms: s.built_at_ms,
        }))
    }

    async fn tree_level(
        &self,
        request: Request<pb::TreeLevelRequest>,
    ) -> Result<Response<pb::TreeLevelResponse>, Status> {
        let req = request.into_inner();
        let tree = tree_from_proto(req.range)?;
        if req.indices.len() > MAX_INDICES {
            return Err(bad(format!("{} tree nodes asked at once; at most {MAX_INDICES}", req.indices.len())));
        }
        let hashes = self.local.tree_level(&tree, req.level, req.indices).await.map_err(to_status)?;
        Ok(Response::new(pb::TreeLevelResponse { hashes: hashes.into_iter().map(hash_to_proto).collect() }))
    }

    async fn bucket_records(
        &self,
        request: Request<pb::BucketRecordsRequest>,
    ) -> Result<Response<pb::BucketRecordsResponse>, Status> {
        let req = request.into_inner();
        let tree = tree_from_proto(req.range)?;
        if req.buckets.len() > MAX_INDICES {
            return Err(bad(format!("{} buckets asked at once; at most {MAX_INDICES}", req.buckets.len())));
        }
        let records = self.local.bucket_records(&tree, req.buckets).await.map_err(to_status)?;
        Ok(Response::new(pb::BucketRecordsResponse { records: keyed_to_proto(&records) }))
    }

    async fn merge_records(
        &self,
        request: Request<pb::MergeRecordsRequest>,
    ) -> Result<Response<pb::MergeRecordsResponse>, Status> {
        let req = request.into_inner();
        let records = keyed_from_proto(req.records).map_err(bad)?;
        let merged = self.local.merge_records(&req.keyspace, records).await.map_err(to_status)?;
        Ok(Response::new(pb::MergeRecordsResponse { merged }))
    }
}

/// Connects [`GrpcPeer`]s, one pooled channel per address.
#[derive(Debug)]
pub struct GrpcConnector {
    pool: Arc<ChannelPool>,
}

impl Default for GrpcConnector {
    fn default() -> Self {
        Self { pool: Arc::new(ChannelPool::new(Duration::from_secs(2))) }
    }
}

impl GrpcConnector {
    /// A connector with an empty pool.
    pub fn new() -> Self {
        Self::default()
    }
}

impl PeerConnector for GrpcConnector {
    fn connect(&self, member: &Member) -> Arc<dyn AntiEntropyPeer> {
        Arc::new(GrpcPeer {
            peer: Peer::from(member).to_string(),
            addr: member.grpc_addr,
            pool: Arc::clone(&self.pool),
        })
    }
}

/// A remote replica over `ringkv.cluster.v1.AntiEntropy`.
#[derive(Debug, Clone)]
pub struct GrpcPeer {
    peer: String,
    addr: SocketAddr,
    pool: Arc<ChannelPool>,
}

fn client(channel: Channel) -> AntiEntropyClient<Channel> {
    AntiEntropyClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

impl GrpcPeer {
    fn call<M, R, T, F, Fut>(
        &self,
        msg: M,
        timeout: Duration,
        call: F,
        decode: impl FnOnce(R) -> Result<T, String> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, AeError>>
    where
        M: Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(AntiEntropyClient<Channel>, Request<M>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Response<R>, Status>> + Send,
    {
        let (pool, addr, peer) = (Arc::clone(&self.pool), self.addr, self.peer.clone());
        async move {
            let answer = super::call::call(&pool, addr, &peer, timeout, msg, client, call).await?;
            decode(answer).map_err(|reason| AeError::Malformed { peer, reason })
        }
        .boxed()
    }
}

impl AntiEntropyPeer for GrpcPeer {
    fn prepare_tree(&self, tree: &TreeRef, max_age: Duration) -> BoxFuture<'static, Result<TreeSummary, AeError>> {
        let msg = pb::PrepareTreeRequest {
            range: Some(tree_to_proto(tree)),
            max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
        };
        self.call(
            msg,
            PREPARE_TIMEOUT,
            |mut c, r| async move { c.prepare_tree(r).await },
            |r| {
                let root = r.root.as_ref().map(hash_from_proto).ok_or("PrepareTree answer without a root")?;
                Ok(TreeSummary { root, records: r.records, bytes: r.bytes, built_at_ms: r.built_at_ms })
            },
        )
    }

    fn tree_level(
        &self,
        tree: &TreeRef,
        level: u32,
        indices: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<Hash>, AeError>> {
        let expected = indices.len();
        let msg = pb::TreeLevelRequest { range: Some(tree_to_proto(tree)), level, indices };
        self.call(
            msg,
            CALL_TIMEOUT,
            |mut c, r| async move { c.tree_level(r).await },
            move |r| {
                if r.hashes.len() != expected {
                    return Err(format!("{} hashes for {expected} tree nodes", r.hashes.len()));
                }
                Ok(r.hashes.iter().map(hash_from_proto).collect())
            },
        )
    }

    fn bucket_records(
        &self,
        tree: &TreeRef,
        buckets: Vec<u32>,
    ) -> BoxFuture<'static, Result<Vec<KeyedRecord>, AeError>> {
        let msg = pb::BucketRecordsRequest { range: Some(tree_to_proto(tree)), buckets };
        self.call(
            msg,
            CALL_TIMEOUT,
            |mut c, r| async move { c.bucket_records(r).await },
            |r| keyed_from_proto(r.records),
        )
    }

    fn merge_records(&self, keyspace: &str, records: Vec<KeyedRecord>) -> BoxFuture<'static, Result<u32, AeError>> {
        let msg = pb::MergeRecordsRequest { keyspace: keyspace.to_owned(), records: keyed_to_proto(&records) };
        self.call(msg, CALL_TIMEOUT, |mut c, r| async move { c.merge_records(r).await }, |r| Ok(r.merged))
    }
}

/// The test hooks: direct reads and writes of this node's local records.
#[derive(Debug, Clone)]
pub struct TestHooksService {
    storage: Arc<dyn Storage>,
}

/// The tonic server of the test hooks (register only with `RINGKV_TEST_HOOKS=1`).
pub fn test_hooks_server(storage: Arc<dyn Storage>) -> AntiEntropyTestHooksServer<TestHooksService> {
    AntiEntropyTestHooksServer::new(TestHooksService { storage })
}

#[tonic::async_trait]
impl AntiEntropyTestHooks for TestHooksService {
    async fn get_local(&self, request: Request<pb::GetLocalRequest>) -> Result<Response<pb::GetLocalResponse>, Status> {
        let req = request.into_inner();
        let storage = Arc::clone(&self.storage);
        let record = tokio::task::spawn_blocking(move || storage.get(&req.keyspace, &req.key))
            .await
            .map_err(|e| Status::internal(format!("get_local task failed: {e}")))?
            .map_err(|e| kv_status(&e.into()))?;
        Ok(Response::new(pb::GetLocalResponse { record: record.as_ref().map(record_to_proto) }))
    }

    async fn put_local(&self, request: Request<pb::PutLocalRequest>) -> Result<Response<pb::PutLocalResponse>, Status> {
        let req = request.into_inner();
        let op = match req.record {
            Some(encoded) => WriteOp::Put {
                keyspace: req.keyspace,
                key: req.key,
                record: record_from_proto(&encoded, "record").map_err(bad)?,
            },
            None => WriteOp::Purge { keyspace: req.keyspace, key: req.key },
        };
        let storage = Arc::clone(&self.storage);
        let ticket = tokio::task::spawn_blocking(move || storage.write(WriteBatch { ops: vec![op] }))
            .await
            .map_err(|e| Status::internal(format!("put_local task failed: {e}")))?
            .map_err(|e| kv_status(&e.into()))?;
        ticket.wait().await.map_err(|e| kv_status(&e.into()))?;
        Ok(Response::new(pb::PutLocalResponse {}))
    }
}
