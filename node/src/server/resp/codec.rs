//! RESP2 framing: commands in (arrays of bulk strings, or inline commands),
//! replies out.
//!
//! [`parse_command`] takes one command from the front of a buffer, or
//! reports that more bytes are needed; it never panics and bounds every
//! length it reads ([`Limits`]) before allocating, so a hostile client
//! cannot make the node reserve memory it did not send.

use bytes::{Bytes, BytesMut};

/// Bounds on what a client may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk string (a value plus slack; larger closes the connection).
    pub max_bulk: usize,
    /// Most arguments in one command.
    pub max_args: usize,
    /// Longest inline command line.
    pub max_inline: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bulk: 2 * 1024 * 1024, max_args: 1024 * 1024, max_inline: 64 * 1024 }
    }
}

/// A framing error: the stream cannot be resynchronised, so the connection closes after the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A length or count that is not a number.
    #[error("Protocol error: invalid {what} {text:?}")]
    BadNumber {
        /// What was being read.
        what: &'static str,
        /// What was sent.
        text: String,
    },
    /// An array element that is not a bulk string.
    #[error("Protocol error: expected '$', got {got:?}")]
    ExpectedBulk {
        /// The byte sent instead.
        got: char,
    },
    /// A bulk string not followed by CRLF.
    #[error("Protocol error: bulk string not terminated by CRLF")]
    MissingCrlf,
    /// A length over the limits.
    #[error("Protocol error: {what} of {len} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

/// Finds the next `\r\n` at or after `from`; returns the index of `\r`.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

fn parse_len(line: &[u8], what: &'static str) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ProtocolError::BadNumber { what, text: String::from_utf8_lossy(line).into_owned() })
}

/// Takes one command off the front of `buf`: `Ok(None)` when more bytes are
/// needed (nothing is consumed), `Ok(Some(args))` for a command (an empty
/// inline line gives an empty command, which callers skip).
pub fn parse_command(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        return parse_inline(buf, limits);
    }
    let Some(end) = find_crlf(buf, 1) else {
        return check_partial_line(buf, limits.max_inline, "multibulk header");
    };
    check_line(end, limits.max_inline, "multibulk header")?;
    let count = parse_len(&buf[1..end], "multibulk length")?;
    let count = usize::try_from(count.max(0)).unwrap_or(0);
    if count > limits.max_args {
        return Err(ProtocolError::TooLarge { what: "multibulk length", len: count, limit: limits.max_args });
    }
    // First pass: find where every bulk ends without copying; only when the
    // whole command is here are the arguments split off (zero-copy).
    let mut pos = end + 2;
    let mut spans = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let Some(&first) = buf.get(pos) else { return Ok(None) };
        if first != b'$' {
            return Err(ProtocolError::ExpectedBulk { got: char::from(first) });
        }
        let Some(line_end) = find_crlf(buf, pos + 1) else {
            return check_partial_line(&buf[pos..], MAX_BULK_LINE, "bulk length");
        };
        check_line(line_end - pos, MAX_BULK_LINE, "bulk length")?;
        let len = parse_len(&buf[pos + 1..line_end], "bulk length")?;
        let len = usize::try_from(len)
            .map_err(|_| ProtocolError::BadNumber { what: "bulk length", text: len.to_string() })?;
        if len > limits.max_bulk {
            return Err(ProtocolError::TooLarge { what: "bulk string", len, limit: limits.max_bulk });
        }
        let start = line_end + 2;
        let stop = start + len;
        if buf.len() < stop + 2 {
            return Ok(None);
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        spans.push((start, stop));
        pos = stop + 2;
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Some(spans.into_iter().map(|(a, b)| frame.slice(a..b)).collect()))
}

/// Longest `$<len>` line (with its `$`).
const MAX_BULK_LINE: usize = 32;

