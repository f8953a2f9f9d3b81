//! The phi-accrual failure detector (Hayashibara et al.; the normal-distribution
//! variant of Akka): [`ArrivalWindow`] per peer and [`PhiAccrualDetector`].
//!
//! Each time gossip brings a newer heartbeat of a peer, its arrival is
//! reported. The window keeps the last `max_samples` inter-arrival times;
//! `phi(now)` is `-log10(P(next arrival later than now))` under a normal
//! distribution whose mean is the observed mean plus `acceptable_pause` and
//! whose standard deviation is at least `min_std_dev`. phi = 1 means a 10 %
//! chance of a mistake, 8 means 10^-8.
//!
//! Invariants: phi is never NaN and never negative; a peer with no arrival
//! yet has phi 0 (it is not judged before it was heard once); a window is
//! bounded. Pure: time is passed in as a [`Duration`] since any fixed origin.

use std::collections::VecDeque;
use std::time::Duration;

/// Tuning of the failure detector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorConfig {
    /// phi above which a peer is convicted (DOWN); above half of it, SUSPECT.
    pub convict_threshold: f64,
    /// Inter-arrival samples kept per peer.
    pub max_samples: usize,
    /// Lower bound of the standard deviation, so that very regular
    /// heartbeats do not make the detector hair-triggered.
    pub min_std_dev: Duration,
    /// Added to the mean: a pause this long is tolerated beyond the usual interval.
    pub acceptable_pause: Duration,
    /// Mean assumed before the first interval is measured (the gossip interval).
    pub first_heartbeat_estimate: Duration,
}

impl Default for DetectorConfig {
    /// Tuned with `node/tests/gossip_sim.rs` for a 1 s gossip interval and
    /// direct probes (two arrivals per interval per peer): a dead peer is
    /// convicted in 5 to 7 s at any cluster size, and 200 ms of jitter with
    /// 5 % message loss convicts no live peer in an hour.
    fn default() -> Self {
        Self {
            convict_threshold: 8.0,
            max_samples: 1000,
            min_std_dev: Duration::from_millis(500),
            acceptable_pause: Duration::from_millis(2000),
            first_heartbeat_estimate: Duration::from_secs(1),
        }
    }
}

impl DetectorConfig {
    /// The defaults scaled to a gossip `interval` (the defaults are for 1 s):
    /// first estimate one interval, acceptable pause two, minimum standard
    /// deviation half of one; `threshold` convicts.
    pub fn for_interval(interval: Duration, threshold: f64) -> Self {
        Self {
            convict_threshold: threshold,
            min_std_dev: interval / 2,
            acceptable_pause: interval * 2,
            first_heartbeat_estimate: interval,
            ..Self::default()
        }
    }
}

/// Inter-arrival times of one peer's heartbeats (bounded).
#[derive(Debug, Clone)]
pub struct ArrivalWindow {
    last: Option<Duration>,
    intervals: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    max_samples: usize,
}

impl ArrivalWindow {
    /// An empty window keeping at most `max_samples` intervals (at least 1).
    pub fn new(max_samples: usize) -> Self {
        Self { last: None, intervals: VecDeque::new(), sum: 0.0, sum_sq: 0.0, max_samples: max_samples.max(1) }
    }

    /// A window that already holds two intervals, `first / 2` and
    /// `3 * first / 2` (mean `first`, standard deviation `first / 2`), so the
    /// first real gaps are judged against a sensible mean until real
    /// intervals outweigh the estimate. Akka uses `first ± first/4`; a wider
    /// spread tolerates a newcomer's uneven first arrivals.
    pub fn with_estimate(max_samples: usize, first: Duration) -> Self {
        let mut w = Self::new(max_samples);
        w.push(millis(first) / 2.0);
        w.push(millis(first) * 1.5);
        w
    }

    fn push(&mut self, interval_ms: f64) {
        if self.intervals.len() == self.max_samples
            && let Some(old) = self.intervals.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.intervals.push_back(interval_ms);
        self.sum += interval_ms;
        self.sum_sq += interval_ms * interval_ms;
    }

