//! Binary encoding of records and causal contexts.
//!
//! Both formats start with a format byte so that later versions can change
//! them; integers are LEB128 varints (signed ones zig-zag encoded). Decoding
//! never panics: any malformed input is a [`CodecError`].

use bytes::Bytes;

use super::{Dot, Record, Sibling, VersionVector};

const RECORD_FORMAT_V1: u8 = 1;
const CONTEXT_FORMAT_V1: u8 = 1;
const FLAG_TOMBSTONE: u8 = 1;
const FLAG_EXPIRES: u8 = 2;
/// Upper bound on entries a decoder accepts, so corrupt input cannot make us allocate wildly.
const MAX_ENTRIES: u64 = 1 << 16;
/// Largest counter a client's causal context may carry. A write under a
/// context mints `counter + 1`, which must not overflow, and the record it
/// makes must decode again: clocks start from contexts and grow by one per
/// write, so a record built from accepted contexts stays far below
/// [`MAX_COUNTER`] (2^62 writes by one node to one key cannot happen).
pub(crate) const MAX_CONTEXT_COUNTER: u64 = 1 << 62;
/// Largest counter a stored or replicated record may carry; anything larger
/// is corruption (or a hostile peer), never the result of writes.
pub(crate) const MAX_COUNTER: u64 = i64::MAX as u64;

/// Why bytes could not be decoded as a record or a causal context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended in the middle of a field.
    #[error("{what} is truncated: it ends before its {field}")]
    Truncated {
        /// Record or context.
        what: &'static str,
        /// The field that was cut.
        field: &'static str,
    },
    /// The format byte is unknown (written by a newer version, or garbage).
    #[error("{what} has unknown format byte {found}; expected {expected}")]
    UnknownFormat {
        /// Record or context.
        what: &'static str,
        /// The byte found.
        found: u8,
        /// The byte this version writes.
        expected: u8,
    },
    /// A count or flag is out of range.
    #[error("{what} is malformed: {field} is out of range")]
    OutOfRange {
        /// Record or context.
        what: &'static str,
        /// The field.
        field: &'static str,
    },
    /// Bytes were left after the end.
    #[error("{what} has {extra} unexpected trailing bytes")]
    Trailing {
        /// Record or context.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn byte(&mut self, field: &'static str) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or(CodecError::Truncated { what: self.what, field })?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::OutOfRange { what: self.what, field })
    }

    fn count(&mut self, field: &'static str) -> Result<usize, CodecError> {
        let n = self.varint(field)?;
        if n > MAX_ENTRIES {
            return Err(CodecError::OutOfRange { what: self.what, field });
        }
        Ok(n as usize)
    }

    fn slice(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let end = end.ok_or(CodecError::Truncated { what: self.what, field })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn finish(&self) -> Result<(), CodecError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(CodecError::Trailing { what: self.what, extra }),
        }
    }
}

fn put_clock(out: &mut Vec<u8>, clock: &VersionVector) {
    put_varint(out, clock.len() as u64);
    for (node, counter) in clock.entries() {
        put_varint(out, node);
        put_varint(out, counter);
    }
}

fn read_clock(r: &mut Reader<'_>, max_counter: u64) -> Result<VersionVector, CodecError> {
    let n = r.count("clock length")?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let node = r.varint("clock node")?;
        let counter = r.varint("clock counter")?;
        if counter > max_counter {
            return Err(CodecError::OutOfRange { what: r.what, field: "clock counter" });
        }
        entries.push((node, counter));
    }
    Ok(VersionVector::from_entries(entries))
}