/// A length line still waiting for its CRLF: refused as soon as it is
/// longer than `limit` (a trailing `\r` may be half of the CRLF, so it does
/// not count), the same verdict [`check_line`] gives the complete line, so
/// that how the bytes were split into reads never changes the outcome.
fn check_partial_line(partial: &[u8], limit: usize, what: &'static str) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let len = partial.strip_suffix(b"\r").unwrap_or(partial).len();
    check_line(len, limit, what).map(|()| None)
}

/// A complete length line of `len` bytes (without its CRLF) within `limit`.
fn check_line(len: usize, limit: usize, what: &'static str) -> Result<(), ProtocolError> {
    if len > limit { Err(ProtocolError::TooLarge { what, len, limit }) } else { Ok(()) }
}

/// An inline command: one line of space-separated words (`PING\r\n`).
fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return check_line(buf.len(), limits.max_inline, "inline command").map(|()| None);
    };
    if nl > limits.max_inline {
        return Err(ProtocolError::TooLarge { what: "inline command", len: nl, limit: limits.max_inline });
    }
    let line = buf.split_to(nl + 1).freeze();
    let text = line.slice(..nl);
    let text = text.strip_suffix(b"\r").map_or(text.clone(), |t| line.slice(..t.len()));
    let mut args = Vec::new();
    let mut i = 0;
    while i < text.len() {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < text.len() && !text[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > start {
            if args.len() == limits.max_args {
                return Err(ProtocolError::TooLarge {
                    what: "inline argument count",
                    len: args.len() + 1,
                    limit: limits.max_args,
                });
            }
            args.push(text.slice(start..i));
        }
    }
    Ok(Some(args))
}

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(&'static str),
    /// `-ERR ...` (the text includes its prefix: `ERR`, `WRONGTYPE`, ...).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$n` + bytes.
    Bulk(Bytes),
    /// `$-1`.
    Nil,
    /// `*n` + replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// An `ERR` error.
    pub fn err(message: impl std::fmt::Display) -> Self {
        Self::Error(format!("ERR {message}"))
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Simple(s) => {
                out.extend_from_slice(b"+");
                out.extend_from_slice(s.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Self::Error(e) => {
                out.extend_from_slice(b"-");
                // CR/LF in a message would break the framing.
                out.extend(e.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
                out.extend_from_slice(b"\r\n");
            }
            Self::Integer(n) => {
                out.extend_from_slice(format!(":{n}\r\n").as_bytes());
            }
            Self::Bulk(b) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Self::Nil => out.extend_from_slice(b"$-1\r\n"),
            Self::Array(items) => {
                out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_all(bytes: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(cmd) = parse_command(&mut buf, &Limits::default())? {
            out.push(cmd);
        }
        Ok(out)
    }

    /// A command in the multibulk form clients send (also used by the listener's tests).
    pub(in crate::server::resp) fn encode_command(args: &[&[u8]]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    #[test]
    fn parses_pipelined_commands_and_waits_for_partial_ones() {
        let mut wire = encode_command(&[b"SET", b"k", b"v\r\nx"]);
        wire.extend(encode_command(&[b"GET", b"k"]));
        let cmds = parse_all(&wire).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0][2], Bytes::from_static(b"v\r\nx"), "binary-safe values");
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            let first = parse_command(&mut buf, &Limits::default()).unwrap();
            let first_len = encode_command(&[b"SET", b"k", b"v\r\nx"]).len();
            assert_eq!(first.is_some(), cut >= first_len, "cut at {cut}");
            if first.is_none() {
                assert_eq!(buf.len(), cut, "nothing consumed while incomplete");
            }
        }
    }

    #[test]
    fn inline_commands() {
        assert_eq!(parse_all(b"PING\r\n").unwrap(), vec![vec![Bytes::from_static(b"PING")]]);
        assert_eq!(
            parse_all(b"  get   key \n").unwrap()[0],
            vec![Bytes::from_static(b"get"), Bytes::from_static(b"key")]
        );
        assert_eq!(parse_all(b"\r\n").unwrap(), vec![Vec::<Bytes>::new()]);
    }

    #[test]
    fn malformed_and_oversized_input_is_an_error() {
        assert!(matches!(parse_all(b"*x\r\n"), Err(ProtocolError::BadNumber { .. })));
        assert!(matches!(parse_all(b"*1\r\n+PING\r\n"), Err(ProtocolError::ExpectedBulk { got: '+' })));
        assert!(matches!(parse_all(b"*1\r\n$4\r\nPINGxx"), Err(ProtocolError::MissingCrlf)));
        assert!(matches!(parse_all(b"*1\r\n$-5\r\n"), Err(ProtocolError::BadNumber { .. })));
        let huge = format!("*1\r\n${}\r\n", 3 * 1024 * 1024);
        assert!(matches!(parse_all(huge.as_bytes()), Err(ProtocolError::TooLarge { .. })));
        assert!(matches!(parse_all(b"*99999999999\r\n"), Err(ProtocolError::TooLarge { .. })));
        let endless = vec![b'a'; 70 * 1024];
        assert!(matches!(parse_all(&endless), Err(ProtocolError::TooLarge { .. })));
    }

    /// Found by the `resp` fuzz target: an inline command was not held to
    /// `max_args` (a multibulk one was).
    #[test]
    fn inline_commands_are_held_to_max_args() {
        let limits = Limits { max_args: 3, ..Limits::default() };
        let mut ok = BytesMut::from(&b"SET k v\r\n"[..]);
        assert_eq!(parse_command(&mut ok, &limits).map(|c| c.map(|c| c.len())), Ok(Some(3)));
        let mut over = BytesMut::from(&b"MSET a 1 b\r\n"[..]);
        let err = parse_command(&mut over, &limits);
        assert!(matches!(err, Err(ProtocolError::TooLarge { what: "inline argument count", limit: 3, .. })), "{err:?}");
    }

    /// Found by the `resp` fuzz target: a length line longer than its limit
    /// (zero-padded) was refused when it arrived in pieces but accepted when
    /// it arrived whole, so TCP segmentation decided the outcome.
    #[test]
    fn a_long_length_line_gets_one_verdict_however_it_arrives() {
        let limits = Limits { max_inline: 16, ..Limits::default() };
        let header = format!("*{:0>20}\r\n$1\r\nx\r\n", 1);
        let bulk = format!("*1\r\n${:0>40}\r\nx\r\n", 1);
        for wire in [header.as_bytes(), bulk.as_bytes()] {
            for cut in 0..=wire.len() {
                let mut buf = BytesMut::from(&wire[..cut]);
                let mut outcome = parse_command(&mut buf, &limits);
                if outcome == Ok(None) {
                    buf.extend_from_slice(&wire[cut..]);
                    outcome = parse_command(&mut buf, &limits);
                }
                assert!(matches!(outcome, Err(ProtocolError::TooLarge { .. })), "cut at {cut}: {outcome:?}");
            }
        }
    }

    #[test]
    fn replies_encode_as_resp2() {
        let mut out = BytesMut::new();
        Reply::Array(vec![
            Reply::Simple("OK"),
            Reply::Integer(-3),
            Reply::Bulk(Bytes::from_static(b"hi")),
            Reply::Nil,
            Reply::err("bad\r\nthing"),
        ])
        .encode(&mut out);
        assert_eq!(&out[..], b"*5\r\n+OK\r\n:-3\r\n$2\r\nhi\r\n$-1\r\n-ERR bad  thing\r\n");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_all(&bytes);
        }

        #[test]
        fn encoded_commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8)) {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            let cmds = parse_all(&encode_command(&refs)).unwrap();
            prop_assert_eq!(cmds.len(), 1);
            let got: Vec<Vec<u8>> = cmds[0].iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(got, args);
        }
    }
}
