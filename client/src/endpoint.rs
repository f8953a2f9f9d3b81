//! Parsing of node endpoints.
//!
//! Accepts `host:port`, `host` (port [`DEFAULT_PORT`]), `http://host:port`,
//! `https://host:port` and IPv6 literals such as `[::1]:7100`. Only
//! `https://` dials TLS; `http://` and a bare `host:port` are plaintext.

use tonic::codegen::http::uri::Authority;

use crate::error::ClientError;

/// Port of a node's gRPC API when an endpoint names none.
pub const DEFAULT_PORT: u16 = 7100;

/// A validated endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedEndpoint {
    /// `http://host:port` or `https://host:port`, for the channel.
    pub uri: String,
    /// `host:port`, for messages.
    pub authority: String,
    /// True for `https://`: the connection runs TLS.
    pub tls: bool,
}

/// Validates `input` and normalises it to `http://host:port` or `https://host:port`.
pub(crate) fn parse_endpoint(input: &str) -> Result<ParsedEndpoint, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidEndpoint { endpoint: input.to_owned(), reason: reason.to_owned() };
    let trimmed = input.trim();
    let (rest, tls) = match trimmed.split_once("://") {
        None => (trimmed, false),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (rest, false),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (rest, true),
        Some(_) => return Err(invalid("the only supported schemes are http:// and https://")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(invalid("it names no host"));
    }
    if rest.contains('/') {
        return Err(invalid("an endpoint has no path"));
    }
    let authority: Authority = rest.parse().map_err(|_| invalid("it is not a valid host or host:port"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials in the endpoint are not supported"));
    }
    if authority.host().is_empty() {
        return Err(invalid("it names no host"));
    }
    // `Authority` accepts any text after the colon; only a number is a port.
    let has_port_text = authority.as_str().len() > authority.host().len();
    let authority = match authority.port_u16() {
        Some(0) => return Err(invalid("port 0 is not a port a node listens on")),
        Some(_) => authority.as_str().to_owned(),
        None if has_port_text => return Err(invalid("the port is not a number from 1 to 65535")),
        None => format!("{}:{DEFAULT_PORT}", authority.host()),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(ParsedEndpoint { uri: format!("{scheme}://{authority}"), authority, tls })
}

/// `address` (a `host:port` another node reported) with the scheme of
/// `like`, so that a client that reached one node over TLS reaches the
/// others the same way.
pub(crate) fn same_scheme(like: &str, address: &str) -> String {
    let tls = like.trim().get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let bare = address.split_once("://").map_or(address, |(_, rest)| rest);
    if tls { format!("https://{bare}") } else { bare.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        match parse_endpoint(input) {
            Ok(parsed) => parsed.uri,
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }

    #[test]
    fn accepts_host_port_with_or_without_scheme() {
        assert_eq!(ok("127.0.0.1:7100"), "http://127.0.0.1:7100");
        assert_eq!(ok("http://127.0.0.1:7100"), "http://127.0.0.1:7100");
        assert_eq!(ok("HTTP://node-1.ringkv:9000/"), "http://node-1.ringkv:9000");
        assert_eq!(ok(" localhost:7101 "), "http://localhost:7101");
        assert_eq!(ok("[::1]:7100"), "http://[::1]:7100");
    }

    #[test]
    fn https_dials_tls_and_the_rest_is_plaintext() {
        let parsed = parse_endpoint("https://node-1.ringkv:7100/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (parsed.uri.as_str(), parsed.authority.as_str(), parsed.tls),
            ("https://node-1.ringkv:7100", "node-1.ringkv:7100", true)
        );
        assert_eq!(ok("HTTPS://[::1]"), "https://[::1]:7100");
        for plain in ["127.0.0.1:7100", "http://127.0.0.1:7100", "localhost"] {
            assert!(!parse_endpoint(plain).unwrap_or_else(|e| panic!("{e}")).tls, "{plain}");
        }
        assert_eq!(same_scheme("https://a:1", "10.0.0.2:7100"), "https://10.0.0.2:7100");
        assert_eq!(same_scheme("a:1", "10.0.0.2:7100"), "10.0.0.2:7100");
        assert_eq!(same_scheme("http://a:1", "http://10.0.0.2:7100"), "10.0.0.2:7100");
    }

    #[test]
    fn adds_the_default_port() {
        assert_eq!(ok("localhost"), "http://localhost:7100");
        assert_eq!(ok("http://10.0.0.1"), "http://10.0.0.1:7100");
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        for bad in [
            "",
            "https://",
            "https://user@a:1",
            "ftp://a:1",
            "a:1/path",
            "a:notaport",
            "a:",
            "a:0",
            "a:70000",
            "user@a:1",
        ] {
            let err = parse_endpoint(bad).expect_err(bad);
            assert!(matches!(err, ClientError::InvalidEndpoint { .. }), "{bad:?}: {err}");
            assert!(err.to_string().contains("HOST:PORT"), "{err}");
        }
    }
}
