//! The YCSB core workloads A–F and the operation mix they draw from.
//!
//! Pure: a [`Workload`] is data (proportions and a key distribution) and
//! [`Workload::choose`] maps one uniform draw to an [`OpKind`].

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::Serialize;

use super::keys::Distribution;

/// One kind of operation, as YCSB names them in its reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING-KEBAB-CASE")]
pub enum OpKind {
    /// Read one record.
    Read,
    /// Overwrite one existing record (a blind write).
    Update,
    /// Write a new record.
    Insert,
    /// Read a short range of records in key order.
    Scan,
    /// Read a record, then write it back (with the read's causal context where the target has one).
    ReadModifyWrite,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 5] = [Self::Read, Self::Update, Self::Insert, Self::Scan, Self::ReadModifyWrite];

    /// Position in [`OpKind::ALL`], for per-kind arrays.
    pub fn index(self) -> usize {
        match self {
            Self::Read => 0,
            Self::Update => 1,
            Self::Insert => 2,
            Self::Scan => 3,
            Self::ReadModifyWrite => 4,
        }
    }

    /// The YCSB name (`READ`, `READ-MODIFY-WRITE`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Update => "UPDATE",
            Self::Insert => "INSERT",
            Self::Scan => "SCAN",
            Self::ReadModifyWrite => "READ-MODIFY-WRITE",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A YCSB core workload: operation proportions and key distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// `a` .. `f`.
    pub name: char,
    /// What YCSB calls it.
    pub description: &'static str,
    /// `(kind, proportion)`, proportions summing to 1 (a JSON object).
    #[serde(serialize_with = "serialize_mix")]
    pub mix: Vec<(OpKind, f64)>,
    /// How keys are chosen.
    #[serde(serialize_with = "serialize_distribution")]
    pub distribution: Distribution,
    /// Longest scan (scan lengths are uniform in `1..=max_scan_length`).
    pub max_scan_length: u32,
}

fn serialize_mix<S: serde::Serializer>(mix: &[(OpKind, f64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(mix.iter().map(|(kind, share)| (kind.name(), share)))
}

fn serialize_distribution<S: serde::Serializer>(d: &Distribution, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(d.name())
}

/// A workload name that is not one of `a`–`f`.
#[derive(Debug, thiserror::Error)]
#[error("unknown workload {name:?}: expected one of a, b, c, d, e, f (YCSB core) or w (update only)")]
pub struct UnknownWorkload {
    /// What was given.
    pub name: String,
}

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use OpKind::*;
        let (name, description, mix, distribution) = match s.to_ascii_lowercase().as_str() {
            "a" => ('a', "update heavy", vec![(Read, 0.5), (Update, 0.5)], Distribution::Zipfian),
            "b" => ('b', "read mostly", vec![(Read, 0.95), (Update, 0.05)], Distribution::Zipfian),
            "c" => ('c', "read only", vec![(Read, 1.0)], Distribution::Zipfian),
            "d" => ('d', "read latest", vec![(Read, 0.95), (Insert, 0.05)], Distribution::Latest),
            "e" => ('e', "short ranges", vec![(Scan, 0.95), (Insert, 0.05)], Distribution::Zipfian),
            "f" => ('f', "read-modify-write", vec![(Read, 0.5), (ReadModifyWrite, 0.5)], Distribution::Zipfian),
            // Not a YCSB core workload: PUT throughput, against the peers' SET/put.
            "w" => ('w', "update only (PUT)", vec![(Update, 1.0)], Distribution::Uniform),
            _ => return Err(UnknownWorkload { name: s.to_owned() }),
        };
        Ok(Self { name, description, mix, distribution, max_scan_length: 100 })
    }
}

impl Workload {
    /// The operation for one draw.
    pub fn choose<R: Rng + ?Sized>(&self, rng: &mut R) -> OpKind {
        let mut draw: f64 = rng.random();
        for &(kind, share) in &self.mix {
            if draw < share {
                return kind;
            }
            draw -= share;
        }
        // Rounding of the proportions: the last kind takes the remainder.
        self.mix.last().map_or(OpKind::Read, |&(kind, _)| kind)
    }

    /// True when the workload writes new records during the run.
    pub fn inserts(&self) -> bool {
        self.mix.iter().any(|&(kind, _)| kind == OpKind::Insert)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn every_workload_parses_and_sums_to_one() {
        for name in ["a", "b", "c", "d", "E", "f"] {
            let w: Workload = name.parse().expect("known workload");
            let total: f64 = w.mix.iter().map(|(_, p)| p).sum();
            assert!((total - 1.0).abs() < 1e-9, "{name}: {total}");
        }
        assert!("g".parse::<Workload>().is_err());
    }

    #[test]
    fn mix_is_respected() {
        let w: Workload = "b".parse().expect("b");
        let mut rng = StdRng::seed_from_u64(3);
        let updates = (0..10_000).filter(|_| w.choose(&mut rng) == OpKind::Update).count();
        assert!((300..700).contains(&updates), "updates: {updates}");
    }
}