impl Record {
    /// Encodes the record in the storage / wire format.
    pub fn encode(&self) -> Vec<u8> {
        let values: usize = self.siblings.iter().filter_map(|s| s.value.as_ref()).map(Bytes::len).sum();
        let mut out = Vec::with_capacity(16 + self.clock.len() * 12 + self.siblings.len() * 24 + values);
        out.push(RECORD_FORMAT_V1);
        put_clock(&mut out, &self.clock);
        put_varint(&mut out, self.siblings.len() as u64);
        for s in &self.siblings {
            put_varint(&mut out, s.dot.node);
            put_varint(&mut out, s.dot.counter);
            put_varint(&mut out, zigzag(s.timestamp_micros));
            let mut flags = 0;
            if s.value.is_none() {
                flags |= FLAG_TOMBSTONE;
            }
            if s.expires_at_ms.is_some() {
                flags |= FLAG_EXPIRES;
            }
            out.push(flags);
            if let Some(at) = s.expires_at_ms {
                put_varint(&mut out, zigzag(at));
            }
            if let Some(v) = &s.value {
                put_varint(&mut out, v.len() as u64);
                out.extend_from_slice(v);
            }
        }
        out
    }

    /// Decodes a record; values are sliced out of `buf` without copying.
    pub fn decode(buf: &Bytes) -> Result<Record, CodecError> {
        let what = "record";
        let mut r = Reader { buf, pos: 0, what };
        let format = r.byte("format byte")?;
        if format != RECORD_FORMAT_V1 {
            return Err(CodecError::UnknownFormat { what, found: format, expected: RECORD_FORMAT_V1 });
        }
        let clock = read_clock(&mut r, MAX_COUNTER)?;
        let n = r.count("sibling count")?;
        let mut siblings = Vec::with_capacity(n);
        for _ in 0..n {
            let dot = Dot { node: r.varint("dot node")?, counter: r.varint("dot counter")? };
            // The record invariants (see the module docs of `version`): merge
            // and supersession rely on them, so a record breaking them is malformed.
            if dot.counter == 0 || !clock.contains(dot) {
                return Err(CodecError::OutOfRange { what, field: "dot (not a write of the clock)" });
            }
            if siblings.last().is_some_and(|prev: &Sibling| prev.dot >= dot) {
                return Err(CodecError::OutOfRange { what, field: "dot (siblings must be sorted by distinct dots)" });
            }
            let timestamp_micros = unzigzag(r.varint("timestamp")?);
            let flags = r.byte("flags")?;
            if flags & !(FLAG_TOMBSTONE | FLAG_EXPIRES) != 0 {
                return Err(CodecError::OutOfRange { what, field: "flags" });
            }
            let expires_at_ms = if flags & FLAG_EXPIRES != 0 { Some(unzigzag(r.varint("expiry")?)) } else { None };
            let value = if flags & FLAG_TOMBSTONE != 0 {
                None
            } else {
                let len = usize::try_from(r.varint("value length")?)
                    .map_err(|_| CodecError::OutOfRange { what, field: "value length" })?;
                let start = r.pos;
                r.slice(len, "value")?;
                Some(buf.slice(start..start + len))
            };
            siblings.push(Sibling { dot, timestamp_micros, expires_at_ms, value });
        }
        r.finish()?;
        Ok(Record { clock, siblings })
    }
}

impl VersionVector {
    /// Encodes the vector as an opaque causal context for clients.
    pub fn encode_context(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.len() * 12);
        out.push(CONTEXT_FORMAT_V1);
        put_clock(&mut out, self);
        out
    }

    /// Decodes a client's causal context; empty input is the empty context.
    pub fn decode_context(buf: &[u8]) -> Result<VersionVector, CodecError> {
        if buf.is_empty() {
            return Ok(VersionVector::new());
        }
        let what = "causal context";
        let mut r = Reader { buf, pos: 0, what };
        let format = r.byte("format byte")?;
        if format != CONTEXT_FORMAT_V1 {
            return Err(CodecError::UnknownFormat { what, found: format, expected: CONTEXT_FORMAT_V1 });
        }
        let clock = read_clock(&mut r, MAX_CONTEXT_COUNTER)?;
        r.finish()?;
        Ok(clock)
    }
}
