//! Journal files as they are on disk: torn-tail reporting for recovery, and
//! the bytes the journals really hold (for load and metrics).
//!
//! fjall truncates a torn or corrupt journal tail itself when it opens. This
//! measures every journal before opening and compares afterwards, so that the
//! loss is logged with structured fields. Best effort: it only feeds a
//! diagnostic and never fails the open.
//!
//! fjall also pre-allocates every journal to 64 MiB with `set_len`, so a
//! journal's length is not its data; [`journal_bytes`] counts the blocks the
//! file system allocated instead. It may call only `std` and `tracing`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The journal files (`<id>.jnl`) in the data dir.
fn journal_files(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "jnl"))
}

/// Bytes the journals in `dir` hold: for each, the space the file system
/// allocated to it, at most its length. The pre-allocated part of a journal
/// is a hole (never written), so it holds no blocks and counts nothing; the
/// written part is counted to the next 4 KiB block. Files that vanish while
/// being measured (a sealed journal fjall deletes) count nothing.
pub(super) fn journal_bytes(dir: &Path) -> u64 {
    journal_files(dir).filter_map(|p| std::fs::metadata(p).ok()).map(|m| allocated(&m).min(m.len())).sum()
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    // `st_blocks` is in 512-byte units whatever the file system's block size.
    meta.blocks().saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

/// For each journal file (`<id>.jnl` in the data dir), the length up to its
/// last non-zero byte. fjall preallocates journals with zeros and trims them
/// on recovery, so only a shrink below this length means data was dropped.
/// Best effort: this only feeds a diagnostic.
pub(super) fn journal_content_lengths(dir: &Path) -> Vec<(PathBuf, u64)> {
    journal_files(dir)
        .filter_map(|p| match content_length(&p) {
            Ok(len) => Some((p, len)),
            Err(err) => {
                tracing::warn!(file = %p.display(), error = %err, "cannot measure journal before recovery");
                None
            }
        })
        .collect()
}

/// Position after the last non-zero byte of `path`, reading backwards.
fn content_length(path: &Path) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut file = std::fs::File::open(path)?;
    let mut end = file.metadata()?.len();
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Warns about every journal that recovery cut below its measured content.
pub(super) fn report_torn_tails(before: &[(PathBuf, u64)]) {
    for (path, content) in before {
        // A journal fjall deleted (flushed and sealed) was not truncated.
        let Ok(meta) = std::fs::metadata(path) else { continue };
        if meta.len() < *content {
            tracing::warn!(
                file = %path.display(),
                bytes_dropped = *content - meta.len(),
                bytes_kept = meta.len(),
                "dropped torn journal tail"
            );
        }
    }
}
