//! [`KeyLocks`]: striped per-key locks for read-modify-write.

use std::sync::{Mutex, MutexGuard};

/// A fixed set of mutexes; a key maps to one stripe by its token. Two writes
/// of the same key serialise; writes of different keys rarely contend.
#[derive(Debug)]
pub struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl KeyLocks {
    /// `stripes` locks (rounded up to a power of two).
    pub fn new(stripes: usize) -> Self {
        let n = stripes.max(1).next_power_of_two();
        Self { stripes: (0..n).map(|_| Mutex::new(())).collect() }
    }

    /// Locks the stripe of `token`. Blocking: call from the blocking pool.
    pub fn lock(&self, token: u64) -> MutexGuard<'_, ()> {
        let i = (token as usize) & (self.stripes.len() - 1);
        // A poisoned stripe only means another writer panicked; the lock guards no data.
        self.stripes[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyLocks {
    /// Locks the stripes of all `tokens`, in stripe order so that two batches
    /// can never deadlock. Blocking: call from the blocking pool.
    pub fn lock_many(&self, tokens: &[u64]) -> Vec<MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = tokens.iter().map(|t| (*t as usize) & (self.stripes.len() - 1)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| self.stripes[i].lock().unwrap_or_else(|e| e.into_inner())).collect()
    }
}
