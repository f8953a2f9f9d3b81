//! [`Streamer`]: pulls token ranges from their current replicas into this
//! node, page by page in token order.
//!
//! Each range is cut into segments that do not wrap; each segment is read
//! from one source at a time (the preferred one first, then the others that
//! are alive and serve reads), merged into local storage with the normal
//! version-vector merge (idempotent, so a page applied twice is harmless),
//! and its position is persisted in the meta partition after every page. A
//! restarted node resumes each segment after the last position it stored.
//! The receiver paces itself to `[streaming] throughput_mb_per_s`.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::replication::{Coordinator, NodeParts};
use crate::ring::Token;
use crate::storage::ScanPosition;

use super::peers::{FetchPage, Segment, StreamPeers};
use super::progress::{StreamProgress, Throttle};
use super::{RangeMove, TopologyError};

/// Streaming settings (`[streaming]`).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Average rate limit of one stream, MB/s (0 = unlimited).
    pub throughput_mb_per_s: u64,
    /// Records per page.
    pub page_records: u32,
}

const DONE: &[u8] = b"D";

/// Pulls ranges into this node.
#[derive(Debug, Clone)]
pub struct Streamer {
    pub(super) coordinator: Coordinator,
    /// This node's storage and cluster view (given at construction).
    pub(super) node: NodeParts,
    pub(super) peers: Arc<dyn StreamPeers>,
    pub(super) progress: StreamProgress,
    pub(super) settings: StreamSettings,
    pub(super) stop: CancellationToken,
}

/// The non-wrapping segments of `(start, end]` (`start == end`: the whole ring).
pub fn segments(start: Token, end: Token) -> Vec<Segment> {
    use std::cmp::Ordering::*;
    match start.cmp(&end) {
        Equal => vec![Segment { lower: None, upper: Token::MAX }],
        Less => vec![Segment { lower: Some(start), upper: end }],
        Greater if start == Token::MAX => vec![Segment { lower: None, upper: end }],
        Greater => vec![Segment { lower: Some(start), upper: Token::MAX }, Segment { lower: None, upper: end }],
    }
}

/// A stable id of a set of moves, so that a restarted node resumes the same transition.
pub fn moves_id(moves: &[RangeMove]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for m in moves {
        h.update(&m.range.start.to_be_bytes());
        h.update(&m.range.end.to_be_bytes());
        h.update(m.to.as_str().as_bytes());
        h.update(&[0]);
    }
    h.digest()
}

fn progress_key(op: u64, seg: Segment) -> String {
    let lower = seg.lower.map_or_else(|| "-".to_owned(), |l| l.to_string());
    format!("stream/{op:016x}/{lower}/{}", seg.upper)
}

fn encode_position(p: &ScanPosition) -> Vec<u8> {
    let mut out = p.token.to_be_bytes().to_vec();
    out.push(p.keyspace.len() as u8);
    out.extend_from_slice(p.keyspace.as_bytes());
    out.extend_from_slice(&p.key);
    out
}

fn decode_position(raw: &[u8]) -> Option<ScanPosition> {
    let (token, rest) = raw.split_first_chunk::<8>()?;
    let (&len, rest) = rest.split_first()?;
    let (ks, key) = rest.split_at_checked(usize::from(len))?;
    Some(ScanPosition {
        token: u64::from_be_bytes(*token),
        keyspace: std::str::from_utf8(ks).ok()?.to_owned(),
        key: Bytes::copy_from_slice(key),
    })
}

/// Where a segment stands in the meta partition.
enum Resume {
    Start,
    After(ScanPosition),
    Done,
}

impl Streamer {
    async fn meta_get(&self, name: String) -> Result<Resume, TopologyError> {
        let storage = Arc::clone(&self.node.storage);
        let raw = tokio::task::spawn_blocking(move || storage.get_meta(&name))
            .await
            .map_err(|_| TopologyError::Stopped)??;
        Ok(match raw {
            None => Resume::Start,
            Some(v) if v.as_ref() == DONE => Resume::Done,
            Some(v) => decode_position(&v).map_or(Resume::Start, Resume::After),
        })
    }

