//! Certificate rotation without restart: [`TlsState`] holds the current
//! material behind a swap (new connections take the current one, open ones
//! keep theirs), and [`TlsReloader`], a [`Worker`], polls the files' size and
//! mtime and swaps in new material only when it loads and validates. A bad
//! rotated file keeps the last good material, is logged (never its
//! contents) and counted in `ringkv_tls_reload_errors_total`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use rustls::{ClientConfig, ServerConfig};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::metrics::must;
use crate::worker::{Worker, WorkerState};

use super::TlsError;
use super::identity::CertificateInfo;
use super::material::{TlsMaterial, TlsSettings, unix_now};

/// The TLS metrics, labelled by `listener` (`client` or `cluster`).
#[derive(Debug, Clone)]
pub struct TlsMetrics {
    /// `tls_reload_errors_total{listener}`: rotated files that were refused.
    pub reload_errors: IntCounterVec,
    /// `tls_certificate_expiry_seconds{listener}`: `notAfter` of the served
    /// certificate, in unix seconds (alert on it minus `time()`).
    pub expiry: IntGaugeVec,
    /// `tls_handshake_failures_total{listener,reason}`.
    pub handshake_failures: IntCounterVec,
}

impl TlsMetrics {
    /// Creates the metrics (unregistered).
    pub fn new() -> Self {
        Self {
            reload_errors: must(IntCounterVec::new(
                Opts::new("tls_reload_errors_total", "Rotated TLS files refused (the last good ones stay in use)"),
                &["listener"],
            )),
            expiry: must(IntGaugeVec::new(
                Opts::new("tls_certificate_expiry_seconds", "notAfter of the served TLS certificate, unix seconds"),
                &["listener"],
            )),
            handshake_failures: must(IntCounterVec::new(
                Opts::new("tls_handshake_failures_total", "Failed TLS handshakes on a listener, by reason"),
                &["listener", "reason"],
            )),
        }
    }

    /// Registers the metrics (the node's registry adds the `ringkv_` prefix).
    pub fn register(&self, registry: &Registry) {
        let collectors: [Box<dyn prometheus::core::Collector>; 3] = [
            Box::new(self.reload_errors.clone()),
            Box::new(self.expiry.clone()),
            Box::new(self.handshake_failures.clone()),
        ];
        for c in collectors {
            if let Err(e) = registry.register(c) {
                tracing::warn!(error = %e, "cannot register a TLS metric");
            }
        }
    }
}

impl Default for TlsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The current TLS material of one listener family, swapped on reload.
#[derive(Debug)]
pub struct TlsState {
    name: &'static str,
    current: RwLock<TlsMaterial>,
    /// Bumped at each swap, so listeners can cache per-ALPN copies.
    generation: AtomicU64,
}

impl TlsState {
    /// Loads the files of `settings` (refusing bad material at start) and
    /// sets the expiry gauge.
    pub fn load(settings: &TlsSettings, metrics: &TlsMetrics) -> Result<Arc<Self>, TlsError> {
        let material = TlsMaterial::load(settings, unix_now())?;
        metrics.expiry.with_label_values(&[settings.name]).set(material.certificate.not_after);
        Ok(Arc::new(Self { name: settings.name, current: RwLock::new(material), generation: AtomicU64::new(0) }))
    }

    /// `client` or `cluster`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The current server configuration and its generation.
    pub fn server_config(&self) -> (u64, Arc<ServerConfig>) {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (self.generation.load(Ordering::Acquire), Arc::clone(&current.server))
    }

    /// The current client configuration (present when a CA is configured).
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).client.clone()
    }

    /// The served certificate's identity and validity.
    pub fn certificate(&self) -> CertificateInfo {
        self.current.read().unwrap_or_else(PoisonError::into_inner).certificate.clone()
    }

    fn swap(&self, material: TlsMaterial) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = material;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Size and mtime of each watched file (`None`: unreadable).
type Fingerprint = Vec<Option<(u64, Option<SystemTime>)>>;

/// Polls the TLS files and swaps valid new material into a [`TlsState`].
#[derive(Debug)]
pub struct TlsReloader {
    settings: TlsSettings,
    state: Arc<TlsState>,
    metrics: TlsMetrics,
    seen: Fingerprint,
    tick: Option<Interval>,
}

impl TlsReloader {
    /// A reloader of `state` from the files of `settings`, which were just
    /// loaded (their current fingerprint counts as seen).
    pub fn new(settings: TlsSettings, state: Arc<TlsState>, metrics: TlsMetrics) -> Self {
        let seen = fingerprint(&settings);
        Self { settings, state, metrics, seen, tick: None }
    }
}

fn fingerprint(settings: &TlsSettings) -> Fingerprint {
    let files = [Some(&settings.cert_file), Some(&settings.key_file), settings.ca_file.as_ref()];
    files.into_iter().flatten().map(|path| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()))).collect()
}

impl Worker for TlsReloader {
    type Error = TlsError;

    fn name(&self) -> &'static str {
        match self.settings.name {
            "cluster" => "tls-reload-cluster",
            _ => "tls-reload-client",
        }
    }

    async fn work(&mut self, _stop: &CancellationToken) -> Result<WorkerState, TlsError> {
        let now = fingerprint(&self.settings);
        if now == self.seen {
            return Ok(WorkerState::Idle);
        }
        // Remember the fingerprint even when loading fails: a half-written
        // rotation is retried when the files change again, not every tick.
        self.seen = now;
        let listener = self.settings.name;
        match TlsMaterial::load(&self.settings, unix_now()) {
            Ok(material) => {
                let info = &material.certificate;
                tracing::info!(listener, serial = %info.identity.serial, not_after = info.not_after, "TLS certificate reloaded");
                self.metrics.expiry.with_label_values(&[listener]).set(info.not_after);
                self.state.swap(material);
                Ok(WorkerState::Idle)
            }
            Err(e) => {
                // The runner logs the error (no key material in it).
                self.metrics.reload_errors.with_label_values(&[listener]).inc();
                Err(e)
            }
        }
    }

    async fn wait_for_work(&mut self) {
        let period = self.settings.reload_interval;
        let tick = self.tick.get_or_insert_with(|| {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            tick
        });
        tick.tick().await;
    }
}