    /// Records a heartbeat arrival at `now`.
    pub fn add(&mut self, now: Duration) {
        if let Some(last) = self.last {
            self.push(millis(now.saturating_sub(last)));
        }
        self.last = Some(now);
    }

    /// When the last heartbeat arrived.
    pub fn last_arrival(&self) -> Option<Duration> {
        self.last
    }

    /// Number of intervals held.
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// True when no interval is held.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// The longest interval held, in milliseconds (0 when empty).
    pub fn max_interval_ms(&self) -> f64 {
        self.intervals.iter().copied().fold(0.0, f64::max)
    }

    /// Mean interval in milliseconds (0 when empty).
    pub fn mean_ms(&self) -> f64 {
        if self.intervals.is_empty() { 0.0 } else { self.sum / self.intervals.len() as f64 }
    }

    /// Standard deviation of the intervals in milliseconds (population).
    pub fn std_dev_ms(&self) -> f64 {
        if self.intervals.is_empty() {
            return 0.0;
        }
        let mean = self.mean_ms();
        (self.sum_sq / self.intervals.len() as f64 - mean * mean).max(0.0).sqrt()
    }

    /// phi at `now` under `config` (0 before the first arrival).
    pub fn phi(&self, now: Duration, config: &DetectorConfig) -> f64 {
        let Some(last) = self.last else { return 0.0 };
        let since = millis(now.saturating_sub(last));
        let mean = self.mean_ms() + millis(config.acceptable_pause);
        let std_dev = self.std_dev_ms().max(millis(config.min_std_dev)).max(1e-3);
        phi(since, mean, std_dev)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `-log10` of the probability that a normal variable of `mean` and
/// `std_dev` exceeds `elapsed`, with the logistic approximation of the
/// normal CDF that Akka uses (error below 0.0002 on the CDF).
pub fn phi(elapsed: f64, mean: f64, std_dev: f64) -> f64 {
    let y = (elapsed - mean) / std_dev;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let p = if elapsed > mean { e / (1.0 + e) } else { 1.0 - 1.0 / (1.0 + e) };
    let value = -p.log10();
    if value.is_nan() { 0.0 } else { value.max(0.0) }
}

/// One [`ArrivalWindow`] per peer.
#[derive(Debug, Clone)]
pub struct PhiAccrualDetector {
    config: DetectorConfig,
    windows: std::collections::HashMap<String, ArrivalWindow>,
}

impl PhiAccrualDetector {
    /// A detector with `config`.
    pub fn new(config: DetectorConfig) -> Self {
        Self { config, windows: std::collections::HashMap::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Records a heartbeat of `peer` arriving at `now`.
    pub fn report(&mut self, peer: &str, now: Duration) {
        let config = self.config;
        self.windows
            .entry(peer.to_owned())
            .or_insert_with(|| ArrivalWindow::with_estimate(config.max_samples, config.first_heartbeat_estimate))
            .add(now);
    }

    /// Forgets `peer`'s history (it restarted, or came back after being
    /// convicted: the long gap says nothing about its usual interval).
    pub fn reset(&mut self, peer: &str) {
        self.windows.remove(peer);
    }

    /// phi of `peer` at `now` (0 when never heard).
    pub fn phi(&self, peer: &str, now: Duration) -> f64 {
        self.windows.get(peer).map_or(0.0, |w| w.phi(now, &self.config))
    }

    /// The window of `peer`, if it was ever heard.
    pub fn window(&self, peer: &str) -> Option<&ArrivalWindow> {
        self.windows.get(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn phi_of_the_normal_tail_matches_known_values() {
        // At the mean the tail is 1/2: phi = log10(2).
        assert!(close(phi(1000.0, 1000.0, 100.0), std::f64::consts::LOG10_2, 1e-4));
        // One standard deviation above: tail 0.158655 -> phi 0.7995 (logistic approx. 0.15868).
        assert!(close(phi(1100.0, 1000.0, 100.0), 0.7995, 1e-3), "{}", phi(1100.0, 1000.0, 100.0));
        // Three above: exact tail 0.00135 -> phi 2.870; the approximation gives 2.909 (within 0.04).
        assert!(close(phi(1300.0, 1000.0, 100.0), 2.9095, 1e-3), "{}", phi(1300.0, 1000.0, 100.0));
        // Far below the mean: almost certainly alive.
        assert!(phi(0.0, 1000.0, 100.0) < 1e-6);
        // Far above: huge but finite or infinite, never NaN.
        let far = phi(1e9, 1000.0, 100.0);
        assert!(far > 100.0 && !far.is_nan());
    }

    #[test]
    fn window_statistics_and_bound() {
        let mut w = ArrivalWindow::new(3);
        for t in [0, 1000, 2000, 3500, 4500] {
            w.add(ms(t));
        }
        // Intervals 1000, 1000, 1500, 1000 -> the bound keeps the last 3.
        assert_eq!(w.len(), 3);
        assert!(close(w.mean_ms(), 3500.0 / 3.0, 1e-9));
        let mean = 3500.0 / 3.0;
        let var = (2.0 * (1000.0f64 - mean).powi(2) + (1500.0f64 - mean).powi(2)) / 3.0;
        assert!(close(w.std_dev_ms(), var.sqrt(), 1e-6));
        assert_eq!(w.last_arrival(), Some(ms(4500)));
    }

    #[test]
    fn regular_heartbeats_give_expected_phi_with_pause_and_min_std_dev() {
        let config = DetectorConfig {
            convict_threshold: 8.0,
            max_samples: 100,
            min_std_dev: ms(100),
            acceptable_pause: ms(0),
            first_heartbeat_estimate: ms(1000),
        };
        let mut w = ArrivalWindow::new(100);
        for i in 0..=10 {
            w.add(ms(i * 1000));
        }
        // Mean 1000 ms, std dev 0 raised to 100 ms.
        assert!(close(w.phi(ms(10_000 + 1000), &config), std::f64::consts::LOG10_2, 1e-4));
        assert!(close(w.phi(ms(10_000 + 1100), &config), 0.7995, 1e-3));
        let paused = DetectorConfig { acceptable_pause: ms(3000), ..config };
        assert!(close(w.phi(ms(10_000 + 4000), &paused), std::f64::consts::LOG10_2, 1e-4), "the pause shifts the mean");
        assert_eq!(ArrivalWindow::new(10).phi(ms(99_000), &config), 0.0, "never heard: not judged");
    }

    #[test]
    fn defaults_convict_a_silent_peer_within_10s_but_not_after_a_2s_gap() {
        let config = DetectorConfig::default();
        let mut d = PhiAccrualDetector::new(config);
        for i in 0..60 {
            d.report("p", ms(i * 1000));
        }
        let last = ms(59_000);
        assert!(d.phi("p", last + ms(2000)) < config.convict_threshold / 2.0, "a 2 s gap is not even suspect");
        let convicted_at = (0..20_000u64)
            .step_by(100)
            .find(|t| d.phi("p", last + ms(*t)) > config.convict_threshold)
            .unwrap_or(u64::MAX);
        assert!((4000..9000).contains(&convicted_at), "convicted after {convicted_at} ms of silence");
        d.reset("p");
        assert_eq!(d.phi("p", last + ms(60_000)), 0.0);
    }

    #[test]
    fn the_first_heartbeat_estimate_judges_a_new_peer() {
        let config = DetectorConfig::default();
        let mut d = PhiAccrualDetector::new(config);
        d.report("new", ms(0));
        let w = d.window("new").unwrap_or_else(|| panic!("window"));
        assert_eq!(w.len(), 2);
        assert!(close(w.mean_ms(), 1000.0, 1e-9) && close(w.std_dev_ms(), 500.0, 1e-9));
        assert!(d.phi("new", ms(3000)) < config.convict_threshold / 2.0, "a 3 s gap is not suspect");
        assert!(d.phi("new", ms(8000)) > config.convict_threshold, "a silent newcomer is convicted within 8 s");
    }
}
