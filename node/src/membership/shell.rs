//! The async shell around the sans-IO [`Gossiper`]: [`GossipHandle`] (the
//! core behind a lock, applying its events to the [`ClusterView`]) and
//! [`GossipWorker`] (the [`Worker`] that ticks it every interval and runs
//! the rounds over a [`GossipTransport`]).
//!
//! Every tick the shell first publishes what the view says about the local
//! member (so `ClusterView::set_local_status` / `set_local_tokens` spread)
//! and the storage's disk bytes as load, then ticks the core, drops the
//! pooled connection of every peer whose probe asks to reconnect, starts one
//! concurrent round per SYN (SYN, apply the ACK, send the ACK2) and one
//! probe per known peer (ping, report the answer), each probe bounded by the
//! interval. A slow peer never delays the next tick. Every
//! `resolve_every` it looks the seeds' names and the silent peers'
//! advertised names up again (a [`Resolver`]; concurrently, bounded), and
//! it saves the peers' states ([`super::saved`]) whenever they changed.
//!
//! Invariants: the core's lock is never held across an `.await`; events are
//! applied to the view under the core's lock, so the view sees them in the
//! order the core produced them (lock order: core, then view); the local
//! member in the view is never replaced by gossip.
//!
//! This module may call `membership::{gossiper, gossip_grpc, metrics,
//! resolve, saved, view}`, `storage::Storage` (load, saved membership) and
//! `worker::Worker`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::task::JoinSet;
// tokio's clock (the real one outside tests), so a simulation's paused clock drives phi too.
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::storage::Storage;
use crate::worker::{Worker, WorkerState};

use super::digest::{GossipAck, GossipAck2, GossipPing, GossipSyn};
use super::endpoint::AppValue;
use super::gossiper::{GossipEvent, Gossiper, Outgoing, Probe};
use super::metrics::{GossipMetrics, liveness_name};
use super::resolve::{DnsResolver, Resolver};
use super::transport::GossipTransport;
use super::{ClusterView, Liveness};

/// The gossip core shared by the worker and the gRPC service. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GossipHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    core: Mutex<Gossiper>,
    view: Arc<ClusterView>,
    started: Instant,
    metrics: Option<GossipMetrics>,
}

impl GossipHandle {
    /// Shares `core`, applying what it learns to `view`; `metrics` when the node exports them.
    pub fn new(core: Gossiper, view: Arc<ClusterView>, metrics: Option<GossipMetrics>) -> Self {
        Self { inner: Arc::new(Inner { core: Mutex::new(core), view, started: Instant::now(), metrics }) }
    }

    fn now(&self) -> Duration {
        self.inner.started.elapsed()
    }

    fn core(&self) -> MutexGuard<'_, Gossiper> {
        self.inner.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The view gossip fills.
    pub fn view(&self) -> &Arc<ClusterView> {
        &self.inner.view
    }

    /// Receiving side of a SYN.
    pub fn on_syn(&self, syn: &GossipSyn) -> GossipAck {
        let now = self.now();
        let mut core = self.core();
        let ack = core.on_syn(now, syn);
        self.apply_events(&mut core);
        drop(core);
        self.count("syn", "received", true);
        ack
    }

    /// The ACK to one of our SYNs: applies it, returns the ACK2 to send.
    pub fn on_ack(&self, ack: &GossipAck) -> GossipAck2 {
        let now = self.now();
        let mut core = self.core();
        let ack2 = core.on_ack(now, ack);
        self.apply_events(&mut core);
        ack2
    }

    /// Receiving side of an ACK2.
    pub fn on_ack2(&self, ack2: &GossipAck2) {
        let now = self.now();
        let mut core = self.core();
        core.on_ack2(now, ack2);
        self.apply_events(&mut core);
        drop(core);
        self.count("ack2", "received", true);
    }

    /// Receiving side of a probe: returns our own.
    pub fn on_ping(&self, ping: &GossipPing) -> GossipPing {
        let now = self.now();
        let mut core = self.core();
        let pong = core.on_ping(now, ping);
        self.apply_events(&mut core);
        drop(core);
        self.count("ping", "received", true);
        pong
    }

