//! gRPC front end: `ringkv.v1.KV` over the [`Coordinator`].
//!
//! Converts proto messages to coordinator calls and back; every error goes
//! through `status::to_status`; every call is timed into [`NodeMetrics`].

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use ringkv_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::error::KvError;
use crate::replication::{
    BatchOp, CasExpectation, Consistency, ConsistencyLevel, Coordinator, Cursor, Page, PutOptions, ReadResult,
};
use crate::version::Sibling;

use super::metrics::{NodeMetrics, outcome};
use super::status::{invalid_argument, to_status};

/// The `ringkv.v1.KV` service.
#[derive(Debug, Clone)]
pub struct KvService {
    coordinator: Coordinator,
    metrics: NodeMetrics,
}

impl KvService {
    /// A service over `coordinator`, recording into `metrics`.
    pub fn new(coordinator: Coordinator, metrics: NodeMetrics) -> Self {
        Self { coordinator, metrics }
    }

    async fn timed<T, F>(&self, op: &'static str, fut: F) -> Result<Response<T>, Status>
    where
        F: Future<Output = Result<T, KvError>>,
    {
        let start = Instant::now();
        let result = fut.await;
        self.metrics.observe("grpc", op, outcome(&result), start.elapsed());
        result.map(Response::new).map_err(|e| to_status(&e))
    }
}

/// Converts the proto consistency (absent = defaults).
pub fn consistency_from_proto(c: Option<pb::Consistency>) -> Result<Consistency, Status> {
    let Some(c) = c else { return Ok(Consistency::default()) };
    let level = match pb::ConsistencyLevel::try_from(c.level) {
        Ok(pb::ConsistencyLevel::Unspecified) => None,
        Ok(pb::ConsistencyLevel::One) => Some(ConsistencyLevel::One),
        Ok(pb::ConsistencyLevel::Two) => Some(ConsistencyLevel::Two),
        Ok(pb::ConsistencyLevel::Three) => Some(ConsistencyLevel::Three),
        Ok(pb::ConsistencyLevel::Quorum) => Some(ConsistencyLevel::Quorum),
        Ok(pb::ConsistencyLevel::All) => Some(ConsistencyLevel::All),
        Ok(pb::ConsistencyLevel::LocalQuorum) => Some(ConsistencyLevel::LocalQuorum),
        Ok(pb::ConsistencyLevel::EachQuorum) => Some(ConsistencyLevel::EachQuorum),
        Ok(pb::ConsistencyLevel::Any) => Some(ConsistencyLevel::Any),
        Err(_) => {
            return Err(invalid_argument(
                "RKV-UNKNOWN-CONSISTENCY",
                format!("unknown consistency level number {}; use a ConsistencyLevel value", c.level),
            ));
        }
    };
    Ok(Consistency { level, r: c.r, w: c.w })
}

fn sibling_to_proto(s: &Sibling) -> pb::Sibling {
    pb::Sibling {
        value: s.value.clone().unwrap_or_default(),
        tombstone: s.value.is_none(),
        timestamp_micros: s.timestamp_micros,
        expires_at_ms: s.expires_at_ms,
    }
}

fn siblings_to_proto(siblings: &[Sibling]) -> Vec<pb::Sibling> {
    siblings.iter().map(sibling_to_proto).collect()
}

fn key_result(key: Bytes, r: ReadResult) -> pb::KeyResult {
    pb::KeyResult {
        key,
        found: r.found,
        siblings: siblings_to_proto(&r.siblings),
        context: r.context,
        version: r.version,
    }
}

fn cursor(bytes: Bytes) -> Option<Cursor> {
    (!bytes.is_empty()).then_some(Cursor(bytes))
}

fn entries(page: &Page) -> Vec<pb::Entry> {
    page.entries.iter().map(|e| pb::Entry { key: e.key.clone(), value: e.value.clone().unwrap_or_default() }).collect()
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        self.timed("get", async {
            let r = self.coordinator.get(&req.keyspace, req.key, c).await?;
            Ok(pb::GetResponse {
                found: r.found,
                siblings: siblings_to_proto(&r.siblings),
                context: r.context,
                version: r.version,
                ttl_remaining_ms: r.ttl_remaining_ms,
            })
        })
        .await
    }

    async fn put(&self, request: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let req = request.into_inner();
        let consistency = consistency_from_proto(req.consistency)?;
        let opts =
            PutOptions { context: req.context, ttl_seconds: req.ttl_seconds, if_absent: req.if_absent, consistency };
        self.timed("put", async {
            let r = self.coordinator.put(&req.keyspace, req.key, req.value, opts).await?;
            Ok(pb::PutResponse {
                applied: r.applied,
                context: r.context,
                version: r.version,
                timestamp_micros: r.timestamp_micros,
            })
        })
        .await
    }

    async fn delete(&self, request: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        self.timed("delete", async {
            let r = self.coordinator.delete(&req.keyspace, req.key, req.context, c).await?;
            Ok(pb::DeleteResponse { existed: r.existed, context: r.context, version: r.version })
        })
        .await
    }

