//! Human-readable output of `kvctl`: pure functions from response values to
//! text, so that they are tested without a server. Each returns what goes to
//! stdout (ending in a newline); notes for stderr come back separately.

use std::fmt::Write as _;

use bytes::Bytes;
use ringkv_client::Record;
use ringkv_client::proto::{ClusterStatusResponse, Entry, Liveness, NodeState, NodeStatus, Sibling};

use super::encoding::{text_or_base64, to_base64};

/// Output for stdout plus an optional note for stderr.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// Text for stdout.
    pub stdout: String,
    /// A note for stderr, when any.
    pub note: Option<String>,
}

/// `get` of a found key: the bare value when there is one sibling, else
/// every sibling and the context to pass to the write that resolves them.
pub fn get(record: &Record) -> Rendered {
    if let Some(value) = record.value() {
        return match text_or_base64(value) {
            Ok(text) => Rendered { stdout: format!("{text}\n"), note: None },
            Err(b64) => Rendered {
                stdout: format!("{b64}\n"),
                note: Some("note: the value is not valid UTF-8; printed as base64".to_owned()),
            },
        };
    }
    let total = record.siblings.len();
    let mut stdout = String::new();
    for (index, sibling) in record.siblings.iter().enumerate() {
        let _ = writeln!(stdout, "sibling {}/{total}{}", index + 1, sibling_text(sibling));
    }
    let _ = writeln!(stdout, "context: {}", to_base64(&record.context));
    let note = (total > 1).then(|| {
        "note: concurrent writes left siblings; resolve with `kvctl put KEY VALUE --context CONTEXT`".to_owned()
    });
    Rendered { stdout, note }
}

fn sibling_text(sibling: &Sibling) -> String {
    if sibling.tombstone {
        return ": (deleted)".to_owned();
    }
    match text_or_base64(&sibling.value) {
        Ok(text) => format!(": {text}"),
        Err(b64) => format!(" (base64): {b64}"),
    }
}

/// `batch-get`: `KEY<TAB>VALUE` per key; `(not found)` or `(N siblings)`
/// where there is no single value.
pub fn batch_get(results: &[(Bytes, Option<Record>)]) -> String {
    let mut out = String::new();
    for (key, record) in results {
        let shown = match record {
            None => "(not found)".to_owned(),
            Some(record) => match record.value() {
                Some(value) => display_bytes(value),
                None => format!("({} siblings; use `kvctl get`)", record.siblings.len()),
            },
        };
        let _ = writeln!(out, "{}\t{shown}", display_bytes(key));
    }
    out
}

/// `list` / `scan` pages: one key per line, or `KEY<TAB>VALUE`.
pub fn entries(entries: &[Entry], with_values: bool) -> String {
    let mut out = String::new();
    for entry in entries {
        let key = display_bytes(&entry.key);
        if with_values {
            let _ = writeln!(out, "{key}\t{}", display_bytes(&entry.value));
        } else {
            let _ = writeln!(out, "{key}");
        }
    }
    out
}

/// The stderr hint after a page that is not the last one.
pub fn more_hint(next_cursor: &[u8], scan: bool) -> String {
    let all = if scan { ", or use --all" } else { "" };
    format!("more keys: continue with --cursor {}{all}", to_base64(next_cursor))
}

/// Text when UTF-8, else `base64:` and the base64.
fn display_bytes(bytes: &[u8]) -> String {
    match text_or_base64(bytes) {
        Ok(text) => text.to_owned(),
        Err(b64) => format!("base64:{b64}"),
    }
}

/// `status`: a summary line and a table of the nodes.
pub fn status(response: &ClusterStatusResponse) -> String {
    let header = ["HOST ID", "ADDRESS", "ZONE", "STATE", "LIVENESS", "OWNS", "LOAD", "HINTS"];
    let mut rows = vec![header.map(str::to_owned)];
    rows.extend(response.nodes.iter().map(node_row));
    let mut widths = [0usize; 8];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "cluster {}, replication factor {}, {} node(s), answered by {}\n",
        or_dash(&response.cluster_name),
        response.replication_factor,
        response.nodes.len(),
        or_dash(&response.answered_by),
    );
    for row in &rows {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One node's row. LOAD is `-` when the answering node does not know it (a
/// peer's load travels with gossip); HINTS counts the hints the answering node
/// holds for that node.
fn node_row(node: &NodeStatus) -> [String; 8] {
    let mut state = node_state_name(node.state);
    if let Some(progress) = node.streaming_progress {
        let _ = write!(state, " (streaming {:.0}%)", progress * 100.0);
    }
    if node.waiting.is_some() {
        state.push_str(" (waiting for its turn)");
    }
    [
        or_dash(&node.host_id).to_owned(),
        or_dash(&node.grpc_addr).to_owned(),
        or_dash(&node.zone).to_owned(),
        state,
        liveness_name(node.liveness),
        format!("{:.1}%", node.ownership * 100.0),
        if node.load_bytes == 0 { "-".to_owned() } else { format_bytes(node.load_bytes) },
        node.pending_hints.to_string(),
    ]
}

/// `NORMAL`, `JOINING`, ... or `UNKNOWN(n)` for values newer than this kvctl.
pub fn node_state_name(state: i32) -> String {
    match NodeState::try_from(state) {
        Ok(state) => state.as_str_name().trim_start_matches("NODE_STATE_").to_owned(),
        Err(_) => format!("UNKNOWN({state})"),
    }
}

/// `ALIVE`, `SUSPECT`, `DOWN`, ... or `UNKNOWN(n)`.
pub fn liveness_name(liveness: i32) -> String {
    match Liveness::try_from(liveness) {
        Ok(liveness) => liveness.as_str_name().trim_start_matches("LIVENESS_").to_owned(),
        Err(_) => format!("UNKNOWN({liveness})"),
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// Binary units with one decimal: `512 B`, `1.5 KiB`, `3.0 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision loss past 2^53 bytes is irrelevant at one decimal.
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
#[path = "human_tests.rs"]
mod tests;
