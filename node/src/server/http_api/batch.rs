//! Batch endpoints: `POST /api/v1/batch/put` and `POST /api/v1/batch/get`.
//!
//! - `batch/put` `{"operations":[{"key","value"|"value_base64","ttl"?,
//!   "context"?,"delete"?: true}],"atomic"?: false}` →
//!   `{"success_count","failed_keys":[…],"results":[{"key","ok","version",
//!   "context"} | {"key","ok":false,"error","code"}]}`. With `"atomic": true`
//!   every operation is validated first and all are applied together or none:
//!   a failure is then the status and error body of the failing check.
//!   An operation with `"delete": true` deletes (and must carry no value).
//! - `batch/get` `{"keys":[…]}` → `{"results":[{"key","found","value"|
//!   "value_base64","version","context"} | {"key","found","siblings",…}]}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::replication::{BatchOp, ReadResult};
use crate::server::status::classify;

use super::Ctx;
use super::error::HttpError;
use super::extract::{JsonBody, Level, Params};
use super::json::{b64, context_from, object, put_value, siblings, value_from};
use super::keys::{KeyspaceQuery, keyspace};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutBatch {
    operations: Vec<PutOp>,
    #[serde(default)]
    atomic: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutOp {
    key: String,
    value: Option<String>,
    value_base64: Option<String>,
    ttl: Option<u64>,
    context: Option<String>,
    #[serde(default)]
    delete: bool,
}

impl PutOp {
    fn into_op(self, index: usize) -> Result<BatchOp, HttpError> {
        let field = format!("operations[{index}].value");
        let value = if self.delete {
            if self.value.is_some() || self.value_base64.is_some() {
                return Err(HttpError::DeleteWithValue { index });
            }
            None
        } else {
            Some(value_from(&field, self.value, self.value_base64.as_deref())?)
        };
        let context = context_from(&format!("operations[{index}].context"), self.context.as_deref())?;
        Ok(BatchOp { key: Bytes::from(self.key), value, context, ttl_seconds: self.ttl })
    }
}

/// The keys (for the reply), operations and `atomic` flag of a `batch/put` body.
pub(super) fn batch_ops(body: PutBatch) -> Result<(Vec<String>, Vec<BatchOp>, bool), HttpError> {
    let keys: Vec<String> = body.operations.iter().map(|op| op.key.clone()).collect();
    let ops = body.operations.into_iter().enumerate().map(|(i, op)| op.into_op(i)).collect::<Result<Vec<_>, _>>()?;
    Ok((keys, ops, body.atomic))
}

/// `POST /batch/put`.
pub(super) async fn put(
    State(ctx): State<Ctx>,
    Level(consistency): Level,
    Params(q): Params<KeyspaceQuery>,
    JsonBody(body): JsonBody<PutBatch>,
) -> Result<Json<Value>, HttpError> {
    let (keys, ops, atomic) = batch_ops(body)?;
    let coordinator = &ctx.http.coordinator;
    let outcomes = coordinator.batch_write(keyspace(&q.keyspace), ops, atomic, consistency).await?;
    let mut failed_keys = Vec::new();
    let mut results = Vec::with_capacity(outcomes.len());
    for (key, outcome) in keys.into_iter().zip(outcomes) {
        match outcome {
            Ok(w) => results.push(json!({ "key": key, "ok": true, "version": w.version, "context": b64(&w.context) })),
            Err(e) => {
                let code = classify(&e).code;
                results.push(json!({ "key": key, "ok": false, "error": e.to_string(), "code": code }));
                failed_keys.push(key);
            }
        }
    }
    let success_count = results.len() - failed_keys.len();
    Ok(Json(json!({ "success_count": success_count, "failed_keys": failed_keys, "results": results })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetBatch {
    keys: Vec<String>,
}

/// The keys of a `batch/get` body.
pub(super) fn batch_keys(body: GetBatch) -> Vec<Bytes> {
    body.keys.into_iter().map(Bytes::from).collect()
}

/// `POST /batch/get`.
pub(super) async fn get(
    State(ctx): State<Ctx>,
    Level(consistency): Level,
    Params(q): Params<KeyspaceQuery>,
    JsonBody(body): JsonBody<GetBatch>,
) -> Result<Json<Value>, HttpError> {
    let keys = batch_keys(body);
    let reads = ctx.http.coordinator.batch_get(keyspace(&q.keyspace), keys, consistency).await?;
    let results: Vec<Value> = reads.iter().map(|(key, read)| read_entry(key, read)).collect();
    Ok(Json(json!({ "results": results })))
}

fn read_entry(key: &[u8], read: &ReadResult) -> Value {
    let mut entry = object(json!({ "found": read.found }));
    super::json::put_key(&mut entry, key);
    if read.found {
        match read.siblings.as_slice() {
            [single] => put_value(&mut entry, single.value.as_deref().unwrap_or_default()),
            many => {
                entry.insert("siblings".into(), siblings(many));
            }
        }
        entry.insert("version".into(), json!(read.version));
        entry.insert("context".into(), json!(b64(&read.context)));
    }
    Value::Object(entry)
}