    /// The answer to one of our probes.
    pub fn on_pong(&self, pong: &GossipPing) {
        let now = self.now();
        let mut core = self.core();
        core.on_pong(now, pong);
        self.apply_events(&mut core);
    }

    /// One tick: publishes the local member and `local_states` (load,
    /// schema), ticks the core, exports metrics; returns the SYNs and the
    /// probes to send.
    pub fn tick(&self, rng: &mut StdRng, local_states: Vec<AppValue>) -> (Vec<Outgoing>, Vec<Probe>) {
        let local = self.inner.view.local();
        let now = self.now();
        let mut core = self.core();
        core.sync_local_member(&local);
        core.update_local(local_states);
        let out = (core.on_tick(now, rng), core.probes());
        self.apply_events(&mut core);
        if let Some(metrics) = &self.inner.metrics {
            let me = core.local_host_id().to_owned();
            let heartbeat = core.endpoint(&me).map_or(0, |s| s.heartbeat.version);
            metrics.round(heartbeat);
            let peers: Vec<(String, f64, Liveness)> = core
                .endpoints()
                .keys()
                .filter(|h| **h != me)
                .map(|h| (h.clone(), core.phi(h, now), core.liveness(h)))
                .collect();
            metrics.peers(&peers);
        }
        out
    }

    /// Writes LEAVING or LEFT into the dead peer `host_id`'s state on its
    /// behalf (removenode), so that gossip spreads it to every node, those
    /// down now and those not yet started included. False when nothing changed.
    pub fn advertise_removal(&self, host_id: &str, status: super::MemberStatus) -> bool {
        let mut core = self.core();
        let changed = core.advertise_removal(host_id, status);
        self.apply_events(&mut core);
        changed
    }

    /// Merges the peer states saved before a restart (see [`super::saved`]).
    pub fn restore(&self, saved: std::collections::BTreeMap<String, super::EndpointState>) {
        let mut core = self.core();
        core.restore(saved);
        self.apply_events(&mut core);
    }

    /// The peer states to save now.
    pub fn saved_states(&self) -> std::collections::BTreeMap<String, super::EndpointState> {
        self.core().saved_states()
    }

    /// Replaces the seeds with the addresses their names resolve to now;
    /// while a name does not resolve, the addresses known before are kept too.
    pub fn update_seeds(&self, resolved: Vec<Option<SocketAddr>>) {
        let mut core = self.core();
        let mut seeds: Vec<SocketAddr> = resolved.iter().flatten().copied().collect();
        if resolved.iter().any(Option::is_none) {
            seeds.extend(core.seeds().iter().copied());
        }
        seeds.sort();
        seeds.dedup();
        let before = core.seeds().to_vec();
        core.set_seeds(seeds);
        if core.seeds() != before {
            tracing::info!(seeds = ?core.seeds(), ?before, "seed names resolve to new addresses");
        }
    }

    /// The seed addresses contacted now.
    pub fn seeds(&self) -> Vec<SocketAddr> {
        self.core().seeds().to_vec()
    }

    /// phi of `host_id` now.
    pub fn phi(&self, host_id: &str) -> f64 {
        let now = self.now();
        self.core().phi(host_id, now)
    }

    /// Bytes on disk `host_id` last reported through gossip.
    pub fn load(&self, host_id: &str) -> Option<u64> {
        self.core().endpoint(host_id).and_then(|s| s.load())
    }

    fn count(&self, kind: &str, direction: &str, ok: bool) {
        if let Some(metrics) = &self.inner.metrics {
            metrics.message(kind, direction, ok);
        }
    }

