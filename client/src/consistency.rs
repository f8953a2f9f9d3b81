//! Consistency levels: parsing user input into the proto [`Consistency`] and
//! printing it back.
//!
//! Accepted forms, case-insensitive, parts separated by commas:
//! a named level (`ONE`, `TWO`, `THREE`, `QUORUM`, `ALL`, `LOCAL_QUORUM`,
//! `EACH_QUORUM`, `ANY`; `-` may stand for `_`), explicit counts `r=N` and
//! `w=N`, or a mix such as `QUORUM,w=1`. Explicit counts override the level
//! for reads (`r`) or writes (`w`). Whether a level suits a request (e.g.
//! `ANY` only for writes) is the server's decision.

use ringkv_proto::v1::{Consistency, ConsistencyLevel};

/// The named levels, as listed in error messages and help texts.
pub const LEVEL_NAMES: &str = "ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, ANY";

/// Why a consistency string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsistencyParseError {
    /// Nothing was given.
    #[error("empty consistency; use one of {LEVEL_NAMES}, or explicit counts such as r=2, w=2, r=2,w=3")]
    Empty,
    /// A name that is not a level.
    #[error(
        "unknown consistency level {input:?}; valid levels are {LEVEL_NAMES} (case-insensitive), \
         or explicit counts such as r=2, w=2, r=2,w=3"
    )]
    UnknownLevel {
        /// The unrecognised part.
        input: String,
    },
    /// `r=` or `w=` not followed by a whole number of at least 1.
    #[error("invalid replica count {input:?}: `{which}=` takes a whole number of at least 1, e.g. {which}=2")]
    InvalidCount {
        /// The offending part.
        input: String,
        /// `r` or `w`.
        which: char,
    },
    /// The level, `r=` or `w=` appears twice.
    #[error("{what} given twice in {input:?}; give the level, r= and w= at most once each")]
    Duplicate {
        /// The whole input.
        input: String,
        /// `"the level"`, `"r="` or `"w="`.
        what: &'static str,
    },
}

/// Parses a consistency such as `quorum`, `r=2`, `w=3` or `ONE,r=2`.
pub fn parse_consistency(input: &str) -> Result<Consistency, ConsistencyParseError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(ConsistencyParseError::Empty);
    }
    let mut consistency = Consistency::default();
    let mut level_seen = false;
    for part in trimmed.split(',').map(str::trim) {
        let duplicate = |what| ConsistencyParseError::Duplicate { input: input.to_owned(), what };
        if let Some((name, count)) = part.split_once('=') {
            let which = match name.trim().to_ascii_lowercase().as_str() {
                "r" => 'r',
                "w" => 'w',
                _ => {
                    return Err(ConsistencyParseError::UnknownLevel { input: part.to_owned() });
                }
            };
            let count = parse_count(count, part, which)?;
            let slot = if which == 'r' { &mut consistency.r } else { &mut consistency.w };
            if slot.replace(count).is_some() {
                return Err(duplicate(if which == 'r' { "r=" } else { "w=" }));
            }
        } else {
            if level_seen {
                return Err(duplicate("the level"));
            }
            level_seen = true;
            consistency.set_level(parse_level(part)?);
        }
    }
    Ok(consistency)
}

fn parse_count(count: &str, part: &str, which: char) -> Result<u32, ConsistencyParseError> {
    match count.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ConsistencyParseError::InvalidCount { input: part.to_owned(), which }),
    }
}

fn parse_level(name: &str) -> Result<ConsistencyLevel, ConsistencyParseError> {
    let upper = name.to_ascii_uppercase().replace('-', "_");
    match ConsistencyLevel::from_str_name(&format!("CONSISTENCY_LEVEL_{upper}")) {
        Some(ConsistencyLevel::Unspecified) | None => {
            Err(ConsistencyParseError::UnknownLevel { input: name.to_owned() })
        }
        Some(level) => Ok(level),
    }
}

