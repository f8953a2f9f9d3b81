//! gRPC helpers over `ringkv.v1.KV`, for tests that talk to a node directly.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use ringkv_proto::v1::kv_client::KvClient;
use ringkv_proto::v1::{
    BatchGetRequest, BatchWriteRequest, Consistency, ConsistencyLevel, Entry, GetRequest, GetResponse, ListRequest,
    PutRequest, ScanRequest, WriteOp, write_op,
};
use tonic::transport::{Channel, Endpoint};

/// Deadline of each request made through [`connect`]ed clients.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A `KV` client of the node at `endpoint` (`http://HOST:PORT`).
pub async fn connect(endpoint: &str) -> Result<KvClient<Channel>> {
    let channel = Endpoint::from_shared(endpoint.to_owned())
        .with_context(|| format!("bad endpoint {endpoint}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("connect to {endpoint}"))?;
    Ok(KvClient::new(channel))
}

/// A blind put in the default keyspace, with an optional TTL.
pub async fn put(client: &mut KvClient<Channel>, key: &str, value: &str, ttl_seconds: Option<u64>) -> Result<()> {
    client
        .put(PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            ttl_seconds,
            ..Default::default()
        })
        .await
        .with_context(|| format!("put {key:?}"))?;
    Ok(())
}

/// Reads `key` from the default keyspace.
pub async fn get(client: &mut KvClient<Channel>, key: &str) -> Result<GetResponse> {
    let response = client
        .get(GetRequest { key: Bytes::copy_from_slice(key.as_bytes()), ..Default::default() })
        .await
        .with_context(|| format!("get {key:?}"))?;
    Ok(response.into_inner())
}

/// The single live value of `key`; `None` when not found; an error when the
/// key has several siblings or a tombstone (a single writer never makes any).
pub async fn get_value(client: &mut KvClient<Channel>, key: &str) -> Result<Option<Bytes>> {
    let response = get(client, key).await?;
    if !response.found {
        return Ok(None);
    }
    match response.siblings.as_slice() {
        [one] if !one.tombstone => Ok(Some(one.value.clone())),
        other => bail!("get {key:?}: expected one live sibling, got {other:?}"),
    }
}

/// A blind put in the default keyspace at consistency `level`.
pub async fn put_at(client: &mut KvClient<Channel>, key: &str, value: &str, level: ConsistencyLevel) -> Result<()> {
    client
        .put(PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
            consistency: Some(Consistency { level: level.into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .with_context(|| format!("put {key:?} at {}", level.as_str_name()))?;
    Ok(())
}

/// Blind puts of `(key, value)` pairs in one `BatchWrite` (not atomic) at
/// consistency `level`; fails naming the first op the node refused.
pub async fn put_many_at(
    client: &mut KvClient<Channel>,
    pairs: &[(String, String)],
    level: ConsistencyLevel,
) -> Result<()> {
    let ops = pairs
        .iter()
        .map(|(k, v)| WriteOp {
            key: Bytes::copy_from_slice(k.as_bytes()),
            op: Some(write_op::Op::Put(Bytes::copy_from_slice(v.as_bytes()))),
            ..Default::default()
        })
        .collect();
    let request = BatchWriteRequest {
        ops,
        consistency: Some(Consistency { level: level.into(), ..Default::default() }),
        ..Default::default()
    };
    let response = client
        .batch_write(request)
        .await
        .with_context(|| format!("batch of {} puts at {}", pairs.len(), level.as_str_name()))?
        .into_inner();
    if let Some(failed) = response.results.iter().find(|r| !r.ok) {
        bail!("put {:?} in a batch at {}: {}", String::from_utf8_lossy(&failed.key), level.as_str_name(), failed.error);
    }
    if response.success_count as usize != pairs.len() {
        bail!("a batch of {} puts reported {} successes", pairs.len(), response.success_count);
    }
    Ok(())
}

/// The single live value of each of `keys` (in order) read in one
/// `BatchGet` at consistency `level`; as [`get_value`] for each.
pub async fn get_many_at(
    client: &mut KvClient<Channel>,
    keys: &[String],
    level: ConsistencyLevel,
) -> Result<Vec<Option<Bytes>>> {
    let request = BatchGetRequest {
        keys: keys.iter().map(|k| Bytes::copy_from_slice(k.as_bytes())).collect(),
        consistency: Some(Consistency { level: level.into(), ..Default::default() }),
        ..Default::default()
    };
    let response = client
        .batch_get(request)
        .await
        .with_context(|| format!("batch of {} gets at {}", keys.len(), level.as_str_name()))?
        .into_inner();
    if response.results.len() != keys.len() {
        bail!("a batch of {} gets returned {} results", keys.len(), response.results.len());
    }
    let mut values = Vec::with_capacity(keys.len());
    for (key, result) in keys.iter().zip(response.results) {
        if result.key.as_ref() != key.as_bytes() {
            bail!("batch get results out of order: expected {key:?}, got {:?}", String::from_utf8_lossy(&result.key));
        }
        if !result.found {
            values.push(None);
            continue;
        }
        match result.siblings.as_slice() {
            [one] if !one.tombstone => values.push(Some(one.value.clone())),
            other => bail!("get {key:?}: expected one live sibling, got {other:?}"),
        }
    }
    Ok(values)
}

/// Like [`get_value`], read at consistency `level`.
pub async fn get_value_at(client: &mut KvClient<Channel>, key: &str, level: ConsistencyLevel) -> Result<Option<Bytes>> {
    let response = client
        .get(GetRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            consistency: Some(Consistency { level: level.into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .with_context(|| format!("get {key:?} at {}", level.as_str_name()))?
        .into_inner();
    if !response.found {
        return Ok(None);
    }
    match response.siblings.as_slice() {
        [one] if !one.tombstone => Ok(Some(one.value.clone())),
        other => bail!("get {key:?}: expected one live sibling, got {other:?}"),
    }
}

/// Every entry of the default keyspace, with values, following the cursors.
pub async fn scan_all(client: &mut KvClient<Channel>) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut cursor = Bytes::new();
    // A bound on pages, so a cursor that never advances fails instead of hanging.
    for _ in 0..100_000 {
        let page = client
            .scan(ScanRequest { cursor: cursor.clone(), count: 1000, include_values: true, ..Default::default() })
            .await
            .context("scan")?
            .into_inner();
        entries.extend(page.entries);
        if page.done {
            return Ok(entries);
        }
        if page.next_cursor == cursor {
            bail!("scan cursor did not advance after {} entries", entries.len());
        }
        cursor = page.next_cursor;
    }
    bail!("scan did not finish after 100000 pages")
}

/// Keys of the default keyspace starting with `prefix`, following the cursors.
pub async fn list_keys(client: &mut KvClient<Channel>, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = Bytes::new();
    for _ in 0..100_000 {
        let page = client
            .list(ListRequest {
                prefix: Bytes::copy_from_slice(prefix.as_bytes()),
                limit: 1000,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("list {prefix:?}"))?
            .into_inner();
        keys.extend(page.entries.iter().map(|e| String::from_utf8_lossy(&e.key).into_owned()));
        if !page.has_more {
            return Ok(keys);
        }
        if page.next_cursor == cursor {
            bail!("list cursor did not advance after {} keys", keys.len());
        }
        cursor = page.next_cursor;
    }
    bail!("list did not finish after 100000 pages")
}
