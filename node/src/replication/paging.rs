//! LIST (prefix, key order) and SCAN (token order) with opaque cursors.
//!
//! Dead records (tombstones, expired values) are skipped. A page examines at
//! most `SCAN_BUDGET_FACTOR × limit` stored keys, so a range full of
//! tombstones cannot make one request unbounded: the page may then hold fewer
//! entries than asked, with a cursor to continue.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::KvError;
use crate::storage::ScanPosition;

use super::{Coordinator, Cursor, Page, PageEntry};

/// Default and largest page sizes.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Default SCAN page size.
pub const DEFAULT_SCAN_COUNT: usize = 1000;
/// Largest page of either.
pub const MAX_PAGE: usize = 10_000;
const SCAN_BUDGET_FACTOR: usize = 10;

fn page_size(asked: usize, default: usize) -> usize {
    match asked {
        0 => default,
        n => n.min(MAX_PAGE),
    }
}

impl Coordinator {
    /// Keys of `keyspace` starting with `prefix`, in key order.
    pub async fn list(
        &self,
        keyspace: &str,
        prefix: Bytes,
        limit: usize,
        cursor: Option<Cursor>,
        include_values: bool,
    ) -> Result<Page, KvError> {
        let ks = self.inner.keyspaces.get(keyspace)?;
        let limit = page_size(limit, DEFAULT_LIST_LIMIT);
        // A LIST cursor is the last key examined; it must lie under the prefix.
        let mut after = cursor.map(|c| c.0);
        if after.as_ref().is_some_and(|a| !a.starts_with(&prefix)) {
            return Err(KvError::BadCursor);
        }
        self.blocking(move |inner| {
            let now_ms = inner.clock.now_ms();
            let mut entries = Vec::new();
            let mut budget = limit * SCAN_BUDGET_FACTOR;
            loop {
                let want = (limit - entries.len()).min(budget).max(1);
                let keys = inner.storage.list_keys(&ks.name, &prefix, after.as_deref(), want)?;
                let exhausted = keys.len() < want;
                for key in keys {
                    budget = budget.saturating_sub(1);
                    after = Some(key.clone());
                    let Some(record) = inner.storage.get(&ks.name, &key)? else { continue };
                    if let Some(newest) = record.newest_live(now_ms) {
                        let value = include_values.then(|| newest.value.clone()).flatten();
                        entries.push(PageEntry { key, value });
                    }
                }
                if exhausted {
                    return Ok(Page { entries, next: None });
                }
                if entries.len() >= limit || budget == 0 {
                    return Ok(Page { entries, next: after.map(Cursor) });
                }
            }
        })
        .await
    }

    /// Every live key of `keyspace`, in token order.
    pub async fn scan(
        &self,
        keyspace: &str,
        count: usize,
        cursor: Option<Cursor>,
        include_values: bool,
    ) -> Result<Page, KvError> {
        let ks = self.inner.keyspaces.get(keyspace)?;
        let count = page_size(count, DEFAULT_SCAN_COUNT);
        let mut after = cursor.map(|c| decode_scan_cursor(&ks.name, &c)).transpose()?;
        self.blocking(move |inner| {
            let now_ms = inner.clock.now_ms();
            let mut entries = Vec::new();
            let mut budget = count * SCAN_BUDGET_FACTOR;
            loop {
                let want = (count - entries.len()).min(budget).max(1);
                let batch = inner.storage.scan(after.as_ref(), None, Some(&ks.name), want)?;
                let exhausted = batch.len() < want;
                for stored in batch {
                    budget = budget.saturating_sub(1);
                    if let Some(newest) = stored.record.newest_live(now_ms) {
                        let value = include_values.then(|| newest.value.clone()).flatten();
                        entries.push(PageEntry { key: stored.key.clone(), value });
                    }
                    after = Some(ScanPosition { token: stored.token, keyspace: stored.keyspace, key: stored.key });
                }
                if exhausted {
                    return Ok(Page { entries, next: None });
                }
                if entries.len() >= count || budget == 0 {
                    return Ok(Page { entries, next: after.as_ref().map(encode_scan_cursor) });
                }
            }
        })
        .await
    }
}

/// A SCAN cursor: the token (8 bytes, big-endian) then the key.
fn encode_scan_cursor(pos: &ScanPosition) -> Cursor {
    let mut buf = BytesMut::with_capacity(8 + pos.key.len());
    buf.put_u64(pos.token);
    buf.put_slice(&pos.key);
    Cursor(buf.freeze())
}

fn decode_scan_cursor(keyspace: &str, cursor: &Cursor) -> Result<ScanPosition, KvError> {
    let bytes = &cursor.0;
    let token_bytes: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or(KvError::BadCursor)?;
    Ok(ScanPosition { token: u64::from_be_bytes(token_bytes), keyspace: keyspace.to_owned(), key: bytes.slice(8..) })
}
