//! Replays every fuzz target's committed inputs — the seed corpus
//! `fuzz/corpus/<target>/` and the crash inputs kept as regressions in
//! `fuzz/regressions/<target>/` — through the same functions the fuzz
//! targets call (`ringkv_node::fuzzing`), as an ordinary test: seconds, no
//! fuzzing build. A failing input is named by its path.
//!
//! `write_seeds` (ignored) regenerates the seeds from the node's encoders:
//! `cargo test -p ringkv-node --test fuzz_corpus -- --ignored write_seeds`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ringkv_node::fuzzing;

/// A target's body.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("resp", fuzzing::resp),
    ("http", fuzzing::http),
    ("context", fuzzing::context),
    ("record", fuzzing::record),
    ("gossip", fuzzing::gossip),
    ("hint", fuzzing::hint),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

/// Runs `run` on every file of `dir`; returns how many ran and the failures.
fn replay(dir: &Path, run: Target) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let inputs = files(dir);
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    (inputs.len(), failures)
}

#[test]
fn every_corpus_and_regression_input_passes() {
    let mut failures = Vec::new();
    for (target, run) in TARGETS {
        let (corpus, mut failed) = replay(&fuzz_dir().join("corpus").join(target), run);
        assert!(corpus > 0, "fuzz/corpus/{target}/ is empty or missing; run write_seeds");
        failures.append(&mut failed);
        let (_, mut failed) = replay(&fuzz_dir().join("regressions").join(target), run);
        failures.append(&mut failed);
    }
    assert!(failures.is_empty(), "inputs failing their target: {failures:#?}");
}

#[test]
fn every_target_has_seeds_from_the_encoders_and_they_pass() {
    let seeds = fuzzing::seeds::all();
    for (target, run) in TARGETS {
        let mine: Vec<_> = seeds.iter().filter(|(t, _)| *t == target).collect();
        assert!(mine.len() >= 3, "{target}: only {} seeds", mine.len());
        for (_, data) in mine {
            run(data);
        }
    }
}

/// A deliberately broken input is caught: the replay is not vacuous.
#[test]
fn a_violated_property_fails_the_replay() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("bad"), b"x").unwrap_or_else(|e| panic!("{e}"));
    let always_fails: Target = |data| assert!(data.is_empty(), "property violated");
    let (ran, failed) = replay(dir.path(), always_fails);
    assert_eq!((ran, failed.len()), (1, 1));
}

#[test]
#[ignore = "writes fuzz/corpus/<target>/seed-*; run by hand after changing an encoder"]
fn write_seeds() {
    for (i, (target, data)) in fuzzing::seeds::all().into_iter().enumerate() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("seed-{i:03}"));
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
