//! The node's dependency rules (issue 12, item 6), checked on the source:
//! every `crate::…` path and every use of tonic or the proto crate in
//! `node/src/**/*.rs` (comments and test code excluded) must be allowed by
//! [`RULES`], or listed with its reason in [`EXCEPTIONS`]. An exception that
//! no longer matches anything fails too, so the table stays true.
//!
//! The layers, top to bottom: `main`/`dev` → `assembly` (the one place a
//! node is put together) → `server` (client-facing protocols) → `peer`
//! (everything between nodes) → the domains (`replication`, `antientropy`,
//! `topology`, `membership`, `hints`, `worker`, and the ports `transport`) →
//! the pure cores and storage.

use std::path::{Path, PathBuf};

/// Modules below the peer layer: none may call `peer` or `server`.
const BELOW_PEER: &[&str] = &[
    "antientropy",
    "auth",
    "clock",
    "config",
    "error",
    "hints",
    "membership",
    "metrics",
    "replication",
    "ring",
    "schema",
    "storage",
    "tls",
    "topology",
    "transport",
    "version",
    "worker",
];

/// Modules that may speak gRPC (tonic, `ringkv_proto`): the peer layer, the
/// client-facing servers, the assembly (which mounts them on one tonic
/// server), the binary edges, the fuzz targets (which decode protos on
/// purpose), and `tls` (its streams implement tonic's `Connected`).
const WIRE: &[&str] = &["peer", "server", "assembly", "main", "dev", "fuzzing", "tls"];

/// Modules that may build a node: the assembly itself and the binaries.
const ASSEMBLERS: &[&str] = &["assembly", "main", "dev"];

/// One rule: files of `modules` must not contain any of `needles` in code.
struct Rule {
    what: &'static str,
    applies: fn(&str) -> bool,
    needles: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        what: "nothing below `peer` calls `peer` or `server`",
        applies: |m| BELOW_PEER.contains(&m),
        needles: &["crate::peer", "crate::server"],
    },
    Rule {
        what: "`server` (the client-facing protocols) does not call the node's assembly",
        applies: |m| m == "server",
        needles: &["crate::assembly", "super::assembly"],
    },
    Rule {
        what: "only the binaries (`main`, `dev`) and tests call the node's assembly",
        applies: |m| !ASSEMBLERS.contains(&m) && m != "server",
        needles: &["crate::assembly"],
    },
    Rule {
        what: "only `peer`, `server`, the binary edges and the fuzz targets use tonic or the protos",
        applies: |m| !WIRE.contains(&m),
        needles: &["tonic::", "ringkv_proto"],
    },
];

/// Known breaks, each with the file, the needle and why (and where it goes).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("membership/wire.rs", "ringkv_proto", "the saved membership is stored in the gossip proto format"),
    ("membership/wire.rs", "crate::peer", "shares the member conversions of peer::convert with the gossip protos"),
    (
        "replication/metrics.rs",
        "crate::server",
        "labels errors by server::status::classify; the class table belongs in `error` (issue 12 item 3)",
    ),
];

/// The top module of a file under `src/` (`peer/call.rs` → `peer`, `dev.rs` → `dev`).
fn module_of(rel: &str) -> &str {
    let first = rel.split('/').next().unwrap_or(rel);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Test code may cross layers: whole test files, and everything after `#[cfg(test)]`.
fn code_lines(rel: &str, source: &str) -> Vec<(usize, String)> {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if name == "tests.rs" || name.ends_with("_tests.rs") || rel.contains("/tests/") {
        return Vec::new();
    }
    let mut lines = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split("//").next().unwrap_or(line);
        lines.push((i + 1, code.to_owned()));
    }
    lines
}

/// Every break of [`RULES`] in one file, as `file:line: rule (needle)`, and
/// which exceptions it used.
fn check(rel: &str, source: &str, used: &mut Vec<(&'static str, &'static str)>) -> Vec<String> {
    let module = module_of(rel);
    let mut breaks = Vec::new();
    for rule in RULES.iter().filter(|r| (r.applies)(module)) {
        for (n, line) in code_lines(rel, source) {
            for needle in rule.needles.iter().filter(|needle| line.contains(*needle)) {
                match EXCEPTIONS.iter().find(|(f, x, _)| *f == rel && x == needle) {
                    Some((f, x, _)) => used.push((f, x)),
                    None => breaks.push(format!("{rel}:{n}: {} (`{needle}`): {}", rule.what, line.trim())),
                }
            }
        }
    }
    breaks
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_what_the_rules_allow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 50, "found the sources ({} files)", files.len());
    let (mut breaks, mut used) = (Vec::new(), Vec::new());
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file).to_string_lossy().replace('\\', "/");
        let source = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        breaks.extend(check(&rel, &source, &mut used));
    }
    assert!(breaks.is_empty(), "dependency rules broken (see node/tests/deps.rs):\n{}", breaks.join("\n"));
    let stale: Vec<_> = EXCEPTIONS.iter().filter(|(f, x, _)| !used.contains(&(*f, *x))).collect();
    assert!(stale.is_empty(), "exceptions that no longer apply; remove them: {stale:?}");
}

#[test]
fn a_forbidden_import_is_caught_and_test_code_and_comments_are_not() {
    let mut used = Vec::new();
    let broken = "//! May call `server::status`.\nuse crate::server::status::to_status;\n";
    let found = check("transport/mod.rs", broken, &mut used);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("transport/mod.rs:2: nothing below `peer` calls"), "{}", found[0]);
    let grpc = check("antientropy/session.rs", "fn f() -> tonic::Status { todo!() }\n", &mut used);
    assert_eq!(grpc.len(), 1, "{grpc:?}");
    assert!(check("peer/call.rs", "use tonic::Status;\nuse crate::server::status;\n", &mut used).is_empty());
    let test_code = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::peer::GrpcTransport;\n}\n";
    assert!(check("membership/shell.rs", test_code, &mut used).is_empty());
    assert!(check("membership/shell_tests.rs", "use crate::peer::GossipService;\n", &mut used).is_empty());
    let assembled = check("server/grpc.rs", "use crate::assembly::Node;\n", &mut used);
    assert_eq!(assembled.len(), 1, "{assembled:?}");
    assert!(assembled[0].contains("does not call the node's assembly"), "{}", assembled[0]);
    assert_eq!(check("peer/server.rs", "use crate::assembly::NodeCore;\n", &mut used).len(), 1);
    assert_eq!(check("topology/entry.rs", "use crate::assembly::NodeCore;\n", &mut used).len(), 1);
    assert!(check("main.rs", "use crate::assembly::Node;\n", &mut used).is_empty());
    assert!(used.is_empty(), "{used:?}");
}
