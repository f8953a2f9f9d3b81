//! How `kvctl` writes bytes as text: contexts and cursors as standard
//! base64, keys and values as UTF-8 when they are, else as base64.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

/// Standard base64 (RFC 4648 alphabet with `+` and `/`); padding optional
/// on input, always written on output.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes as padded standard base64.
pub fn to_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Parses standard base64, padded or not (a clap value parser).
pub fn parse_base64(input: &str) -> Result<Bytes, String> {
    BASE64
        .decode(input.trim())
        .map(Bytes::from)
        .map_err(|err| format!("not standard base64 ({err}); pass the value kvctl printed"))
}

/// Bytes as text: `Ok(text)` when valid UTF-8, else `Err(base64)`.
pub fn text_or_base64(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|_| to_base64(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_with_or_without_padding() {
        assert_eq!(to_base64(&[1, 2]), "AQI=");
        assert_eq!(parse_base64("AQI=").as_deref(), Ok(&[1u8, 2][..]));
        assert_eq!(parse_base64("AQI").as_deref(), Ok(&[1u8, 2][..]));
        assert!(parse_base64("a_b-").is_err(), "URL-safe alphabet is not accepted");
    }

    #[test]
    fn text_when_utf8_else_base64() {
        assert_eq!(text_or_base64("héllo".as_bytes()), Ok("héllo"));
        assert_eq!(text_or_base64(&[0xff, 0x00]), Err("/wA=".to_owned()));
    }
}
