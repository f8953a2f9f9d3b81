//! [`GrpcTransport`]: the replica [`Transport`] over tonic (`ringkv.cluster.v1.Replica`).
//!
//! Calls go over a [`ChannelPool`] through [`call`](super::call::call): one
//! pooled channel per peer, a deadline on every call (enforced locally and
//! sent as `grpc-timeout`), the channel evicted after a timeout; errors are
//! [`TransportError`]s (`Timeout`, `Unreachable`, `Remote` with the peer's
//! stable `RKV-…` code, `Malformed` for answers [`convert`](super::convert)
//! rejects), never panics.
//!
//! Reads and writes to a peer go through a [`Batcher`] each: concurrent calls
//! are coalesced into `ReadBatch`/`WriteBatch` calls (one item per call when
//! the load is light), which divides the per-call HTTP/2 and wake-up cost by
//! the batch size under load. A batch item's error keeps its stable code from
//! the item's `rkv_code`.
//!
//! This module may call `peer::{pool, call, batch, convert}`, the generated
//! proto client and `transport` (the port it implements) only.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use ringkv_proto::cluster::v1 as pb;
use ringkv_proto::cluster::v1::replica_client::ReplicaClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::version::Record;

use crate::transport::{
    CoordinateCall, CoordinateReply, HintedWrite, PageItem, PageQuery, Peer, ReplicaWrite, Transport, TransportError,
};

use super::MAX_MESSAGE_BYTES;
use super::batch::Batcher;
use super::call::from_status;
use super::convert::{self, ConvertError};
use super::pool::ChannelPool;

/// The [`Transport`] over gRPC. Cheap to clone; clones share the channel pool.
#[derive(Debug, Clone)]
pub struct GrpcTransport {
    inner: Arc<Inner>,
}

type WriteBatcher = Batcher<pb::ReplicaWriteRequest, ()>;
type ReadBatcher = Batcher<pb::ReplicaReadRequest, Option<Record>>;

/// Most items in one batch call.
const MAX_BATCH: usize = 128;
/// Batch calls of one kind in flight to one peer at once.
const MAX_BATCHES_IN_FLIGHT: usize = 4;

#[derive(Debug)]
struct Inner {
    call_timeout: Duration,
    pool: ChannelPool,
    writers: Mutex<HashMap<SocketAddr, Arc<WriteBatcher>>>,
    readers: Mutex<HashMap<SocketAddr, Arc<ReadBatcher>>>,
}

/// The result of one batch item from its status.
fn item_result(peer: &str, timeout: Duration, status: Option<&pb::ItemStatus>) -> Result<(), TransportError> {
    match status {
        Some(s) if s.code == 0 => Ok(()),
        Some(s) => {
            let mut status = Status::new(Code::from(s.code), s.message.clone());
            if let Some(Ok(code)) = (!s.rkv_code.is_empty()).then(|| s.rkv_code.parse()) {
                status.metadata_mut().insert(crate::error::ERROR_CODE_METADATA, code);
            }
            Err(from_status(peer.to_owned(), timeout, &status))
        }
        None => Err(TransportError::Malformed { peer: peer.to_owned(), reason: "a batch item has no status".into() }),
    }
}

impl Inner {
    /// One call to `addr` under the deadline (sent as `grpc-timeout` too).
    async fn call<M, R, F, Fut>(&self, addr: SocketAddr, peer: &str, msg: M, call: F) -> Result<R, TransportError>
    where
        F: FnOnce(ReplicaClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        super::call::call(&self.pool, addr, peer, self.call_timeout, msg, client, call).await
    }

    /// The write batcher for `addr`, started on first use (inside the runtime).
    fn write_batcher(self: &Arc<Self>, addr: SocketAddr, peer: &str) -> Arc<WriteBatcher> {
        let mut writers = self.writers.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = Arc::downgrade(self);
        let peer = peer.to_owned();
        Arc::clone(writers.entry(addr).or_insert_with(|| {
            Arc::new(Batcher::spawn(peer.clone(), MAX_BATCH, MAX_BATCHES_IN_FLIGHT, move |writes| {
                let (inner, peer) = (inner.clone(), peer.clone());
                async move {
                    let inner = inner.upgrade().ok_or_else(|| gone(&peer))?;
                    let msg = pb::ReplicaWriteBatchRequest { writes };
                    let answer = inner.call(addr, &peer, msg, |mut c, r| async move { c.write_batch(r).await }).await?;
                    let timeout = inner.call_timeout;
                    Ok(answer.statuses.iter().map(|s| item_result(&peer, timeout, Some(s))).collect())
                }
            }))
        }))
    }