    async fn batch_get(&self, request: Request<pb::BatchGetRequest>) -> Result<Response<pb::BatchGetResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        self.timed("batch_get", async {
            let rows = self.coordinator.batch_get(&req.keyspace, req.keys, c).await?;
            Ok(pb::BatchGetResponse { results: rows.into_iter().map(|(k, r)| key_result(k, r)).collect() })
        })
        .await
    }

    async fn batch_write(
        &self,
        request: Request<pb::BatchWriteRequest>,
    ) -> Result<Response<pb::BatchWriteResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        let mut ops = Vec::with_capacity(req.ops.len());
        for op in req.ops {
            let value = match op.op {
                Some(pb::write_op::Op::Put(v)) => Some(v),
                Some(pb::write_op::Op::Delete(_)) => None,
                None => {
                    return Err(invalid_argument("RKV-BAD-BATCH", "a batch op has neither put nor delete; set one"));
                }
            };
            ops.push(BatchOp { key: op.key, value, context: op.context, ttl_seconds: op.ttl_seconds });
        }
        let keys: Vec<Bytes> = ops.iter().map(|o| o.key.clone()).collect();
        self.timed("batch_write", async {
            let rows = self.coordinator.batch_write(&req.keyspace, ops, req.atomic, c).await?;
            let mut success_count = 0;
            let results = keys
                .into_iter()
                .zip(rows)
                .map(|(key, row)| match row {
                    Ok(w) => {
                        success_count += 1;
                        pb::WriteResult { key, ok: true, error: String::new(), version: w.version, context: w.context }
                    }
                    Err(e) => pb::WriteResult {
                        key,
                        ok: false,
                        error: to_status(&e).message().to_owned(),
                        ..Default::default()
                    },
                })
                .collect();
            Ok(pb::BatchWriteResponse { success_count, results })
        })
        .await
    }

    async fn compare_and_set(
        &self,
        request: Request<pb::CompareAndSetRequest>,
    ) -> Result<Response<pb::CompareAndSetResponse>, Status> {
        use pb::compare_and_set_request::Expected;
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        let expected = match req.expected {
            Some(Expected::ExpectedVersion(v)) => CasExpectation::Version(v),
            Some(Expected::ExpectedContext(ctx)) => CasExpectation::Context(ctx),
            Some(Expected::ExpectedValue(v)) => CasExpectation::Value(v),
            Some(Expected::ExpectAbsent(true)) => CasExpectation::Absent,
            Some(Expected::ExpectAbsent(false)) | None => {
                return Err(invalid_argument(
                    "RKV-BAD-CAS",
                    "compare-and-set needs an expectation: expected_version, expected_context, expected_value or expect_absent",
                ));
            }
        };
        self.timed("cas", async {
            let r = self
                .coordinator
                .compare_and_set(&req.keyspace, req.key, expected, req.new_value, req.ttl_seconds, c)
                .await?;
            Ok(pb::CompareAndSetResponse {
                applied: r.applied,
                version: r.version,
                context: r.context,
                current: siblings_to_proto(&r.current),
            })
        })
        .await
    }

    async fn increment(
        &self,
        request: Request<pb::IncrementRequest>,
    ) -> Result<Response<pb::IncrementResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        self.timed("incr", async {
            let (value, version) =
                self.coordinator.increment(&req.keyspace, req.key, req.delta, req.ttl_seconds, c).await?;
            Ok(pb::IncrementResponse { value, version })
        })
        .await
    }

    async fn list(&self, request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let req = request.into_inner();
        self.timed("list", async {
            let page = self
                .coordinator
                .list(&req.keyspace, req.prefix, req.limit as usize, cursor(req.cursor), req.include_values)
                .await?;
            Ok(pb::ListResponse {
                entries: entries(&page),
                has_more: page.next.is_some(),
                next_cursor: page.next.map(|c| c.0).unwrap_or_default(),
            })
        })
        .await
    }

    async fn scan(&self, request: Request<pb::ScanRequest>) -> Result<Response<pb::ScanResponse>, Status> {
        let req = request.into_inner();
        self.timed("scan", async {
            let page = self
                .coordinator
                .scan(&req.keyspace, req.count as usize, cursor(req.cursor), req.include_values)
                .await?;
            Ok(pb::ScanResponse {
                entries: entries(&page),
                done: page.next.is_none(),
                next_cursor: page.next.map(|c| c.0).unwrap_or_default(),
            })
        })
        .await
    }

    async fn touch(&self, request: Request<pb::TouchRequest>) -> Result<Response<pb::TouchResponse>, Status> {
        let req = request.into_inner();
        let c = consistency_from_proto(req.consistency)?;
        self.timed("touch", async {
            let version = self.coordinator.touch(&req.keyspace, req.key, req.ttl_seconds, c).await?;
            Ok(pb::TouchResponse { found: version.is_some(), version: version.unwrap_or_default() })
        })
        .await
    }
}
