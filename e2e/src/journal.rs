//! Finds and damages the write-ahead journal of a stopped node (fjall 3
//! keeps `<id>.jnl` files under the data dir, preallocated with zeros).
//!
//! Only for a node that is not running: these helpers write to files the
//! node owns.

use std::fs::OpenOptions;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};

/// One journal file.
#[derive(Debug, Clone)]
pub struct JournalFile {
    /// Its path.
    pub path: PathBuf,
    /// File length (including preallocated zeros).
    pub len: u64,
    /// Position after its last non-zero byte: where the records end.
    pub content_len: u64,
    /// Last modification time.
    pub modified: SystemTime,
}

/// Every `*.jnl` file under `dir` (recursively), oldest first by numeric
/// file id, then by modification time.
pub fn journal_files(dir: &Path) -> Result<Vec<JournalFile>> {
    let mut found = Vec::new();
    collect(dir, &mut found)?;
    found.sort_by_key(|j| (file_id(&j.path), j.modified));
    Ok(found)
}

/// The newest journal under `dir`: the one a crash leaves its tail in.
pub fn newest_journal(dir: &Path) -> Result<JournalFile> {
    let all = journal_files(dir)?;
    match all.into_iter().rev().find(|j| j.content_len > 0) {
        Some(j) => Ok(j),
        None => bail!("no non-empty *.jnl file under {}\n{}", dir.display(), listing(dir)),
    }
}

/// A human-readable `ls -lR` of `dir`, for test output.
pub fn listing(dir: &Path) -> String {
    let mut out = String::new();
    list_into(dir, dir, &mut out);
    out
}

/// Writes `garbage` right after the last record (over the preallocated
/// zeros): what a torn, half-written record looks like.
pub fn write_garbage_after_records(journal: &JournalFile, garbage: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new().write(true).open(&journal.path)?;
    file.seek(SeekFrom::Start(journal.content_len))?;
    file.write_all(garbage)?;
    file.sync_all()?;
    Ok(())
}

/// Appends `garbage` at the very end of the file (after the preallocation).
pub fn append_garbage(journal: &JournalFile, garbage: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new().append(true).open(&journal.path)?;
    file.write_all(garbage)?;
    file.sync_all()?;
    Ok(())
}

/// Truncates the file `bytes` before the end of its records, cutting the
/// last record short (a torn write). Returns the new length.
pub fn tear_last_record(journal: &JournalFile, bytes: u64) -> Result<u64> {
    let new_len = journal.content_len.checked_sub(bytes).context("journal shorter than the tear")?;
    let file = OpenOptions::new().write(true).open(&journal.path)?;
    file.set_len(new_len)?;
    file.sync_all()?;
    Ok(new_len)
}

fn file_id(path: &Path) -> u64 {
    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn collect(dir: &Path, found: &mut Vec<JournalFile>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "jnl") {
            let meta = std::fs::metadata(&path)?;
            let content_len = content_len(&path)?;
            found.push(JournalFile { len: meta.len(), content_len, modified: meta.modified()?, path });
        }
    }
    Ok(())
}

/// Position after the last non-zero byte.
fn content_len(path: &Path) -> Result<u64> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i as u64 + 1))
}

fn list_into(root: &Path, dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        if path.is_dir() {
            out.push_str(&format!("{rel}/\n"));
            list_into(root, &path, out);
        } else {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push_str(&format!("{len:>12} {rel}\n"));
        }
    }
}