    async fn meta_put(&self, name: String, value: Vec<u8>) -> Result<(), TopologyError> {
        let storage = Arc::clone(&self.node.storage);
        tokio::task::spawn_blocking(move || storage.put_meta(&name, &value))
            .await
            .map_err(|_| TopologyError::Stopped)??;
        Ok(())
    }

    /// Streams every move whose gainer is this node; `prefer` is tried first
    /// as a source. Returns (records, bytes) received.
    pub async fn run(
        &self,
        operation: &str,
        moves: &[RangeMove],
        prefer: Option<&str>,
    ) -> Result<(u64, u64), TopologyError> {
        let local = self.node.view.local_host_id().to_owned();
        let mine: Vec<&RangeMove> = moves.iter().filter(|m| m.to.as_str() == local).collect();
        let op = moves_id(moves);
        let work: Vec<(Segment, &RangeMove)> =
            mine.iter().flat_map(|m| segments(m.range.start, m.range.end).into_iter().map(move |s| (s, *m))).collect();
        self.progress.begin(operation, work.len() as u32);
        tracing::info!(operation, ranges = work.len(), op = format!("{op:016x}"), "streaming ranges in");
        let started = std::time::Instant::now();
        let mut throttle = Throttle::new(self.settings.throughput_mb_per_s);
        let mut totals = (0u64, 0u64);
        let result = async {
            for (seg, m) in work {
                let (records, bytes) = self.segment(op, seg, m, prefer, &mut throttle).await?;
                totals.0 += records;
                totals.1 += bytes;
                self.progress.range_done();
            }
            Ok::<_, TopologyError>(())
        }
        .await;
        self.progress.end();
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            operation,
            records = totals.0,
            bytes = totals.1,
            seconds = secs,
            mb_per_s = totals.1 as f64 / 1e6 / secs.max(1e-9),
            ok = result.is_ok(),
            "streaming finished"
        );
        result.map(|()| totals)
    }

    /// Streams one segment, resuming after its stored position.
    async fn segment(
        &self,
        op: u64,
        seg: Segment,
        m: &RangeMove,
        prefer: Option<&str>,
        throttle: &mut Throttle,
    ) -> Result<(u64, u64), TopologyError> {
        let key = progress_key(op, seg);
        let mut after = match self.meta_get(key.clone()).await? {
            Resume::Done => return Ok((0, 0)),
            Resume::Start => None,
            Resume::After(p) => Some(p),
        };
        let view = &self.node.view;
        let local = view.local_host_id().to_owned();
        let mut sources: Vec<_> = m
            .sources
            .iter()
            .filter(|h| h.as_str() != local)
            .filter_map(|h| view.member(h.as_str()))
            .filter(|s| s.serves_reads() && view.is_alive(&s.host_id))
            .collect();
        sources.sort_by_key(|s| Some(s.host_id.as_str()) != prefer);
        let mut totals = (0u64, 0u64);
        let mut source = 0;
        loop {
            if self.stop.is_cancelled() {
                return Err(TopologyError::Stopped);
            }
            let Some(from) = sources.get(source) else {
                return Err(TopologyError::NoSource {
                    start: m.range.start,
                    end: m.range.end,
                    tried: m.sources.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", "),
                });
            };
            let req = FetchPage {
                segment: seg,
                after: after.clone(),
                limit: self.settings.page_records,
                requester: local.clone(),
            };
            let page = match self.peers.fetch(from.grpc_addr, req).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(source = %from.host_id, error = %e, "stream source failed; trying the next replica");
                    source += 1;
                    continue;
                }
            };
            let last = page.records.last().map(|r| ScanPosition {
                token: r.token,
                keyspace: r.keyspace.clone(),
                key: r.key.clone(),
            });
            let count = page.records.len() as u64;
            self.merge(page.records).await?;
            self.progress.add(count, page.bytes);
            totals = (totals.0 + count, totals.1 + page.bytes);
            if page.done || last.is_none() {
                self.meta_put(key, DONE.to_vec()).await?;
                return Ok(totals);
            }
            after = last;
            if let Some(p) = &after {
                self.meta_put(key.clone(), encode_position(p)).await?;
            }
            throttle.pace(page.bytes).await;
        }
    }

    /// Merges records into local storage, one storage batch per keyspace;
    /// returns once all are durable.
    async fn merge(&self, records: Vec<crate::storage::StoredRecord>) -> Result<(), TopologyError> {
        let keyspaces = self.coordinator.keyspaces();
        let mut by_keyspace: std::collections::BTreeMap<String, Vec<(bytes::Bytes, crate::version::Record)>> =
            Default::default();
        for r in records {
            if keyspaces.get(&r.keyspace).is_err() {
                tracing::warn!(keyspace = %r.keyspace, "streamed record of a keyspace this node does not define; skipped");
                continue;
            }
            by_keyspace.entry(r.keyspace).or_default().push((r.key, r.record));
        }
        for (keyspace, items) in by_keyspace {
            self.coordinator.apply_replica_writes(&keyspace, items).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_the_range_without_wrapping() {
        assert_eq!(segments(5, 5), vec![Segment { lower: None, upper: u64::MAX }]);
        assert_eq!(segments(5, 9), vec![Segment { lower: Some(5), upper: 9 }]);
        assert_eq!(
            segments(9, 5),
            vec![Segment { lower: Some(9), upper: u64::MAX }, Segment { lower: None, upper: 5 }]
        );
        assert_eq!(segments(u64::MAX, 5), vec![Segment { lower: None, upper: 5 }]);
    }

    mod resume {
        //! A stream cut off mid-range resumes after the last stored position,
        //! and a finished one fetches nothing again.
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use futures::FutureExt;
        use futures::future::BoxFuture;

        use super::super::*;
        use crate::clock::{Clock, ManualClock};
        use crate::config::{Config, ServerConfig};
        use crate::membership::{Member, MemberStatus};
        use crate::replication::{Keyspaces, Limits, PutOptions};
        use crate::ring::{HostId, TokenRange};
        use crate::storage::{MemoryStorage, Storage};
        use crate::topology::{Description, FetchedPage, ProgressSnapshot};

        /// Serves pages from a storage as the Streaming service does; fails the `fail_at`-th call.
        #[derive(Debug)]
        struct Peers {
            storage: Arc<MemoryStorage>,
            calls: AtomicUsize,
            fail_at: usize,
            afters: Mutex<Vec<Option<ScanPosition>>>,
        }

        impl StreamPeers for Peers {
            fn fetch(
                &self,
                _: std::net::SocketAddr,
                req: FetchPage,
            ) -> BoxFuture<'static, Result<FetchedPage, TopologyError>> {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                self.afters.lock().unwrap().push(req.after.clone());
                let result = if n == self.fail_at {
                    Err(TopologyError::Peer { peer: "src".into(), message: "connection reset".into() })
                } else {
                    let lower = req.segment.lower.map(|l| ScanPosition {
                        token: l + 1,
                        keyspace: String::new(),
                        key: Bytes::new(),
                    });
                    let after = req.after.or(lower);
                    let records =
                        self.storage.scan(after.as_ref(), Some(req.segment.upper), None, req.limit as usize).unwrap();
                    let done = records.len() < req.limit as usize;
                    Ok(FetchedPage { bytes: records.len() as u64 * 10, records, done })
                };
                async move { result }.boxed()
            }
            fn describe(
                &self,
                _: std::net::SocketAddr,
                _: &str,
            ) -> BoxFuture<'static, Result<Description, TopologyError>> {
                unimplemented!("not used by the streamer")
            }
            fn set_status(
                &self,
                _: std::net::SocketAddr,
                _: &str,
                _: MemberStatus,
            ) -> BoxFuture<'static, Result<(), TopologyError>> {
                unimplemented!("not used by the streamer")
            }
            fn stream_pending(
                &self,
                _: std::net::SocketAddr,
                _: Option<String>,
            ) -> BoxFuture<'static, Result<(u64, u64), TopologyError>> {
                unimplemented!("not used by the streamer")
            }
            fn progress(&self, _: std::net::SocketAddr) -> BoxFuture<'static, Result<ProgressSnapshot, TopologyError>> {
                unimplemented!("not used by the streamer")
            }
        }

        fn coordinator(id: u64, storage: Arc<MemoryStorage>) -> (Coordinator, NodeParts) {
            let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_micros(1_700_000_000_000_000));
            let node = NodeParts::solo(id, storage, Arc::clone(&clock));
            let keyspaces = Keyspaces::from_config(&Config::default());
            (Coordinator::solo(id, &node, keyspaces, clock, Limits::from(&ServerConfig::default())), node)
        }

        #[tokio::test]
        async fn an_interrupted_stream_resumes_where_it_stopped_and_copies_everything() {
            let src_storage = Arc::new(MemoryStorage::new());
            let (src, _) = coordinator(1, Arc::clone(&src_storage));
            for i in 0..250 {
                let key = Bytes::from(format!("k{i}"));
                src.put("", key, Bytes::from(format!("v{i}")), PutOptions::default()).await.unwrap();
            }
            let dst_storage = Arc::new(MemoryStorage::new());
            let (dst, dst_node) = coordinator(2, Arc::clone(&dst_storage));
            dst_node.view.upsert(Member {
                host_id: "src".into(),
                node_id: 1,
                grpc_addr: "127.0.0.1:9".parse().unwrap(),
                http_addr: "127.0.0.1:9".parse().unwrap(),
                zone: String::new(),
                rack: String::new(),
                tokens: vec![1],
                generation: 1,
                status: MemberStatus::Normal,
            });
            let peers = Arc::new(Peers {
                storage: Arc::clone(&src_storage),
                calls: AtomicUsize::new(0),
                fail_at: 3,
                afters: Mutex::default(),
            });
            let streamer = Streamer {
                coordinator: dst.clone(),
                node: dst_node.clone(),
                peers: peers.clone(),
                progress: StreamProgress::new(None),
                settings: StreamSettings { throughput_mb_per_s: 0, page_records: 50 },
                stop: CancellationToken::new(),
            };
            let to = HostId::from(dst_node.view.local_host_id());
            let moves =
                vec![RangeMove { range: TokenRange { start: 7, end: 7 }, to, sources: vec![HostId::from("src")] }];

            let first = streamer.run("join", &moves, None).await;
            assert!(matches!(first, Err(TopologyError::NoSource { .. })), "{first:?}");
            let copied = dst_storage.scan(None, None, None, 1000).unwrap();
            assert_eq!(copied.len(), 100, "two pages of 50 arrived before the cut");

            let (records, _) = streamer.run("join", &moves, None).await.unwrap();
            assert_eq!(records, 150, "only the rest is fetched again");
            let afters = peers.afters.lock().unwrap().clone();
            let last = copied.last().unwrap();
            let resumed_at = afters[3].clone().expect("the retry resumes after a position");
            assert_eq!((resumed_at.token, resumed_at.key.clone()), (last.token, last.key.clone()));
            let all = src_storage.scan(None, None, None, 1000).unwrap();
            assert_eq!(dst_storage.scan(None, None, None, 1000).unwrap(), all, "every record, merged as it was");

            let calls = peers.calls.load(Ordering::SeqCst);
            assert_eq!(streamer.run("join", &moves, None).await.unwrap().0, 0);
            assert_eq!(peers.calls.load(Ordering::SeqCst), calls, "a finished range is not fetched again");
            assert_eq!(streamer.progress.snapshot().ranges_done, 1);
        }
    }

    #[test]
    fn positions_round_trip() {
        let p = ScanPosition { token: 42, keyspace: "default".into(), key: Bytes::from_static(b"k\x00\xff") };
        let raw = encode_position(&p);
        assert_ne!(raw, DONE);
        assert_eq!(decode_position(&raw), Some(p));
        assert_eq!(decode_position(b"short"), None);
    }
}
