//! Consistency levels and how many replicas each one needs (pure).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A named consistency level (Cassandra's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ConsistencyLevel {
    /// One replica.
    One,
    /// Two replicas.
    Two,
    /// Three replicas.
    Three,
    /// A majority of the replicas: `n / 2 + 1`.
    Quorum,
    /// Every replica.
    All,
    /// A majority of the replicas in the coordinator's zone.
    LocalQuorum,
    /// A majority of the replicas in every zone.
    EachQuorum,
    /// Writes only: any node, a hint counts.
    Any,
}

impl ConsistencyLevel {
    /// Every level, for help texts.
    pub const ALL_LEVELS: [ConsistencyLevel; 8] =
        [Self::One, Self::Two, Self::Three, Self::Quorum, Self::All, Self::LocalQuorum, Self::EachQuorum, Self::Any];

    /// The level's name as clients write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::One => "ONE",
            Self::Two => "TWO",
            Self::Three => "THREE",
            Self::Quorum => "QUORUM",
            Self::All => "ALL",
            Self::LocalQuorum => "LOCAL_QUORUM",
            Self::EachQuorum => "EACH_QUORUM",
            Self::Any => "ANY",
        }
    }
}

impl fmt::Display for ConsistencyLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A consistency level name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown consistency level {given:?}; use one of ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, ANY")]
pub struct UnknownConsistency {
    /// What the client sent.
    pub given: String,
}

impl FromStr for ConsistencyLevel {
    type Err = UnknownConsistency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        Self::ALL_LEVELS
            .into_iter()
            .find(|l| l.name() == upper)
            .ok_or_else(|| UnknownConsistency { given: s.to_owned() })
    }
}

/// The consistency asked for by one request: a level, explicit counts, or
/// nothing (then the keyspace default, then the cluster default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consistency {
    /// Named level.
    pub level: Option<ConsistencyLevel>,
    /// Explicit number of replicas for reads (overrides `level`).
    pub r: Option<u32>,
    /// Explicit number of replicas for writes (overrides `level`).
    pub w: Option<u32>,
}

impl Consistency {
    /// A request that names `level`.
    pub fn level(level: ConsistencyLevel) -> Self {
        Self { level: Some(level), ..Self::default() }
    }
}

/// Whether a requirement is for a read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A read.
    Read,
    /// A write.
    Write,
}

/// Why a consistency requirement cannot be met by the keyspace's replicas.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistencyError {
    /// More replicas asked for than the keyspace has.
    #[error(
        "consistency {asked} needs {required} replicas but keyspace {keyspace:?} has replication factor {rf}; ask for at most {rf}"
    )]
    TooManyReplicas {
        /// What was asked, e.g. `TWO` or `w=4`.
        asked: String,
        /// Replicas it needs.
        required: u32,
        /// The keyspace.
        keyspace: String,
        /// Its replication factor.
        rf: u32,
    },
    /// Zero replicas asked for explicitly.
    #[error("consistency {asked} asks for 0 replicas; use at least 1")]
    Zero {
        /// What was asked.
        asked: String,
    },
    /// A zone-aware level on a cluster without zones.
    #[error("{level} needs nodes with zones; this cluster has none configured, use QUORUM instead")]
    NoZones {
        /// The level.
        level: ConsistencyLevel,
    },
    /// ANY used for a read.
    #[error("ANY applies to writes only; use ONE for the weakest read")]
    AnyRead,
}

/// Number of replica acknowledgements `c` needs, over `rf` replicas, given
/// the defaults. `zones` is the number of zones known (0 when none are configured).
pub fn required_replicas(
    c: Consistency,
    access: Access,
    default: ConsistencyLevel,
    rf: u32,
    zones: u32,
    keyspace: &str,
) -> Result<u32, ConsistencyError> {
    let explicit = match access {
        Access::Read => c.r.map(|n| (n, format!("r={n}"))),
        Access::Write => c.w.map(|n| (n, format!("w={n}"))),
    };
    let (required, asked) = match explicit {
        Some((0, asked)) => return Err(ConsistencyError::Zero { asked }),
        Some(pair) => pair,
        None => {
            let level = c.level.unwrap_or(default);
            let n = match level {
                ConsistencyLevel::One => 1,
                ConsistencyLevel::Two => 2,
                ConsistencyLevel::Three => 3,
                ConsistencyLevel::Quorum => rf / 2 + 1,
                ConsistencyLevel::All => rf,
                ConsistencyLevel::LocalQuorum | ConsistencyLevel::EachQuorum => {
                    if zones == 0 {
                        return Err(ConsistencyError::NoZones { level });
                    }
                    rf / 2 + 1
                }
                ConsistencyLevel::Any => {
                    if access == Access::Read {
                        return Err(ConsistencyError::AnyRead);
                    }
                    1
                }
            };
            (n, level.name().to_owned())
        }
    };
    if required > rf {
        return Err(ConsistencyError::TooManyReplicas { asked, required, keyspace: keyspace.to_owned(), rf });
    }
    Ok(required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively_and_rejects_unknown() {
        assert_eq!("quorum".parse::<ConsistencyLevel>(), Ok(ConsistencyLevel::Quorum));
        assert_eq!("local-quorum".parse::<ConsistencyLevel>(), Ok(ConsistencyLevel::LocalQuorum));
        let err = "EVENTUAL".parse::<ConsistencyLevel>().unwrap_err();
        assert!(err.to_string().contains("EVENTUAL"));
    }

    #[test]
    fn counts_follow_the_replication_factor() {
        let q = |level, rf| required_replicas(Consistency::level(level), Access::Write, level, rf, 0, "ks");
        assert_eq!(q(ConsistencyLevel::Quorum, 3), Ok(2));
        assert_eq!(q(ConsistencyLevel::Quorum, 5), Ok(3));
        assert_eq!(q(ConsistencyLevel::All, 3), Ok(3));
        assert_eq!(q(ConsistencyLevel::Quorum, 1), Ok(1));
        assert!(matches!(
            q(ConsistencyLevel::Two, 1),
            Err(ConsistencyError::TooManyReplicas { required: 2, rf: 1, .. })
        ));
        assert!(matches!(q(ConsistencyLevel::LocalQuorum, 3), Err(ConsistencyError::NoZones { .. })));
    }

    #[test]
    fn explicit_counts_override_levels_and_are_checked() {
        let c = Consistency { level: Some(ConsistencyLevel::All), r: Some(1), w: Some(4) };
        assert_eq!(required_replicas(c, Access::Read, ConsistencyLevel::One, 3, 0, "ks"), Ok(1));
        assert!(required_replicas(c, Access::Write, ConsistencyLevel::One, 3, 0, "ks").is_err());
        let zero = Consistency { r: Some(0), ..Consistency::default() };
        assert!(matches!(
            required_replicas(zero, Access::Read, ConsistencyLevel::One, 3, 0, "ks"),
            Err(ConsistencyError::Zero { .. })
        ));
        let any = Consistency::level(ConsistencyLevel::Any);
        assert_eq!(
            required_replicas(any, Access::Read, ConsistencyLevel::One, 3, 0, "ks"),
            Err(ConsistencyError::AnyRead)
        );
    }
}
