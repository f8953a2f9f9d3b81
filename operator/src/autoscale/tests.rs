//! Autoscaler scenarios: up and down with stabilisation, bounds, RF floor.

use super::*;

fn spec(min: i32, max: i32, ops: f64, window_s: i32) -> AutoscalingSpec {
    AutoscalingSpec {
        min_nodes: min,
        max_nodes: max,
        target_ops_per_node: Some(ops),
        target_disk_utilisation: None,
        stabilisation_window_seconds: window_s,
    }
}

/// Feeds one sample every 30 s at `rate` requests/s (summed over `pods` pods)
/// from `t0`, returning the decisions.
fn run(
    t: Targets<'_>,
    memory: &mut AutoscalerStatus,
    current: &mut i32,
    counter: &mut f64,
    t0: i64,
    rate: f64,
    samples: usize,
) -> Vec<Option<i32>> {
    let mut out = Vec::new();
    for i in 0..samples {
        let at_ms = t0 + i as i64 * 30_000;
        if i > 0 || memory.last_sample.is_some() {
            *counter += rate * 30.0;
        }
        let pods = *current;
        let d = decide(t, memory, *current, Sample { at_ms, requests_total: *counter, disk_bytes: 0.0, pods });
        if let Some(n) = d {
            *current = n;
            // A new pod resets the pod set; the next rate is skipped, as in reality.
        }
        out.push(d);
    }
    out
}

#[test]
fn sustained_load_scales_up_one_node_at_a_time_after_the_window() {
    let s = spec(3, 10, 1000.0, 120);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let (mut current, mut counter) = (3, 0.0);
    // 5500 req/s wants 6 nodes. Nothing happens before the window (120 s) is covered.
    // The first rate comes at 30 s, so the window is covered at 150 s.
    let first = run(t, &mut memory, &mut current, &mut counter, 0, 5500.0, 6);
    assert_eq!(first[..5], [None, None, None, None, None], "{first:?}");
    assert_eq!(first[5], Some(4), "one step, not a jump to 6: {first:?}");
    let more = run(t, &mut memory, &mut current, &mut counter, 180_000, 5500.0, 30);
    assert!(more.iter().flatten().all(|n| *n <= 6), "{more:?}");
    assert_eq!(current, 6);
    let steps: Vec<i32> = more.iter().flatten().copied().collect();
    assert_eq!(steps, [5, 6], "one node per decision");
}

#[test]
fn a_short_spike_changes_nothing() {
    let s = spec(3, 10, 1000.0, 300);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let (mut current, mut counter) = (3, 0.0);
    let calm = run(t, &mut memory, &mut current, &mut counter, 0, 2000.0, 12);
    let spike = run(t, &mut memory, &mut current, &mut counter, 360_000, 9000.0, 3);
    let calm_again = run(t, &mut memory, &mut current, &mut counter, 450_000, 2000.0, 5);
    assert!(calm.iter().chain(&spike).chain(&calm_again).all(Option::is_none));
    assert_eq!(current, 3);
}

