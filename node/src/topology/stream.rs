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
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio_util::sync::CancellationToken;

use crate::replication::Coordinator;
use crate::ring::Token;
use crate::storage::ScanPosition;
use crate::transport::ReplicaWrite;

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
        let storage = Arc::clone(self.coordinator.storage());
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
        let storage = Arc::clone(self.coordinator.storage());
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
        let local = self.coordinator.view().local_host_id().to_owned();
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
        let view = self.coordinator.view();
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

    /// Merges records into local storage; returns once all are durable.
    async fn merge(&self, records: Vec<crate::storage::StoredRecord>) -> Result<(), TopologyError> {
        let keyspaces = self.coordinator.keyspaces();
        let writes: Vec<ReplicaWrite> = records
            .into_iter()
            .filter(|r| {
                let known = keyspaces.get(&r.keyspace).is_ok();
                if !known {
                    tracing::warn!(keyspace = %r.keyspace, "streamed record of a keyspace this node does not define; skipped");
                }
                known
            })
            .map(|r| ReplicaWrite { keyspace: r.keyspace, key: r.key, record: r.record, hint_for: None })
            .collect();
        stream::iter(writes.into_iter().map(|w| {
            let c = self.coordinator.clone();
            async move { c.apply_replica_write(w).await }
        }))
        .buffer_unordered(64)
        .try_collect::<Vec<()>>()
        .await?;
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

    #[test]
    fn positions_round_trip() {
        let p = ScanPosition { token: 42, keyspace: "default".into(), key: Bytes::from_static(b"k\x00\xff") };
        let raw = encode_position(&p);
        assert_ne!(raw, DONE);
        assert_eq!(decode_position(&raw), Some(p));
        assert_eq!(decode_position(b"short"), None);
    }
}
