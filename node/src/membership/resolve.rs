//! [`Resolver`]: how gossip turns names (`HOST:PORT`: seeds, and the names
//! peers advertise) into addresses, again and again: in Kubernetes a pod
//! that restarts comes back on a new IP under the same name, so a name is
//! looked up on a schedule, never once for the life of the process.
//!
//! [`DnsResolver`] asks the system resolver (`getaddrinfo` through tokio);
//! [`StaticResolver`] is a table the caller edits (simulations and tests,
//! where a name must move to a new address without touching `/etc/hosts`).
//!
//! Invariants: a lookup never panics and is bounded by the caller's
//! timeout; an empty answer is an error. May call tokio's resolver only.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;

/// Resolves `HOST:PORT` names to socket addresses.
pub trait Resolver: fmt::Debug + Send + Sync + 'static {
    /// The addresses `name` stands for now (first preferred); an error says why there are none.
    fn resolve(&self, name: &str) -> BoxFuture<'static, Result<Vec<SocketAddr>, String>>;
}

/// The system resolver (DNS, `/etc/hosts`), as `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsResolver;

impl Resolver for DnsResolver {
    fn resolve(&self, name: &str) -> BoxFuture<'static, Result<Vec<SocketAddr>, String>> {
        let name = name.trim().to_owned();
        async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host(name.as_str()).await.map_err(|e| e.to_string())?.collect();
            if addrs.is_empty() { Err(format!("{name} has no address")) } else { Ok(addrs) }
        }
        .boxed()
    }
}

/// A name table edited by the caller; a name not in it does not resolve.
#[derive(Debug, Default)]
pub struct StaticResolver {
    names: Mutex<BTreeMap<String, Vec<SocketAddr>>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Points `name` at `addrs` (empty: the name stops resolving).
    pub fn set(&self, name: &str, addrs: Vec<SocketAddr>) {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if addrs.is_empty() {
            names.remove(name);
        } else {
            names.insert(name.to_owned(), addrs);
        }
    }

    /// What `name` resolves to now, synchronously.
    pub fn lookup(&self, name: &str) -> Option<Vec<SocketAddr>> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, name: &str) -> BoxFuture<'static, Result<Vec<SocketAddr>, String>> {
        let found = self.lookup(name).ok_or_else(|| format!("{name} is not in the table"));
        async move { found }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_static_table_follows_its_edits_and_dns_resolves_localhost() {
        let table = StaticResolver::new();
        assert!(table.resolve("seed-0:7100").await.is_err());
        let first: SocketAddr = "127.0.0.2:7100".parse().unwrap();
        let moved: SocketAddr = "127.0.0.3:7100".parse().unwrap();
        table.set("seed-0:7100", vec![first]);
        assert_eq!(table.resolve("seed-0:7100").await, Ok(vec![first]));
        table.set("seed-0:7100", vec![moved]);
        assert_eq!(table.resolve("seed-0:7100").await, Ok(vec![moved]), "a second lookup sees the new address");
        let local = DnsResolver.resolve("localhost:7100").await.unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 7100), "{local:?}");
        assert!(DnsResolver.resolve("no port here").await.is_err());
    }
}