#[test]
fn low_load_scales_down_after_the_window_never_below_rf_or_min() {
    let s = spec(3, 10, 1000.0, 60);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let (mut current, mut counter) = (6, 0.0);
    let d = run(t, &mut memory, &mut current, &mut counter, 0, 10.0, 40);
    let steps: Vec<i32> = d.iter().flatten().copied().collect();
    assert_eq!(steps, [5, 4, 3]);
    assert_eq!(current, 3, "RF and minNodes are the floor");
    // A dip inside the window after a busy period: the busy recommendation holds the count.
    let capped = spec(3, 5, 1000.0, 60);
    let t = Targets { spec: &capped, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let (mut current, mut counter) = (5, 0.0);
    let busy = run(t, &mut memory, &mut current, &mut counter, 0, 5000.0, 4);
    assert!(busy.iter().all(Option::is_none), "already at the cap: {busy:?}");
    let dip = run(t, &mut memory, &mut current, &mut counter, 120_000, 10.0, 1);
    assert_eq!(dip, [None]);
}

#[test]
fn max_nodes_caps_and_out_of_bounds_moves_back_one_step() {
    let s = spec(3, 4, 100.0, 0);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let (mut current, mut counter) = (3, 0.0);
    run(t, &mut memory, &mut current, &mut counter, 0, 100_000.0, 10);
    assert_eq!(current, 4);
    let mut memory = AutoscalerStatus::default();
    let d = decide(t, &mut memory, 7, Sample { at_ms: 0, requests_total: 0.0, disk_bytes: 0.0, pods: 7 });
    assert_eq!(d, None, "no recommendation without a rate yet");
    let d = decide(t, &mut memory, 7, Sample { at_ms: 30_000, requests_total: 0.0, disk_bytes: 0.0, pods: 7 });
    assert_eq!(d, Some(6));
}

#[test]
fn disk_target_asks_for_enough_nodes() {
    let s = AutoscalingSpec { target_ops_per_node: None, target_disk_utilisation: Some(0.5), ..spec(3, 20, 1.0, 0) };
    // 10 GiB volumes at 50 %: 5 GiB per node; 40 GiB of data wants 8 nodes.
    let t = Targets { spec: &s, rf: 3, volume_bytes: 10 << 30 };
    let sample = Sample { at_ms: 0, requests_total: 0.0, disk_bytes: (40u64 << 30) as f64, pods: 3 };
    assert_eq!(raw_recommendation(t, None, sample), Some(8));
}

#[test]
fn a_counter_reset_or_pod_set_change_gives_no_rate() {
    let s = spec(3, 10, 10.0, 0);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let prev = CounterSample { at_ms: 0, requests_total: 1000.0, pods: 3 };
    let reset = Sample { at_ms: 10_000, requests_total: 5.0, disk_bytes: 0.0, pods: 3 };
    assert_eq!(raw_recommendation(t, Some(prev), reset), None);
    let more_pods = Sample { at_ms: 10_000, requests_total: 2000.0, disk_bytes: 0.0, pods: 4 };
    assert_eq!(raw_recommendation(t, Some(prev), more_pods), None);
    let ok = Sample { at_ms: 10_000, requests_total: 2000.0, disk_bytes: 0.0, pods: 3 };
    assert_eq!(raw_recommendation(t, Some(prev), ok), Some(10));
}

/// The stabilisation before the memory was bounded: every recommendation of
/// the window is kept. The bounded memory must decide exactly like it.
fn decide_keeping_every_sample(
    t: Targets<'_>,
    memory: &mut AutoscalerStatus,
    current: i32,
    now: Sample,
) -> Option<i32> {
    let raw = raw_recommendation(t, memory.last_sample, now);
    memory.last_sample = Some(CounterSample { at_ms: now.at_ms, requests_total: now.requests_total, pods: now.pods });
    let cutoff = now.at_ms - i64::from(t.spec.stabilisation_window_seconds) * 1000;
    if let Some(nodes) = raw {
        memory.recommendations.push(Recommendation { at_ms: now.at_ms, nodes });
    }
    let older = memory.recommendations.iter().filter(|r| r.at_ms < cutoff).count();
    memory.recommendations.drain(..older.saturating_sub(1));
    if memory.recommendations.first().is_none_or(|r| r.at_ms > cutoff) {
        return None;
    }
    let in_window = memory.recommendations.iter().filter(|r| r.at_ms >= cutoff).map(|r| r.nodes);
    let (lo, hi) = in_window.fold((i32::MAX, i32::MIN), |(lo, hi), n| (lo.min(n), hi.max(n)));
    let clamped = clamp(t, current);
    if lo == i32::MAX {
        None
    } else if clamped != current {
        Some(current + (clamped - current).signum())
    } else if lo > current {
        Some(current + 1)
    } else if hi < current {
        Some(current - 1)
    } else {
        None
    }
}

#[test]
fn steady_load_keeps_the_memory_bounded() {
    let s = spec(3, 10, 100.0, 300);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    // One sample a second for an hour at a steady 450 req/s (5 nodes wanted, 5 present).
    for i in 0..3600 {
        let sample = Sample { at_ms: i * 1000, requests_total: 450.0 * i as f64, disk_bytes: 0.0, pods: 5 };
        assert_eq!(decide(t, &mut memory, 5, sample), None);
    }
    assert!(
        memory.recommendations.len() <= 3,
        "{} entries: {:?}",
        memory.recommendations.len(),
        memory.recommendations
    );
}

#[test]
fn an_oscillating_load_is_capped() {
    let s = spec(3, 10, 100.0, 3600);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let mut memory = AutoscalerStatus::default();
    let mut counter = 0.0;
    for i in 0..2000 {
        counter += if i % 2 == 0 { 350.0 } else { 650.0 };
        let sample = Sample { at_ms: i * 1000, requests_total: counter, disk_bytes: 0.0, pods: 5 };
        decide(t, &mut memory, 5, sample);
        assert!(memory.recommendations.len() <= MAX_RECOMMENDATIONS, "{} entries", memory.recommendations.len());
    }
}

#[test]
fn the_bounded_memory_decides_like_keeping_every_sample() {
    let s = spec(3, 12, 100.0, 300);
    let t = Targets { spec: &s, rf: 3, volume_bytes: 0 };
    let (mut bounded, mut full) = (AutoscalerStatus::default(), AutoscalerStatus::default());
    let (mut current_b, mut current_f, mut counter, mut x) = (5, 5, 0.0, 12345_u64);
    for i in 0..2000_i64 {
        // A load that stays put for a while, then jumps (xorshift, deterministic).
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let rate = if (i / 40) % 3 == 0 { 300.0 + (x % 3) as f64 * 100.0 } else { 200.0 + (i / 40 % 7) as f64 * 150.0 };
        counter += rate * 30.0;
        let sample = |pods| Sample { at_ms: i * 30_000, requests_total: counter, disk_bytes: 0.0, pods };
        let b = decide(t, &mut bounded, current_b, sample(5));
        let f = decide_keeping_every_sample(t, &mut full, current_f, sample(5));
        assert_eq!(b, f, "sample {i}: bounded {:?} vs full {:?}", bounded.recommendations, full.recommendations);
        current_b = b.unwrap_or(current_b);
        current_f = f.unwrap_or(current_f);
    }
}

#[test]
fn samples_come_on_their_own_cadence() {
    let s = spec(3, 10, 100.0, 300);
    assert_eq!(sample_interval_ms(&s), MIN_SAMPLE_INTERVAL_MS);
    assert_eq!(sample_interval_ms(&spec(3, 10, 100.0, 3200)), 100_000, "1/32 of a long window");
    let mut memory = AutoscalerStatus::default();
    assert_eq!(next_sample_in_ms(&s, &memory, 1_000_000), 0, "no sample yet: now");
    memory.last_sample = Some(CounterSample { at_ms: 1_000_000, requests_total: 0.0, pods: 3 });
    assert_eq!(next_sample_in_ms(&s, &memory, 1_004_000), 11_000);
    assert_eq!(next_sample_in_ms(&s, &memory, 1_020_000), 0, "overdue");
    assert_eq!(next_sample_in_ms(&s, &memory, 900_000), 0, "a sample from the future does not block sampling");
}
