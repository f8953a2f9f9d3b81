//! `kvctl repair`: runs an anti-entropy repair on the node and follows its
//! progress: a progress bar on stderr (when it is a terminal) and a summary
//! line, or with `--json` one object per progress message. Rendering is pure
//! (testable without a server).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ringkv_client::Client;
use ringkv_client::proto::{RepairProgress, RepairRequest};
use serde_json::json;

/// Arguments of `repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    /// Only the ranges meeting this token range: `START:END` (start
    /// exclusive, end inclusive, unsigned 64-bit tokens).
    #[arg(long, value_name = "START:END", value_parser = parse_range)]
    pub range: Option<(u64, u64)>,
    /// Repair every keyspace, not only `--keyspace`.
    #[arg(long)]
    pub all_keyspaces: bool,
    /// Rebuild the Merkle trees from a full scan first (slower; also finds
    /// damage that bypassed the write path, e.g. on disk).
    #[arg(long)]
    pub full: bool,
}

/// The repair reached only some replicas of some ranges.
#[derive(Debug, thiserror::Error)]
#[error(
    "repair incomplete: {failed} of {total} range(s) could not be synced with every replica (peer down or failing); \
     see the node's log, then run the repair again"
)]
pub struct RepairIncomplete {
    /// Ranges that failed.
    pub failed: u32,
    /// Ranges planned.
    pub total: u32,
}

fn parse_range(input: &str) -> Result<(u64, u64), String> {
    let parse = |s: &str| s.trim().parse::<u64>().map_err(|e| format!("{s:?} is not a token: {e}"));
    match input.split_once(':') {
        Some((start, end)) => Ok((parse(start)?, parse(end)?)),
        None => Err(format!("{input:?} is not START:END, e.g. 0:9223372036854775807")),
    }
}

/// The request for `args` and the keyspace chosen with `--keyspace`.
pub fn request(args: &RepairArgs, keyspace: &str) -> RepairRequest {
    RepairRequest {
        keyspace: if args.all_keyspaces { String::new() } else { keyspace.to_owned() },
        range_start: args.range.map(|(s, _)| s),
        range_end: args.range.map(|(_, e)| e),
        full: args.full,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rate(bytes: u64, elapsed_ms: u64) -> f64 {
    if elapsed_ms == 0 { 0.0 } else { mib(bytes) / (elapsed_ms as f64 / 1000.0) }
}

/// One `--json` line per progress message.
pub fn json_line(p: &RepairProgress) -> String {
    let value = json!({
        "ranges_done": p.ranges_done,
        "ranges_total": p.ranges_total,
        "ranges_failed": p.ranges_failed,
        "keys_repaired": p.keys_repaired,
        "buckets_differing": p.buckets_differing,
        "records_received": p.records_received,
        "records_sent": p.records_sent,
        "bytes_compared": p.bytes_compared,
        "bytes_transferred": p.bytes_streamed,
        "keyspace": p.keyspace,
        "range_start": p.range_start,
        "range_end": p.range_end,
        "last_full_sync_ms": p.last_full_sync_ms,
        "elapsed_ms": p.elapsed_ms,
        "done": p.done,
    });
    format!("{value}\n")
}

/// The progress bar's message.
pub fn bar_message(p: &RepairProgress) -> String {
    format!("{} differing bucket(s), {} key(s) repaired", p.buckets_differing, p.keys_repaired)
}

/// The human summary of the final progress message.
pub fn summary(p: &RepairProgress) -> String {
    let secs = p.elapsed_ms as f64 / 1000.0;
    format!(
        "repaired {}/{} range(s) in {secs:.1} s ({} failed): {} differing bucket(s), {} record(s) received, {} sent; \
         compared {:.1} MiB ({:.1} MiB/s), transferred {:.2} MiB ({:.2} MiB/s)\n",
        p.ranges_done,
        p.ranges_total,
        p.ranges_failed,
        p.buckets_differing,
        p.records_received,
        p.records_sent,
        mib(p.bytes_compared),
        rate(p.bytes_compared, p.elapsed_ms),
        mib(p.bytes_streamed),
        rate(p.bytes_streamed, p.elapsed_ms),
    )
}

fn bar(json: bool) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} repair [{bar:30}] {pos}/{len} ranges {elapsed} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs `kvctl repair`.
pub async fn run(client: &Client, out: &mut dyn Write, json: bool, args: RepairArgs) -> anyhow::Result<()> {
    let mut stream = client.repair(request(&args, client.keyspace())).await?;
    let bar = bar(json);
    let mut last = None;
    while let Some(progress) = stream.next().await? {
        bar.set_length(u64::from(progress.ranges_total));
        bar.set_position(u64::from(progress.ranges_done));
        bar.set_message(bar_message(&progress));
        if json {
            out.write_all(json_line(&progress).as_bytes())?;
        }
        let done = progress.done;
        last = Some(progress);
        if done {
            break;
        }
    }
    bar.finish_and_clear();
    let last = last
        .filter(|p| p.done)
        .ok_or_else(|| anyhow::anyhow!("the node closed the repair stream before the repair finished; see its log"))?;
    if !json {
        out.write_all(summary(&last).as_bytes())?;
    }
    if last.ranges_failed > 0 {
        return Err(RepairIncomplete { failed: last.ranges_failed, total: last.ranges_total }.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> RepairProgress {
        RepairProgress {
            ranges_done: 4,
            ranges_total: 4,
            keys_repaired: 7,
            bytes_streamed: 2 * 1024 * 1024,
            done: true,
            bytes_compared: 100 * 1024 * 1024,
            buckets_differing: 5,
            records_received: 6,
            records_sent: 1,
            elapsed_ms: 2000,
            ..Default::default()
        }
    }

    #[test]
    fn summary_reports_counts_and_rates() {
        assert_eq!(
            summary(&done()),
            "repaired 4/4 range(s) in 2.0 s (0 failed): 5 differing bucket(s), 6 record(s) received, 1 sent; \
             compared 100.0 MiB (50.0 MiB/s), transferred 2.00 MiB (1.00 MiB/s)\n"
        );
    }

    #[test]
    fn json_lines_are_objects_with_the_counts() {
        let value: serde_json::Value = serde_json::from_str(json_line(&done()).trim()).expect("json");
        assert_eq!(value["ranges_done"], 4);
        assert_eq!(value["bytes_transferred"], 2 * 1024 * 1024);
        assert_eq!(value["done"], true);
    }

    #[test]
    fn ranges_parse_as_start_colon_end() {
        assert_eq!(parse_range("5:10"), Ok((5, 10)));
        assert!(parse_range("5").is_err());
        assert!(parse_range("a:1").is_err());
        let args = RepairArgs { range: Some((1, 2)), all_keyspaces: true, full: true };
        let r = request(&args, "users");
        assert_eq!((r.keyspace.as_str(), r.range_start, r.range_end, r.full), ("", Some(1), Some(2), true));
    }
}