    /// The read batcher for `addr`, started on first use (inside the runtime).
    fn read_batcher(self: &Arc<Self>, addr: SocketAddr, peer: &str) -> Arc<ReadBatcher> {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = Arc::downgrade(self);
        let peer = peer.to_owned();
        Arc::clone(readers.entry(addr).or_insert_with(|| {
            Arc::new(Batcher::spawn(peer.clone(), MAX_BATCH, MAX_BATCHES_IN_FLIGHT, move |reads| {
                let (inner, peer) = (inner.clone(), peer.clone());
                async move {
                    let inner = inner.upgrade().ok_or_else(|| gone(&peer))?;
                    let msg = pb::ReplicaReadBatchRequest { reads };
                    let answer = inner.call(addr, &peer, msg, |mut c, r| async move { c.read_batch(r).await }).await?;
                    let timeout = inner.call_timeout;
                    Ok(answer
                        .reads
                        .iter()
                        .enumerate()
                        .map(|(i, read)| {
                            item_result(&peer, timeout, answer.statuses.get(i))?;
                            convert::read_response_from_proto(read)
                                .map_err(|e| TransportError::Malformed { peer: peer.clone(), reason: e.to_string() })
                        })
                        .collect())
                }
            }))
        }))
    }
}

/// A replica client over `channel`, accepting messages as large as peers send.
fn client(channel: Channel) -> ReplicaClient<Channel> {
    ReplicaClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn gone(peer: &str) -> TransportError {
    TransportError::Unreachable { peer: peer.to_owned(), reason: "the transport was dropped".into() }
}

impl GrpcTransport {
    /// A transport whose calls fail with `Timeout` after `call_timeout`, and
    /// whose connection attempts give up after `connect_timeout`.
    pub fn new(call_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                call_timeout,
                pool: ChannelPool::new(connect_timeout),
                writers: Mutex::new(HashMap::new()),
                readers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Number of peers with a pooled channel.
    pub fn pooled_channels(&self) -> usize {
        self.inner.pool.len()
    }

    /// One unary call: sends `msg` with `call`, under the deadline, and
    /// converts the answer with `decode`.
    fn unary<M, R, T, F, Fut, D>(
        &self,
        peer: String,
        addr: SocketAddr,
        msg: M,
        call: F,
        decode: D,
    ) -> BoxFuture<'static, Result<T, TransportError>>
    where
        M: Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
        F: FnOnce(ReplicaClient<Channel>, Request<M>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Response<R>, Status>> + Send,
        D: FnOnce(R) -> Result<T, ConvertError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            let answer = inner.call(addr, &peer, msg, call).await?;
            decode(answer).map_err(|e| TransportError::Malformed { peer, reason: e.to_string() })
        })
    }
}