/// The short name of a level (`QUORUM`), or `DEFAULT` for unspecified.
pub fn level_name(level: ConsistencyLevel) -> &'static str {
    match level {
        ConsistencyLevel::Unspecified => "DEFAULT",
        other => other.as_str_name().trim_start_matches("CONSISTENCY_LEVEL_"),
    }
}

/// Formats a consistency in the syntax [`parse_consistency`] accepts
/// (`QUORUM`, `r=2,w=3`, `ONE,r=2`); `DEFAULT` when nothing is set.
pub fn format_consistency(consistency: &Consistency) -> String {
    let mut parts = Vec::new();
    match ConsistencyLevel::try_from(consistency.level) {
        Ok(ConsistencyLevel::Unspecified) => {}
        Ok(level) => parts.push(level_name(level).to_owned()),
        Err(_) => parts.push(format!("LEVEL({})", consistency.level)),
    }
    parts.extend(consistency.r.map(|r| format!("r={r}")));
    parts.extend(consistency.w.map(|w| format!("w={w}")));
    if parts.is_empty() { "DEFAULT".to_owned() } else { parts.join(",") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Consistency {
        match parse_consistency(input) {
            Ok(c) => c,
            Err(err) => panic!("{input:?}: {err}"),
        }
    }

    #[test]
    fn parses_every_named_level_case_insensitively() {
        for (name, level) in [
            ("ONE", ConsistencyLevel::One),
            ("two", ConsistencyLevel::Two),
            ("Three", ConsistencyLevel::Three),
            ("quorum", ConsistencyLevel::Quorum),
            ("ALL", ConsistencyLevel::All),
            ("local_quorum", ConsistencyLevel::LocalQuorum),
            ("each-quorum", ConsistencyLevel::EachQuorum),
            (" any ", ConsistencyLevel::Any),
        ] {
            let c = parse(name);
            assert_eq!(c.level(), level, "{name}");
            assert_eq!((c.r, c.w), (None, None));
        }
    }

    #[test]
    fn parses_explicit_counts_and_mixes() {
        let c = parse("r=2");
        assert_eq!((c.level(), c.r, c.w), (ConsistencyLevel::Unspecified, Some(2), None));
        let c = parse("W=3");
        assert_eq!((c.r, c.w), (None, Some(3)));
        let c = parse("r=1, w=3");
        assert_eq!((c.r, c.w), (Some(1), Some(3)));
        let c = parse("quorum,w=1");
        assert_eq!((c.level(), c.w), (ConsistencyLevel::Quorum, Some(1)));
    }

    #[test]
    fn rejects_unknown_names_listing_the_valid_ones() {
        let err = parse_consistency("MOST").expect_err("MOST is no level");
        assert_eq!(err, ConsistencyParseError::UnknownLevel { input: "MOST".into() });
        let text = err.to_string();
        assert!(text.contains("LOCAL_QUORUM") && text.contains("r=2"), "{text}");
        assert!(parse_consistency("unspecified").is_err());
        assert!(parse_consistency("x=2").is_err());
    }

    #[test]
    fn rejects_bad_counts_and_duplicates() {
        assert!(matches!(parse_consistency("r=0"), Err(ConsistencyParseError::InvalidCount { which: 'r', .. })));
        assert!(matches!(parse_consistency("w=-1"), Err(ConsistencyParseError::InvalidCount { which: 'w', .. })));
        assert!(matches!(parse_consistency("r="), Err(ConsistencyParseError::InvalidCount { .. })));
        assert!(matches!(parse_consistency("one,all"), Err(ConsistencyParseError::Duplicate { .. })));
        assert!(matches!(parse_consistency("r=1,r=2"), Err(ConsistencyParseError::Duplicate { what: "r=", .. })));
        assert_eq!(parse_consistency("  "), Err(ConsistencyParseError::Empty));
    }

    #[test]
    fn format_round_trips() {
        for input in ["QUORUM", "r=2", "w=3", "r=2,w=3", "LOCAL_QUORUM,w=1", "ANY"] {
            assert_eq!(format_consistency(&parse(input)), input);
        }
        assert_eq!(format_consistency(&Consistency::default()), "DEFAULT");
    }
}
