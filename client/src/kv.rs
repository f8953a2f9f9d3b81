//! Typed methods of the `ringkv.v1.KV` service on [`Client`].
//!
//! Each method builds the proto request with the client's keyspace and
//! consistency and sends it through `Client::unary`. Reads (get, batch get,
//! list, scan) are marked idempotent and may be retried; writes never are.

use bytes::Bytes;
use ringkv_proto::v1::{
    BatchGetRequest, BatchWriteRequest, BatchWriteResponse, CompareAndSetRequest, CompareAndSetResponse, DeleteRequest,
    DeleteResponse, GetRequest, IncrementRequest, IncrementResponse, ListRequest, ListResponse, PutRequest,
    PutResponse, ScanRequest, ScanResponse, TouchRequest, kv_client::KvClient,
};

use crate::client::{Client, Idempotency, Rpc};
use crate::error::ClientError;
use crate::types::{BatchOp, CasExpectation, ListOptions, PutOptions, Record, ScanOptions};

const fn read(name: &'static str) -> Rpc {
    Rpc { name, idempotency: Idempotency::Read }
}

const fn write(name: &'static str) -> Rpc {
    Rpc { name, idempotency: Idempotency::Write }
}

impl Client {
    /// Reads a key: `None` when it has no live value.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Record>, ClientError> {
        let request =
            GetRequest { keyspace: self.keyspace().to_owned(), key: key.into(), consistency: self.consistency() };
        let response = self.unary(read("Get"), request, |ch, r| async move { KvClient::new(ch).get(r).await }).await?;
        Ok(Record::from_get(response))
    }

    /// Writes a key. `applied` is false only when `if_absent` was set and the
    /// key already had a value.
    pub async fn put(
        &self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        options: PutOptions,
    ) -> Result<PutResponse, ClientError> {
        let request = PutRequest {
            keyspace: self.keyspace().to_owned(),
            key: key.into(),
            value: value.into(),
            context: options.context,
            ttl_seconds: options.ttl_seconds,
            if_absent: options.if_absent,
            consistency: options.consistency.or(self.consistency()),
        };
        self.unary(write("Put"), request, |ch, r| async move { KvClient::new(ch).put(r).await }).await
    }

    /// Deletes a key; `context` from a previous read, or empty for a blind delete.
    pub async fn delete(&self, key: impl Into<Bytes>, context: Bytes) -> Result<DeleteResponse, ClientError> {
        let request = DeleteRequest {
            keyspace: self.keyspace().to_owned(),
            key: key.into(),
            context,
            consistency: self.consistency(),
        };
        self.unary(write("Delete"), request, |ch, r| async move { KvClient::new(ch).delete(r).await }).await
    }

    /// Reads many keys; one `(key, record)` pair per key, `None` when missing.
    pub async fn batch_get<K: Into<Bytes>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<(Bytes, Option<Record>)>, ClientError> {
        let request = BatchGetRequest {
            keyspace: self.keyspace().to_owned(),
            keys: keys.into_iter().map(Into::into).collect(),
            consistency: self.consistency(),
        };
        let response =
            self.unary(read("BatchGet"), request, |ch, r| async move { KvClient::new(ch).batch_get(r).await }).await?;
        Ok(response.results.into_iter().map(Record::from_key_result).collect())
    }

    /// Writes many keys; with `atomic`, either all ops apply or none.
    pub async fn batch_write(
        &self,
        ops: impl IntoIterator<Item = BatchOp>,
        atomic: bool,
    ) -> Result<BatchWriteResponse, ClientError> {
        let request = BatchWriteRequest {
            keyspace: self.keyspace().to_owned(),
            ops: ops.into_iter().map(BatchOp::into_proto).collect(),
            atomic,
            consistency: self.consistency(),
        };
        self.unary(write("BatchWrite"), request, |ch, r| async move { KvClient::new(ch).batch_write(r).await }).await
    }

    /// Replaces the value only if the key is as `expected`. When not applied,
    /// the response carries the current version, context and siblings.
    pub async fn compare_and_set(
        &self,
        key: impl Into<Bytes>,
        expected: CasExpectation,
        new_value: impl Into<Bytes>,
        ttl_seconds: Option<u64>,
    ) -> Result<CompareAndSetResponse, ClientError> {
        let request = CompareAndSetRequest {
            keyspace: self.keyspace().to_owned(),
            key: key.into(),
            expected: Some(expected.into_proto()),
            new_value: new_value.into(),
            ttl_seconds,
            consistency: self.consistency(),
        };
        self.unary(write("CompareAndSet"), request, |ch, r| async move { KvClient::new(ch).compare_and_set(r).await })
            .await
    }

    /// Adds `delta` (may be negative) to a counter stored as a decimal
    /// integer, creating it at 0 first; returns the new value.
    pub async fn increment(
        &self,
        key: impl Into<Bytes>,
        delta: i64,
        ttl_seconds: Option<u64>,
    ) -> Result<IncrementResponse, ClientError> {
        let request = IncrementRequest {
            keyspace: self.keyspace().to_owned(),
            key: key.into(),
            delta,
            ttl_seconds,
            consistency: self.consistency(),
        };
        self.unary(write("Increment"), request, |ch, r| async move { KvClient::new(ch).increment(r).await }).await
    }

    /// Lists keys starting with `prefix`, in key order, one page at a time.
    pub async fn list(&self, prefix: impl Into<Bytes>, options: ListOptions) -> Result<ListResponse, ClientError> {
        let request = ListRequest {
            keyspace: self.keyspace().to_owned(),
            prefix: prefix.into(),
            limit: options.limit,
            cursor: options.cursor,
            include_values: options.include_values,
        };
        self.unary(read("List"), request, |ch, r| async move { KvClient::new(ch).list(r).await }).await
    }

    /// Iterates over all keys of the keyspace in token order, one page at a
    /// time; pass `next_cursor` back until `done`.
    pub async fn scan(&self, options: ScanOptions) -> Result<ScanResponse, ClientError> {
        let request = ScanRequest {
            keyspace: self.keyspace().to_owned(),
            cursor: options.cursor,
            count: options.count,
            include_values: options.include_values,
        };
        self.unary(read("Scan"), request, |ch, r| async move { KvClient::new(ch).scan(r).await }).await
    }

    /// Sets the TTL of an existing key (0 removes it). Returns the key's new
    /// version, or `None` when the key has no live value.
    pub async fn touch(&self, key: impl Into<Bytes>, ttl_seconds: u64) -> Result<Option<u64>, ClientError> {
        let request = TouchRequest {
            keyspace: self.keyspace().to_owned(),
            key: key.into(),
            ttl_seconds,
            consistency: self.consistency(),
        };
        let response =
            self.unary(write("Touch"), request, |ch, r| async move { KvClient::new(ch).touch(r).await }).await?;
        Ok(response.found.then_some(response.version))
    }
}