impl Transport for GrpcTransport {
    fn read(
        &self,
        to: &Peer,
        keyspace: &str,
        key: &Bytes,
    ) -> BoxFuture<'static, Result<Option<Record>, TransportError>> {
        let msg = pb::ReplicaReadRequest { keyspace: keyspace.to_owned(), key: key.clone(), digest_only: false };
        let (inner, peer, addr) = (Arc::clone(&self.inner), to.to_string(), to.addr);
        Box::pin(async move {
            let timeout = inner.call_timeout;
            let call = inner.read_batcher(addr, &peer).call(msg);
            tokio::time::timeout(timeout, call).await.unwrap_or(Err(TransportError::Timeout { peer, timeout }))
        })
    }

    fn page(&self, to: &Peer, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, TransportError>> {
        let msg = convert::page_query_to_proto(&query);
        self.unary(to.to_string(), to.addr, msg, |mut c, r| async move { c.page(r).await }, convert::page_from_proto)
    }

    fn write(&self, to: &Peer, write: ReplicaWrite) -> BoxFuture<'static, Result<(), TransportError>> {
        let msg = convert::replica_write_to_proto(&write);
        let (inner, peer, addr) = (Arc::clone(&self.inner), to.to_string(), to.addr);
        Box::pin(async move {
            let timeout = inner.call_timeout;
            let call = inner.write_batcher(addr, &peer).call(msg);
            tokio::time::timeout(timeout, call).await.unwrap_or(Err(TransportError::Timeout { peer, timeout }))
        })
    }

    fn deliver_hints(
        &self,
        to: &Peer,
        from_host_id: &str,
        hints: Vec<HintedWrite>,
    ) -> BoxFuture<'static, Result<u32, TransportError>> {
        let msg = pb::DeliverHintsRequest {
            from_host_id: from_host_id.to_owned(),
            hints: hints.iter().map(convert::hint_to_proto).collect(),
        };
        self.unary(
            to.to_string(),
            to.addr,
            msg,
            |mut c, r| async move { c.deliver_hints(r).await },
            |resp| Ok(resp.applied),
        )
    }

    fn coordinate(
        &self,
        to: &Peer,
        call: CoordinateCall,
    ) -> BoxFuture<'static, Result<CoordinateReply, TransportError>> {
        let msg = convert::coordinate_call_to_proto(&call);
        self.unary(
            to.to_string(),
            to.addr,
            msg,
            |mut c, r| async move { c.coordinate(r).await },
            convert::coordinate_reply_from_proto,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::error::{KvError, RemoteStatus};
    use crate::peer::convert::tests::sample_record;
    use crate::peer::replica_server;
    use crate::replication::{Consistency, ConsistencyLevel, Mutation, WriteResult};
    use crate::transport::ReplicaHandler;

    /// Answers every call from fixed data and records what it was asked.
    #[derive(Debug, Default)]
    struct FakeHandler {
        calls: Mutex<Vec<String>>,
    }

    impl FakeHandler {
        fn log(&self, call: String) {
            self.calls.lock().unwrap().push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl ReplicaHandler for FakeHandler {
        fn handle_read(&self, keyspace: String, key: Bytes) -> BoxFuture<'static, Result<Option<Record>, KvError>> {
            self.log(format!("read {keyspace}/{}", String::from_utf8_lossy(&key)));
            Box::pin(async move {
                match &key[..] {
                    // Longer than any call timeout of these tests.
                    b"slow" => tokio::time::sleep(Duration::from_secs(30)).await,
                    b"missing" => return Ok(None),
                    _ => {}
                }
                Ok(Some(sample_record()))
            })
        }

        fn handle_page(&self, query: PageQuery) -> BoxFuture<'static, Result<Vec<PageItem>, KvError>> {
            self.log(format!("page {} limit={}", query.keyspace, query.limit));
            let item = PageItem { token: 7, key: Bytes::from_static(b"k"), record: sample_record() };
            Box::pin(async move { Ok(vec![item]) })
        }

        fn handle_write(&self, write: ReplicaWrite) -> BoxFuture<'static, Result<(), KvError>> {
            self.log(format!(
                "write {}/{} hint_for={:?}",
                write.keyspace,
                String::from_utf8_lossy(&write.key),
                write.hint_for
            ));
            let ok = write.keyspace != "nope" && write.record == sample_record();
            Box::pin(async move { if ok { Ok(()) } else { Err(KvError::UnknownKeyspace { name: "nope".into() }) } })
        }

        fn handle_hints(&self, hints: Vec<HintedWrite>) -> BoxFuture<'static, Result<u32, KvError>> {
            self.log(format!("hints {}", hints.len()));
            let applied = hints.iter().filter(|h| h.record == sample_record()).count() as u32;
            Box::pin(async move { Ok(applied) })
        }

        fn handle_coordinate(&self, call: CoordinateCall) -> BoxFuture<'static, Result<CoordinateReply, KvError>> {
            self.log(format!("coordinate {} {:?}", call.mutation.name(), call.consistency.level));
            if &call.key[..] == b"text" {
                return Box::pin(async { Err(KvError::NotAnInteger) });
            }
            let result = WriteResult { applied: true, version: 7, ..WriteResult::default() };
            Box::pin(async move { Ok(CoordinateReply { result, counter: 3, current: Some(sample_record()) }) })
        }
    }

    /// Serves `handler` on 127.0.0.1:0; the server stops when the test's runtime does.
    async fn serve(handler: Arc<FakeHandler>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let server = tonic::transport::Server::builder().add_service(replica_server(handler));
        tokio::spawn(server.serve_with_incoming(incoming));
        addr
    }

    fn peer(addr: SocketAddr) -> Peer {
        Peer { host_id: "server".into(), addr }
    }

    fn transport(call_timeout: Duration) -> GrpcTransport {
        GrpcTransport::new(call_timeout, Duration::from_secs(1))
    }

    #[tokio::test]
    async fn every_call_round_trips_over_one_pooled_channel() {
        let handler = Arc::new(FakeHandler::default());
        let to = peer(serve(Arc::clone(&handler)).await);
        let t = transport(Duration::from_secs(5));
        let key = Bytes::from_static(b"k");

        assert_eq!(t.read(&to, "ks", &key).await, Ok(Some(sample_record())));
        assert_eq!(t.read(&to, "ks", &Bytes::from_static(b"missing")).await, Ok(None));
        let write = ReplicaWrite { keyspace: "ks".into(), key: key.clone(), record: sample_record(), hint_for: None };
        assert_eq!(t.write(&to, write).await, Ok(()));
        let hint = HintedWrite { keyspace: "ks".into(), key: key.clone(), record: sample_record(), created_at_ms: 1 };
        assert_eq!(t.deliver_hints(&to, "me", vec![hint.clone(), hint]).await, Ok(2));
        let call = CoordinateCall {
            keyspace: "ks".into(),
            key,
            mutation: Mutation::Increment { delta: 1, ttl_seconds: None },
            consistency: Consistency::level(ConsistencyLevel::Quorum),
        };
        let reply = t.coordinate(&to, call).await.unwrap();
        assert_eq!((reply.result.version, reply.counter, reply.current), (7, 3, Some(sample_record())));
        let query = PageQuery {
            keyspace: "ks".into(),
            order: crate::transport::PageOrder::ByToken { after: Some((5, Bytes::from_static(b"a"))) },
            limit: 10,
        };
        let page = t.page(&to, query).await.unwrap();
        assert_eq!(page, vec![PageItem { token: 7, key: Bytes::from_static(b"k"), record: sample_record() }]);

        assert_eq!(
            handler.calls(),
            [
                "read ks/k",
                "read ks/missing",
                "write ks/k hint_for=None",
                "hints 2",
                "coordinate incr Some(Quorum)",
                "page ks limit=10",
            ]
        );
        assert_eq!(t.pooled_channels(), 1);
    }

    #[tokio::test]
    async fn handler_errors_arrive_as_remote_with_their_stable_code() {
        let to = peer(serve(Arc::new(FakeHandler::default())).await);
        let write = ReplicaWrite {
            keyspace: "nope".into(),
            key: Bytes::from_static(b"k"),
            record: sample_record(),
            hint_for: Some("other".into()),
        };
        let err = transport(Duration::from_secs(5)).write(&to, write).await.unwrap_err();
        let TransportError::Remote { code, rkv_code, message, .. } = err else {
            panic!("expected Remote, got {err:?}")
        };
        assert_eq!((code, rkv_code.as_deref()), (RemoteStatus::InvalidArgument, Some("RKV-UNKNOWN-KEYSPACE")));
        assert!(message.starts_with("keyspace \"nope\" does not exist"), "{message}");
    }

    #[tokio::test]
    async fn a_forwarded_call_keeps_the_stable_code_its_replica_answered_with() {
        let to = peer(serve(Arc::new(FakeHandler::default())).await);
        let call = CoordinateCall {
            keyspace: "ks".into(),
            key: Bytes::from_static(b"text"),
            mutation: Mutation::Increment { delta: 1, ttl_seconds: None },
            consistency: Consistency::level(ConsistencyLevel::Quorum),
        };
        let err = transport(Duration::from_secs(5)).coordinate(&to, call).await.unwrap_err();
        let TransportError::Remote { code, rkv_code, message, .. } = err else {
            panic!("expected Remote, got {err:?}")
        };
        assert_eq!((code, rkv_code.as_deref()), (RemoteStatus::FailedPrecondition, Some("RKV-NOT-AN-INTEGER")));
        assert!(message.starts_with("value of key is not a decimal integer"), "{message}");
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_before_the_handler() {
        let handler = Arc::new(FakeHandler::default());
        let addr = serve(Arc::clone(&handler)).await;
        let mut client = ReplicaClient::connect(format!("http://{addr}")).await.unwrap();
        let status = client.coordinate(pb::CoordinateRequest::default()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("RKV-BAD-PEER-REQUEST"), "{}", status.message());
        assert!(handler.calls().is_empty(), "{:?}", handler.calls());
    }

    #[tokio::test]
    async fn a_slow_peer_times_out() {
        let handler = Arc::new(FakeHandler::default());
        let to = peer(serve(Arc::clone(&handler)).await);
        let timeout = Duration::from_millis(200);
        let result = transport(timeout).read(&to, "ks", &Bytes::from_static(b"slow")).await;
        assert_eq!(result, Err(TransportError::Timeout { peer: to.to_string(), timeout }));
        assert_eq!(handler.calls(), ["read ks/slow"], "the call reached the handler before timing out");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let result = transport(Duration::from_secs(5)).read(&peer(addr), "ks", &Bytes::from_static(b"k")).await;
        assert!(matches!(result, Err(TransportError::Unreachable { .. })), "{result:?}");
    }
}
