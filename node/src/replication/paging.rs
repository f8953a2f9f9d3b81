//! LIST (prefix, key order) and SCAN (token order) over the whole cluster.
//!
//! Every live node is asked for its next `want` records after the cursor (its
//! own data, dead records included); the answers are merged in order, records
//! of the same key merged by version, and the first `want` of the union kept:
//! any record among the first `want` of the union is among the first `want` of
//! the node that has it, so nothing is skipped. Dead records (tombstones,
//! expired values) are then dropped. A page examines at most
//! `SCAN_BUDGET_FACTOR × limit` records, so a range full of tombstones cannot
//! make one request unbounded: the page may then hold fewer entries than
//! asked, with a cursor to continue. Listing is eventually consistent (like a
//! Cassandra range scan at ONE): a key whose only live copies sit on nodes
//! that are down is missed until they return.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::error::KvError;
use crate::ring::{Token, token_of};
use crate::storage::ScanPosition;
use crate::transport::{PageItem, PageOrder, PageQuery, Peer, TransportError};

use super::{Coordinator, Cursor, Keyspace, Page, PageEntry};

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

/// Position of an item in the order of `order` (key order or token order).
fn position(order: &PageOrder, item: &PageItem) -> (Token, Bytes) {
    match order {
        PageOrder::ByKey { .. } => (0, item.key.clone()),
        PageOrder::ByToken { .. } => (item.token, item.key.clone()),
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
        // A LIST cursor is the last key examined; it must lie under the prefix.
        let after = cursor.map(|c| c.0);
        if after.as_ref().is_some_and(|a| !a.starts_with(&prefix)) {
            return Err(KvError::BadCursor);
        }
        let order = PageOrder::ByKey { prefix, after };
        self.paginate(&ks, order, page_size(limit, DEFAULT_LIST_LIMIT), include_values).await
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
        let after = cursor.map(|c| decode_scan_cursor(&c)).transpose()?;
        let order = PageOrder::ByToken { after };
        self.paginate(&ks, order, page_size(count, DEFAULT_SCAN_COUNT), include_values).await
    }

    async fn paginate(&self, ks: &Keyspace, mut order: PageOrder, limit: usize, values: bool) -> Result<Page, KvError> {
        let now_ms = self.inner.clock.now_ms();
        let mut entries = Vec::new();
        let mut budget = limit * SCAN_BUDGET_FACTOR;
        loop {
            let want = (limit - entries.len()).min(budget).max(1);
            let query = PageQuery { keyspace: ks.name.clone(), order: order.clone(), limit: want as u32 };
            let (items, exhausted) = self.gather(ks, query).await?;
            for item in items {
                budget = budget.saturating_sub(1);
                order = advance(order, &item);
                if let Some(newest) = item.record.newest_live(now_ms) {
                    let value = values.then(|| newest.value.clone()).flatten();
                    entries.push(PageEntry { key: item.key, value });
                }
            }
            if exhausted {
                return Ok(Page { entries, next: None });
            }
            if entries.len() >= limit || budget == 0 {
                return Ok(Page { entries, next: Some(cursor_of(&order)) });
            }
        }
    }

    /// The first `query.limit` records after the cursor over every live node,
    /// merged; `true` when no node has more.
    async fn gather(&self, ks: &Keyspace, query: PageQuery) -> Result<(Vec<PageItem>, bool), KvError> {
        let view = &self.inner.view;
        let local = view.local_host_id().to_owned();
        let calls: Vec<BoxFuture<'static, Result<Vec<PageItem>, TransportError>>> = view
            .members()
            .into_iter()
            .filter(|m| view.is_alive(&m.host_id))
            .map(|m| {
                if m.host_id == local {
                    let (this, q) = (self.clone(), query.clone());
                    async move {
                        this.local_page(q).await.map_err(|e| TransportError::Remote {
                            peer: "local".into(),
                            code: crate::error::RemoteStatus::Internal,
                            rkv_code: None,
                            message: e.to_string(),
                        })
                    }
                    .boxed()
                } else {
                    self.inner.transport.page(&Peer::from(&m), query.clone())
                }
            })
            .collect();
        let want = query.limit as usize;
        let mut merged: BTreeMap<(Token, Bytes), PageItem> = BTreeMap::new();
        let mut exhausted = true;
        let mut answered = 0;
        for answer in futures::future::join_all(calls).await {
            let Ok(items) = answer.inspect_err(|e| tracing::debug!(error = %e, "a node did not answer a page")) else {
                continue;
            };
            answered += 1;
            exhausted &= items.len() < want;
            for item in items {
                match merged.entry(position(&query.order, &item)) {
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(item);
                    }
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        e.get_mut().record.merge(&item.record, ks.conflict_mode);
                    }
                }
            }
        }
        if answered == 0 {
            return Err(KvError::Unavailable { required: 1, alive: 0 });
        }
        let total = merged.len();
        let items: Vec<PageItem> = merged.into_values().take(want).collect();
        Ok((items, exhausted && total <= want))
    }

    /// One page of this node's own records (dead ones included).
    pub(super) async fn local_page(&self, query: PageQuery) -> Result<Vec<PageItem>, KvError> {
        let ks = self.inner.keyspaces.get(&query.keyspace)?;
        let limit = (query.limit as usize).min(MAX_PAGE);
        self.blocking(move |inner| match query.order {
            PageOrder::ByKey { prefix, after } => {
                let keys = inner.storage.list_keys(&ks.name, &prefix, after.as_deref(), limit)?;
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    if let Some(record) = inner.storage.get(&ks.name, &key)? {
                        out.push(PageItem { token: token_of(&ks.name, &key), key, record });
                    }
                }
                Ok(out)
            }
            PageOrder::ByToken { after } => {
                let after = after.map(|(token, key)| ScanPosition { token, keyspace: ks.name.clone(), key });
                let stored = inner.storage.scan(after.as_ref(), None, Some(&ks.name), limit)?;
                Ok(stored.into_iter().map(|s| PageItem { token: s.token, key: s.key, record: s.record }).collect())
            }
        })
        .await
    }
}

/// Moves the cursor past `item`.
fn advance(order: PageOrder, item: &PageItem) -> PageOrder {
    match order {
        PageOrder::ByKey { prefix, .. } => PageOrder::ByKey { prefix, after: Some(item.key.clone()) },
        PageOrder::ByToken { .. } => PageOrder::ByToken { after: Some((item.token, item.key.clone())) },
    }
}

fn cursor_of(order: &PageOrder) -> Cursor {
    match order {
        PageOrder::ByKey { after, .. } => Cursor(after.clone().unwrap_or_default()),
        PageOrder::ByToken { after } => {
            let (token, key) = after.clone().unwrap_or_default();
            let mut buf = BytesMut::with_capacity(8 + key.len());
            buf.put_u64(token);
            buf.put_slice(&key);
            Cursor(buf.freeze())
        }
    }
}

/// A SCAN cursor: the token (8 bytes, big-endian) then the key.
fn decode_scan_cursor(cursor: &Cursor) -> Result<(Token, Bytes), KvError> {
    let bytes = &cursor.0;
    let token_bytes: [u8; 8] = bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or(KvError::BadCursor)?;
    Ok((u64::from_be_bytes(token_bytes), bytes.slice(8..)))
}
