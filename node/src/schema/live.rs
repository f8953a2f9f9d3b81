//! [`SchemaHandle`]: the node's live copy of the cluster schema.
//!
//! Every change, local or learned from a peer, goes through one place:
//! stamped (local changes), merged, saved durably (the meta partition,
//! fsynced) and only then published — to readers ([`SchemaHandle::snapshot`],
//! a cheap `Arc` clone), to the digest watchers (gossip's `schema` app
//! state), and to the subscribers registered with
//! [`SchemaHandle::on_change`] (the keyspace registry). A change that cannot
//! be saved is not applied: the caller gets the error and the schema stays
//! as it was, so a node never serves a definition it would forget at restart.
//!
//! Changes are serialised by one mutex (they are rare: admin operations and
//! gossip pulls); readers never wait for it.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::Config;
use crate::storage::Storage;

use super::{Entry, Schema, SchemaError, Stamp, store};

type Subscriber = Box<dyn Fn(&Schema) + Send + Sync>;

/// The node's live schema; clones share it.
#[derive(Clone)]
pub struct SchemaHandle {
    inner: Arc<Inner>,
}

struct Inner {
    current: RwLock<Arc<Schema>>,
    /// Held while a change is stamped, merged and saved.
    writer: Mutex<()>,
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    host: String,
    digest: watch::Sender<String>,
    subscribers: Mutex<Vec<Subscriber>>,
}

impl std::fmt::Debug for SchemaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaHandle").field("host", &self.inner.host).field("digest", &self.digest()).finish()
    }
}

impl SchemaHandle {
    /// Opens the saved schema (seeding the config's keyspaces where absent,
    /// see [`store::open`]) for the node `host`.
    pub fn open(
        storage: Arc<dyn Storage>,
        config: &Config,
        host: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SchemaError> {
        let schema = store::open(storage.as_ref(), config)?;
        Ok(Self::from_schema(schema, storage, host, clock))
    }

    /// A handle over `schema` as it is (already saved, or a test's).
    pub fn from_schema(schema: Schema, storage: Arc<dyn Storage>, host: &str, clock: Arc<dyn Clock>) -> Self {
        let (digest, _) = watch::channel(schema.digest());
        Self {
            inner: Arc::new(Inner {
                current: RwLock::new(Arc::new(schema)),
                writer: Mutex::new(()),
                storage,
                clock,
                host: host.to_owned(),
                digest,
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The schema now (never blocks on a change in progress).
    pub fn snapshot(&self) -> Arc<Schema> {
        Arc::clone(&self.inner.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The digest gossip carries (16 hex digits).
    pub fn digest(&self) -> String {
        self.inner.digest.borrow().clone()
    }

    /// Follows the digest: changes each time the schema does.
    pub fn watch_digest(&self) -> watch::Receiver<String> {
        self.inner.digest.subscribe()
    }

    /// Calls `f` with the schema now, and again after every change.
    pub fn on_change(&self, f: impl Fn(&Schema) + Send + Sync + 'static) {
        f(&self.snapshot());
        self.inner.subscribers.lock().unwrap_or_else(PoisonError::into_inner).push(Box::new(f));
    }

    /// Makes a local change: `change` gets the schema now and a stamp above
    /// every stamp it holds, and returns the entry to merge (for example
    /// `|s, stamp| s.create_keyspace(def, stamp)`). Returns the merged entry
    /// once it is saved.
    pub fn change<E>(&self, change: impl FnOnce(&Schema, Stamp) -> Result<Entry, E>) -> Result<Entry, E>
    where
        E: From<SchemaError>,
    {
        let _writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.snapshot();
        let stamp = Stamp::next(self.inner.clock.now_micros(), &self.inner.host, &current);
        let entry = change(&current, stamp)?;
        let mut next = (*current).clone();
        next.merge_entry(entry.clone());
        self.publish(next)?;
        Ok(entry)
    }

    /// Merges entries from a peer (each checked first); returns whether the
    /// schema changed and the refused entries' errors (to log).
    pub fn merge_remote(&self, entries: Vec<Entry>) -> Result<(bool, Vec<SchemaError>), SchemaError> {
        let _writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = (*self.snapshot()).clone();
        let (changed, refused) = next.merge_remote(entries);
        if changed {
            self.publish(next)?;
        }
        Ok((changed, refused))
    }

    /// Saves `next`, then makes it current and tells everyone. Called with the writer lock held.
    fn publish(&self, next: Schema) -> Result<(), SchemaError> {
        store::save(self.inner.storage.as_ref(), &next)?;
        let digest = next.digest();
        let next = Arc::new(next);
        *self.inner.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&next);
        self.inner.digest.send_replace(digest);
        for subscriber in self.inner.subscribers.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            subscriber(&next);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::schema::KeyspaceDef;
    use crate::storage::MemoryStorage;

    fn handle(storage: Arc<dyn Storage>) -> SchemaHandle {
        let clock = Arc::new(ManualClock::at_micros(1_700_000_000_000_000));
        SchemaHandle::open(storage, &Config::default(), "host-a", clock).expect("open")
    }

    #[test]
    fn a_change_is_saved_before_it_is_seen_and_survives_a_reopen() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let h = handle(Arc::clone(&storage));
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        h.on_change(move |_| _ = seen.fetch_add(1, Ordering::SeqCst));
        let before = h.digest();
        let watch = h.watch_digest();
        h.change(|s, stamp| s.create_keyspace(KeyspaceDef::named("carts"), stamp)).expect("create");
        assert!(h.snapshot().keyspace("carts").is_some());
        assert_ne!(h.digest(), before);
        assert!(watch.has_changed().expect("sender alive"));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "once at registration, once for the change");
        let reopened = handle(storage);
        assert!(reopened.snapshot().keyspace("carts").is_some());
        assert_eq!(reopened.digest(), h.digest());
    }

    #[test]
    fn a_refused_change_changes_nothing() {
        let h = handle(Arc::new(MemoryStorage::new()));
        let before = h.digest();
        let err = h.change(|s, stamp| s.drop_keyspace("default", stamp)).expect_err("default cannot be dropped");
        assert!(err.to_string().contains("default"), "{err}");
        assert_eq!(h.digest(), before);
    }

    #[test]
    fn merging_what_a_peer_made_converges_and_is_idempotent() {
        let a = handle(Arc::new(MemoryStorage::new()));
        let b = handle(Arc::new(MemoryStorage::new()));
        let entry = a.change(|s, stamp| s.create_keyspace(KeyspaceDef::named("sessions"), stamp)).expect("create");
        assert!(b.merge_remote(vec![entry.clone()]).expect("merge").0);
        assert!(!b.merge_remote(vec![entry]).expect("merge again").0);
        assert_eq!(a.digest(), b.digest());
    }
}
