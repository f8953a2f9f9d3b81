//! Key naming and the YCSB key choosers: uniform, scrambled zipfian, latest.
//!
//! Pure and deterministic given an RNG: no I/O, no clocks. The zipfian
//! generator follows YCSB's `ZipfianGenerator` (Gray et al., "Quickly
//! Generating Billion-Record Synthetic Databases"), the scrambled variant
//! YCSB's `ScrambledZipfianGenerator` (zipfian over 10^10 items, then an FNV
//! hash into the key space, so that popular keys are spread over the whole
//! key space rather than clustered at the start), and "latest" YCSB's
//! `SkewedLatestGenerator` (zipfian distance back from the newest insert).

use rand::Rng;

/// YCSB's default zipfian constant.
pub const ZIPFIAN_CONSTANT: f64 = 0.99;
/// Items of the zipfian behind the scrambled generator (YCSB's `ITEM_COUNT`).
const SCRAMBLED_ITEMS: u64 = 10_000_000_000;
/// zeta(10^10, 0.99), precomputed by YCSB (`ZETAN`).
const SCRAMBLED_ZETAN: f64 = 26.469_028_201_783_02;

/// Prefix of every key; keys are `user<fnv64(n)>` as in YCSB (hashed, so
/// that inserts do not arrive in key order).
pub const KEY_PREFIX: &str = "user";

/// The key of record number `n`.
pub fn key_name(n: u64) -> String {
    format!("{KEY_PREFIX}{}", fnv64(n))
}

/// 64-bit FNV-1a over the 8 little-endian bytes of `value` (YCSB's `fnvhash64`).
pub fn fnv64(value: u64) -> u64 {
    const OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 1_099_511_628_211;
    value.to_le_bytes().iter().fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME))
}

/// zeta(n, theta) = sum over i in 1..=n of 1 / i^theta, continued from a
/// previous partial sum over `1..=from`.
fn zeta_from(from: u64, n: u64, theta: f64, partial: f64) -> f64 {
    (from + 1..=n).fold(partial, |sum, i| sum + 1.0 / (i as f64).powf(theta))
}

/// A zipfian distribution over `0..items`: item 0 is the most popular.
/// The item count may grow (the "latest" chooser); zeta is then extended
/// incrementally, never recomputed.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta2: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    /// A zipfian over `0..items` with constant `theta` (computes zeta: O(items)).
    pub fn new(items: u64, theta: f64) -> Self {
        let zetan = zeta_from(0, items.max(1), theta, 0.0);
        Self::with_zetan(items.max(1), theta, zetan)
    }

    fn with_zetan(items: u64, theta: f64, zetan: f64) -> Self {
        let zeta2 = zeta_from(0, 2, theta, 0.0);
        let mut z = Self { items, theta, alpha: 1.0 / (1.0 - theta), zeta2, zetan, eta: 0.0 };
        z.eta = z.eta_for(items);
        z
    }

    fn eta_for(&self, items: u64) -> f64 {
        (1.0 - (2.0 / items as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// Grows the item count to `items` (no-op when not larger).
    pub fn grow(&mut self, items: u64) {
        if items > self.items {
            self.zetan = zeta_from(self.items, items, self.theta, self.zetan);
            self.items = items;
            self.eta = self.eta_for(items);
        }
    }

    /// The next item, in `0..items`.
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.items - 1);
        }
        let item = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        item.min(self.items - 1)
    }
}

/// How the record number of a read, update, scan start or RMW is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Distribution {
    /// Every existing record equally likely.
    Uniform,
    /// YCSB's scrambled zipfian (constant 0.99) over the loaded records.
    Zipfian,
    /// Skewed to the most recent inserts.
    Latest,
}

impl Distribution {
    /// The lowercase name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Zipfian => "zipfian",
            Self::Latest => "latest",
        }
    }
}

/// Chooses record numbers; one per client task (cheap to clone).
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Uniform over the records inserted so far.
    Uniform,
    /// Scrambled zipfian over the `records` loaded at the start.
    Zipfian {
        /// The zipfian over 10^10 items.
        zipf: Zipfian,
        /// Records loaded before the run.
        records: u64,
    },
    /// Zipfian distance back from the newest record.
    Latest {
        /// Grows with the inserted count.
        zipf: Zipfian,
    },
}

impl KeyChooser {
    /// A chooser of `distribution` for a run over `records` loaded records.
    pub fn new(distribution: Distribution, records: u64) -> Self {
        match distribution {
            Distribution::Uniform => Self::Uniform,
            Distribution::Zipfian => Self::Zipfian {
                zipf: Zipfian::with_zetan(SCRAMBLED_ITEMS, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN),
                records: records.max(1),
            },
            Distribution::Latest => Self::Latest { zipf: Zipfian::new(records.max(1), ZIPFIAN_CONSTANT) },
        }
    }

    /// The next record number, given that records `0..existing` exist.
    pub fn next<R: Rng + ?Sized>(&mut self, rng: &mut R, existing: u64) -> u64 {
        let existing = existing.max(1);
        match self {
            Self::Uniform => rng.random_range(0..existing),
            Self::Zipfian { zipf, records } => fnv64(zipf.next(rng)) % *records,
            Self::Latest { zipf } => {
                zipf.grow(existing);
                existing - 1 - zipf.next(rng).min(existing - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn zipfian_prefers_small_items() {
        let mut rng = StdRng::seed_from_u64(7);
        let z = Zipfian::new(1000, ZIPFIAN_CONSTANT);
        let draws: Vec<u64> = (0..20_000).map(|_| z.next(&mut rng)).collect();
        assert!(draws.iter().all(|&d| d < 1000));
        let zeros = draws.iter().filter(|&&d| d == 0).count();
        let high = draws.iter().filter(|&&d| d >= 500).count();
        assert!(zeros > high / 2, "item 0: {zeros}, upper half: {high}");
    }

    #[test]
    fn growing_matches_fresh_zeta() {
        let mut grown = Zipfian::new(100, ZIPFIAN_CONSTANT);
        grown.grow(5000);
        let fresh = Zipfian::new(5000, ZIPFIAN_CONSTANT);
        assert!((grown.zetan - fresh.zetan).abs() < 1e-9);
    }

    #[test]
    fn choosers_stay_in_range_and_latest_is_recent() {
        let mut rng = StdRng::seed_from_u64(1);
        for dist in [Distribution::Uniform, Distribution::Zipfian, Distribution::Latest] {
            let mut chooser = KeyChooser::new(dist, 500);
            assert!((0..5000).all(|_| chooser.next(&mut rng, 500) < 500), "{}", dist.name());
        }
        let mut latest = KeyChooser::new(Distribution::Latest, 500);
        let recent = (0..1000).filter(|_| latest.next(&mut rng, 10_000) >= 9_000).count();
        assert!(recent > 500, "recent draws: {recent}");
    }

    #[test]
    fn keys_are_hashed_and_distinct() {
        assert_ne!(key_name(1), key_name(2));
        assert!(key_name(0).starts_with(KEY_PREFIX));
    }
}