    fn apply_events(&self, core: &mut Gossiper) {
        let view = &self.inner.view;
        for event in core.take_events() {
            match event {
                GossipEvent::MemberChanged { member, restarted } => {
                    if member.host_id == view.local_host_id() {
                        continue;
                    }
                    let (host_id, addr, generation) = (member.host_id.clone(), member.grpc_addr, member.generation);
                    let status = member.status.as_str();
                    if view.upsert(member) {
                        tracing::info!(%host_id, %addr, generation, status, restarted, "gossip: member added or updated");
                    }
                }
                GossipEvent::LivenessChanged { host_id, from, to, phi } => {
                    let from_name = from.map_or("unknown", liveness_name);
                    if to == Liveness::Down {
                        tracing::warn!(%host_id, from = from_name, to = liveness_name(to), phi, "failure detector: peer convicted");
                    } else {
                        tracing::info!(%host_id, from = from_name, to = liveness_name(to), phi, "failure detector: verdict changed");
                    }
                    if let Some(metrics) = &self.inner.metrics {
                        metrics.liveness_changed(to);
                    }
                    view.set_liveness(&host_id, to);
                }
                GossipEvent::RemovedByPeers => {
                    tracing::error!(
                        host_id = view.local_host_id(),
                        "the cluster removed this node (kvctl removenode) while it was down: peers ignore it and \
                         it must not serve; stop it, wipe its data directory and add it as a new node"
                    );
                }
            }
        }
    }
}

/// The gossip [`Worker`]: ticks the core every `interval` and runs the
/// rounds; every `resolve_every` looks the seeds' names and the silent
/// peers' advertised names up again; saves the peers' states when they change.
#[derive(Debug)]
pub struct GossipWorker {
    gossip: GossipHandle,
    transport: Arc<dyn GossipTransport>,
    storage: Arc<dyn Storage>,
    schema: String,
    interval: Duration,
    seed_names: Vec<String>,
    resolver: Arc<dyn Resolver>,
    resolve_every: Duration,
    rng: StdRng,
    /// The rounds, probes and lookups under way (aborted when the worker is dropped).
    rounds: JoinSet<()>,
    /// Created on the first wait (it needs the runtime).
    tick: Option<Interval>,
    /// Hash of the peers' states last saved.
    saved: Option<u64>,
    last_resolved: Instant,
}

impl GossipWorker {
    /// A worker gossiping every `interval` through `transport`, reporting
    /// `storage`'s disk bytes as load and `schema` as the schema version,
    /// and saving the peers' states in `storage`.
    pub fn new(
        gossip: GossipHandle,
        transport: Arc<dyn GossipTransport>,
        storage: Arc<dyn Storage>,
        schema: String,
        interval: Duration,
    ) -> Self {
        let resolve_every = interval * 5;
        let resolver: Arc<dyn Resolver> = Arc::new(DnsResolver);
        Self {
            gossip,
            transport,
            storage,
            schema,
            interval,
            seed_names: Vec::new(),
            resolver,
            resolve_every,
            rng: StdRng::from_os_rng(),
            rounds: JoinSet::new(),
            tick: None,
            saved: None,
            last_resolved: Instant::now(),
        }
    }

    /// Draws the gossip targets from `seed` instead of the OS (a simulation replays its run).
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    /// Looks `seed_names` (`HOST:PORT`) and silent peers' names up with
    /// `resolver` every `every`, following a name to its new address.
    pub fn with_names(mut self, seed_names: Vec<String>, resolver: Arc<dyn Resolver>, every: Duration) -> Self {
        self.seed_names = seed_names.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
        self.resolver = resolver;
        self.resolve_every = every.max(self.interval);
        self
    }

    async fn load(&self) -> Option<u64> {
        let storage = Arc::clone(&self.storage);
        tokio::task::spawn_blocking(move || storage.stats().disk_bytes).await.ok()
    }

    /// Saves the peers' states when they differ from what was saved last
    /// (`last`: its hash); returns the hash now on disk.
    async fn save_if_changed(&self, last: Option<u64>) -> Option<u64> {
        let encoded = super::saved::encode(&self.gossip.saved_states());
        let hash = xxhash_rust::xxh3::xxh3_64(&encoded);
        if last == Some(hash) {
            return last;
        }
        let storage = Arc::clone(&self.storage);
        match tokio::task::spawn_blocking(move || super::saved::save_encoded(storage.as_ref(), &encoded)).await {
            Ok(Ok(())) => Some(hash),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot save the membership; retrying next round");
                last
            }
            Err(_) => last,
        }
    }

    /// Resolves the seeds and the silent peers' names, and hands the answers to the core.
    pub(super) async fn resolve(
        gossip: GossipHandle,
        resolver: Arc<dyn Resolver>,
        seed_names: Vec<String>,
        timeout: Duration,
    ) {
        let lookup = |name: String| {
            let resolver = Arc::clone(&resolver);
            async move {
                match tokio::time::timeout(timeout, resolver.resolve(&name)).await {
                    Ok(Ok(addrs)) => addrs.first().copied(),
                    Ok(Err(e)) => {
                        tracing::debug!(name, error = %e, "name does not resolve now");
                        None
                    }
                    Err(_) => None,
                }
            }
        };
        if !seed_names.is_empty() {
            let found = futures::future::join_all(seed_names.iter().cloned().map(lookup)).await;
            gossip.update_seeds(found);
        }
        let peers = gossip.core().names_to_resolve();
        for (host_id, name) in peers {
            let addr = lookup(name.clone()).await;
            if gossip.core().set_resolved(&host_id, addr) {
                tracing::info!(%host_id, name, ?addr, "a silent peer's name resolves to a new address; gossiping there");
            }
        }
    }

    /// One round with one peer: SYN, apply the ACK, send the ACK2.
    async fn round(gossip: GossipHandle, transport: Arc<dyn GossipTransport>, out: Outgoing) {
        let ack = match transport.syn(out.to, out.syn).await {
            Ok(ack) => ack,
            Err(e) => {
                gossip.count("syn", "sent", false);
                tracing::debug!(to = %out.to, reason = ?out.reason, error = %e, "gossip SYN failed");
                return;
            }
        };
        gossip.count("syn", "sent", true);
        let ack2 = gossip.on_ack(&ack);
        let result = transport.ack2(out.to, ack2).await;
        gossip.count("ack2", "sent", result.is_ok());
        if let Err(e) = result {
            tracing::debug!(to = %out.to, error = %e, "gossip ACK2 failed");
        }
    }

    /// One probe: ping, report the answer (a failure is just silence).
    async fn probe(gossip: GossipHandle, transport: Arc<dyn GossipTransport>, probe: Probe, timeout: Duration) {
        match transport.ping(probe.to, probe.ping, timeout).await {
            Ok(pong) => {
                gossip.count("ping", "sent", true);
                gossip.on_pong(&pong);
            }
            Err(e) => {
                gossip.count("ping", "sent", false);
                tracing::trace!(to = %probe.to, error = %e, "gossip probe failed");
            }
        }
    }
}

impl Worker for GossipWorker {
    type Error = Infallible;

    fn name(&self) -> &'static str {
        "gossip"
    }

    /// One tick: reap the finished rounds, publish the local states, tick
    /// the core, start the rounds and probes (and the lookups when due),
    /// save the peers' states when they changed.
    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, Infallible> {
        while let Some(done) = self.rounds.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "gossip round task failed");
            }
        }
        let mut states = vec![AppValue::Schema(self.schema.clone())];
        states.extend(self.load().await.map(AppValue::Load));
        let (syns, probes) = self.gossip.tick(&mut self.rng, states);
        for probe in probes.iter().filter(|p| p.reconnect) {
            self.transport.reconnect(probe.to);
        }
        for out in syns {
            self.rounds.spawn(Self::round(self.gossip.clone(), Arc::clone(&self.transport), out));
        }
        for probe in probes {
            self.rounds.spawn(Self::probe(self.gossip.clone(), Arc::clone(&self.transport), probe, self.interval));
        }
        if self.last_resolved.elapsed() >= self.resolve_every {
            self.last_resolved = Instant::now();
            let (gossip, resolver) = (self.gossip.clone(), Arc::clone(&self.resolver));
            let timeout = self.interval.max(Duration::from_secs(1));
            self.rounds.spawn(Self::resolve(gossip, resolver, self.seed_names.clone(), timeout));
        }
        self.saved = self.save_if_changed(self.saved).await;
        Ok(WorkerState::Idle)
    }

    /// The next tick (the first at once).
    async fn wait_for_work(&mut self) {
        let tick = match &mut self.tick {
            Some(tick) => tick,
            None => {
                tracing::info!(interval = ?self.interval, "gossip started");
                self.last_resolved = Instant::now();
                // `interval` panics on zero; config validation refuses it, this keeps the worker alive regardless.
                let mut tick = tokio::time::interval(self.interval.max(Duration::from_millis(1)));
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                self.tick.insert(tick)
            }
        };
        tick.tick().await;
    }
}
